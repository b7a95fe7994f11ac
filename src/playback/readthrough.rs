//! A read-through cache for what playback reads from elsewhere (asset
//! records and tier rules from the store, playlists from the origin) that
//! keeps viewers playing through an outage of that source:
//!
//! - a value is fresh for `fresh_for`; concurrent misses of one key share
//!   one read;
//! - when a read fails with an outage (`Outage::is_outage`), the last good
//!   value is served, marked stale, until `fresh_for + stale_for` after it
//!   was read;
//! - while a key's source is failing nobody waits for it: the stale value
//!   is served at once, and at most one background read per `retry_after`
//!   finds out whether the source is back. A key with no stale value is
//!   read in the foreground (one read at a time), so it is served as soon
//!   as the source is back.
//!
//! An answer that is not an outage (not found, refused) is never hidden
//! behind a stale value.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether an error means "the source did not answer" (serve stale, try
/// again later) rather than an answer.
pub trait Outage {
    fn is_outage(&self) -> bool;
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache, fresh.
    Hit,
    /// The source, just now.
    Read,
    /// The last good value: the source is failing.
    Stale,
}

#[derive(Debug)]
pub struct Got<V> {
    pub value: V,
    pub source: Source,
}

/// How long values stay fresh, stay usable when the source fails, and how
/// often a failing source is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub fresh_for: Duration,
    pub stale_for: Duration,
    pub retry_after: Duration,
}

/// How long a failing source is left alone while a stale value is served.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Timing {
    /// `retry_after` is `RETRY_AFTER` or `fresh_for`, whichever is shorter:
    /// a failing source is never left alone longer than a value stays fresh.
    pub fn new(fresh_for: Duration, stale_for: Duration) -> Self {
        Timing {
            fresh_for,
            stale_for,
            retry_after: RETRY_AFTER.min(fresh_for),
        }
    }
}

pub struct ReadThrough<K, V> {
    /// What is cached, for log lines ("asset records").
    what: &'static str,
    fresh: moka::future::Cache<K, V>,
    /// The last good value of each key and when it was read.
    last_good: moka::sync::Cache<K, (V, Instant)>,
    /// Keys whose last read failed, and when to read them again.
    failing: moka::sync::Cache<K, Instant>,
    timing: Timing,
}

impl<K, V> Clone for ReadThrough<K, V> {
    fn clone(&self) -> Self {
        ReadThrough {
            what: self.what,
            fresh: self.fresh.clone(),
            last_good: self.last_good.clone(),
            failing: self.failing.clone(),
            timing: self.timing,
        }
    }
}

impl<K, V> ReadThrough<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// At most `capacity` values, or `capacity` units of `weigh` when given.
    pub fn new(
        what: &'static str,
        capacity: u64,
        weigh: Option<fn(&K, &V) -> u32>,
        timing: Timing,
    ) -> Self {
        let keep_for = timing.fresh_for + timing.stale_for;
        let mut fresh = moka::future::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(timing.fresh_for);
        let mut last_good = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(keep_for);
        if let Some(w) = weigh {
            fresh = fresh.weigher(w);
            last_good = last_good.weigher(move |k: &K, v: &(V, Instant)| w(k, &v.0));
        }
        ReadThrough {
            what,
            fresh: fresh.build(),
            last_good: last_good.build(),
            failing: moka::sync::Cache::builder()
                .max_capacity(capacity.min(100_000))
                .time_to_live(keep_for)
                .build(),
            timing,
        }
    }

    /// The value of `key`: cached, read with `read` (one read however many
    /// ask at once), or the last good value while the source fails.
    pub async fn get<E, F, Fut>(&self, key: &K, read: F) -> Result<Got<V>, Arc<E>>
    where
        E: Outage + std::fmt::Display + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        if let Some(value) = self.fresh.get(key).await {
            return Ok(Got {
                value,
                source: Source::Hit,
            });
        }
        if let Some(next_try) = self.failing.get(key)
            && let Some(value) = self.stale(key)
        {
            if Instant::now() >= next_try {
                // Find out in the background whether the source is back.
                self.failing
                    .insert(key.clone(), Instant::now() + self.timing.retry_after);
                let (me, key, read) = (self.clone(), key.clone(), read());
                tokio::spawn(async move {
                    let _ = me.read(&key, read).await;
                });
            }
            return Ok(Got {
                value,
                source: Source::Stale,
            });
        }
        match self.read(key, read()).await {
            Ok(got) => Ok(got),
            Err(e) if e.is_outage() => match self.stale(key) {
                Some(value) => Ok(Got {
                    value,
                    source: Source::Stale,
                }),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Forgets `key` (this replica changed or deleted it).
    pub async fn invalidate(&self, key: &K) {
        self.fresh.invalidate(key).await;
        self.last_good.invalidate(key);
        self.failing.invalidate(key);
    }

    async fn read<E>(
        &self,
        key: &K,
        read: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> Result<Got<V>, Arc<E>>
    where
        E: Outage + std::fmt::Display + Send + Sync + 'static,
    {
        let last_good = self.last_good.clone();
        let k = key.clone();
        let read = async move {
            let value = read.await?;
            last_good.insert(k, (value.clone(), Instant::now()));
            Ok::<V, E>(value)
        };
        match self.fresh.entry_by_ref(key).or_try_insert_with(read).await {
            Ok(entry) => {
                self.failing.invalidate(key);
                let source = if entry.is_fresh() {
                    Source::Read
                } else {
                    Source::Hit
                };
                Ok(Got {
                    value: entry.into_value(),
                    source,
                })
            }
            Err(e) => {
                if e.is_outage() {
                    // Once per failed read: concurrent readers of a key share
                    // one, and a key with a stale value is read once per
                    // `retry_after`.
                    tracing::warn!(cache = self.what, reason = %e, "read failed; the last good value is served while there is one");
                    self.failing
                        .insert(key.clone(), Instant::now() + self.timing.retry_after);
                }
                Err(e)
            }
        }
    }

    fn stale(&self, key: &K) -> Option<V> {
        let (value, at) = self.last_good.get(key)?;
        (at.elapsed() <= self.timing.fresh_for + self.timing.stale_for).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Clone, PartialEq)]
    enum Why {
        Down,
        Gone,
    }

    impl std::fmt::Display for Why {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl Outage for Why {
        fn is_outage(&self) -> bool {
            *self == Why::Down
        }
    }

    /// A source whose answer the test sets; it counts reads, and each read
    /// takes `delay`.
    struct Scripted {
        reads: AtomicUsize,
        answer: Mutex<Result<u32, Why>>,
        delay: Duration,
    }

    type Cache = ReadThrough<&'static str, u32>;

    async fn get(c: &Cache, s: &Arc<Scripted>) -> Result<Got<u32>, Arc<Why>> {
        let s = s.clone();
        c.get(&"k", move || async move {
            s.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(s.delay).await;
            s.answer.lock().unwrap().clone()
        })
        .await
    }

    fn setup(fresh_ms: u64, stale_ms: u64, retry_ms: u64, delay_ms: u64) -> (Cache, Arc<Scripted>) {
        let timing = Timing {
            fresh_for: Duration::from_millis(fresh_ms),
            stale_for: Duration::from_millis(stale_ms),
            retry_after: Duration::from_millis(retry_ms),
        };
        let source = Arc::new(Scripted {
            reads: AtomicUsize::new(0),
            answer: Mutex::new(Ok(1)),
            delay: Duration::from_millis(delay_ms),
        });
        (ReadThrough::new("test", 100, None, timing), source)
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_read() {
        let (c, s) = setup(1000, 1000, 100, 50);
        let all: Vec<_> = (0..100).map(|_| get(&c, &s)).collect();
        for got in futures_util::future::join_all(all).await {
            assert_eq!(got.unwrap().value, 1);
        }
        assert_eq!(s.reads.load(Ordering::SeqCst), 1);
        assert_eq!(get(&c, &s).await.unwrap().source, Source::Hit);
    }

    /// The source goes down: the first viewer past freshness waits for the
    /// failure and gets the stale value; the next ones get it at once, with
    /// one background read per `retry_after`; when the source is back a
    /// background read brings the new value.
    #[tokio::test]
    async fn a_failing_source_costs_one_wait_then_none() {
        let (c, s) = setup(100, 10_000, 200, 50);
        get(&c, &s).await.unwrap();
        *s.answer.lock().unwrap() = Err(Why::Down);
        tokio::time::sleep(Duration::from_millis(120)).await;
        let first = get(&c, &s).await.unwrap();
        assert_eq!((first.value, first.source), (1, Source::Stale));
        let reads = s.reads.load(Ordering::SeqCst);
        for _ in 0..50 {
            assert_eq!(get(&c, &s).await.unwrap().source, Source::Stale);
        }
        assert_eq!(
            s.reads.load(Ordering::SeqCst),
            reads,
            "nobody waited for the failing source: it was not read"
        );

        *s.answer.lock().unwrap() = Ok(2);
        tokio::time::sleep(Duration::from_millis(220)).await;
        let due = get(&c, &s).await.unwrap();
        assert_eq!(
            (due.value, due.source),
            (1, Source::Stale),
            "served at once; the read goes on in the background"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        let back = get(&c, &s).await.unwrap();
        assert_eq!((back.value, back.source), (2, Source::Hit));
        assert_eq!(s.reads.load(Ordering::SeqCst), reads + 1);
    }

    #[tokio::test]
    async fn past_the_stale_window_the_outage_is_the_answer() {
        let (c, s) = setup(50, 100, 20, 0);
        get(&c, &s).await.unwrap();
        *s.answer.lock().unwrap() = Err(Why::Down);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(get(&c, &s).await.unwrap().source, Source::Stale);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(*get(&c, &s).await.unwrap_err(), Why::Down);
    }

    #[tokio::test]
    async fn with_nothing_to_serve_the_source_is_asked_and_seen_back_at_once() {
        let (c, s) = setup(1000, 1000, 200, 30);
        *s.answer.lock().unwrap() = Err(Why::Down);
        assert_eq!(*get(&c, &s).await.unwrap_err(), Why::Down);
        assert_eq!(*get(&c, &s).await.unwrap_err(), Why::Down);
        assert_eq!(s.reads.load(Ordering::SeqCst), 2);
        *s.answer.lock().unwrap() = Ok(3);
        let back = get(&c, &s).await.unwrap();
        assert_eq!((back.value, back.source), (3, Source::Read));
    }

    #[tokio::test]
    async fn an_answer_is_never_hidden_behind_a_stale_value() {
        let (c, s) = setup(50, 10_000, 20, 0);
        get(&c, &s).await.unwrap();
        *s.answer.lock().unwrap() = Err(Why::Gone);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(*get(&c, &s).await.unwrap_err(), Why::Gone);
    }

    #[tokio::test]
    async fn invalidate_forgets_the_stale_value_too() {
        let (c, s) = setup(50, 10_000, 20, 0);
        get(&c, &s).await.unwrap();
        c.invalidate(&"k").await;
        *s.answer.lock().unwrap() = Err(Why::Down);
        assert_eq!(*get(&c, &s).await.unwrap_err(), Why::Down);
    }
}
