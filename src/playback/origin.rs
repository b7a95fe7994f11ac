//! Where playback reads masters, media playlists and MPDs: an `Origin`
//! (the object store, or a plain HTTP(S) origin for masters produced
//! elsewhere) behind `OriginCache`, which
//!
//! - coalesces concurrent misses for one key into one origin read;
//! - keeps objects fresh for `cache.origin_fresh`, bounded by bytes;
//! - when the origin fails, serves the last good copy for
//!   `cache.stale_if_error` more, marked `stale` (the HTTP layer says so in
//!   a header; a metric counts it), and only then fails. Meanwhile no
//!   viewer waits for the failing origin: it is read again in the
//!   background (`crate::playback::readthrough`).
//!
//! A missing object is never served stale: "not found" is an answer, not
//! a failure.

use crate::backends::storage::{ObjectKey, ObjectStore, StorageError};
use crate::metrics::{CacheLabels, Metrics};
use crate::playback::readthrough::{ReadThrough, Source, Timing};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OriginError {
    #[error("no such object at the origin: {0}")]
    NotFound(ObjectKey),
    #[error("origin unavailable: {0}")]
    Unavailable(String),
}

impl From<StorageError> for OriginError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(k) => OriginError::NotFound(k),
            StorageError::Unavailable(why) => OriginError::Unavailable(why),
        }
    }
}

impl crate::playback::readthrough::Outage for OriginError {
    fn is_outage(&self) -> bool {
        matches!(self, OriginError::Unavailable(_))
    }
}

#[async_trait]
pub trait Origin: Send + Sync + 'static {
    async fn fetch(&self, key: &ObjectKey) -> Result<Bytes, OriginError>;
}

/// The object store as an origin (local directory, S3).
pub struct StoreOrigin(pub Arc<dyn ObjectStore>);

#[async_trait]
impl Origin for StoreOrigin {
    async fn fetch(&self, key: &ObjectKey) -> Result<Bytes, OriginError> {
        Ok(self.0.get(key).await?)
    }
}

/// `GET {base}/{key}` with a time limit and a size limit.
pub struct HttpOrigin {
    base: String,
    client: reqwest::Client,
    max_object: u64,
}

impl HttpOrigin {
    pub fn new(base: &str, timeout: Duration, max_object: u64) -> Result<Self, OriginError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| OriginError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(HttpOrigin {
            base: base.trim_end_matches('/').to_owned(),
            client,
            max_object,
        })
    }
}

#[async_trait]
impl Origin for HttpOrigin {
    async fn fetch(&self, key: &ObjectKey) -> Result<Bytes, OriginError> {
        let url = format!("{}/{}", self.base, key.as_str());
        let failed = |why: String| OriginError::Unavailable(format!("GET {url}: {why}"));
        let mut resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => return Err(OriginError::NotFound(key.clone())),
            s => return Err(failed(format!("status {s}"))),
        }
        if resp.content_length().is_some_and(|n| n > self.max_object) {
            return Err(failed(format!("larger than {} bytes", self.max_object)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?
        {
            if (body.len() + chunk.len()) as u64 > self.max_object {
                return Err(failed(format!("larger than {} bytes", self.max_object)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

/// An object as the cache hands it out.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    /// The origin failed and this is the last good copy.
    pub stale: bool,
}

pub struct OriginCache {
    origin: Arc<dyn Origin>,
    objects: ReadThrough<ObjectKey, Bytes>,
    metrics: Arc<Metrics>,
}

fn weight(key: &ObjectKey, bytes: &Bytes) -> u32 {
    u32::try_from(key.as_str().len() + bytes.len()).unwrap_or(u32::MAX)
}

impl OriginCache {
    pub fn new(
        origin: Arc<dyn Origin>,
        config: &crate::config::CacheConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let timing = Timing::new(config.origin_fresh, config.stale_if_error);
        OriginCache {
            origin,
            objects: ReadThrough::new("origin", config.origin_max_bytes, Some(weight), timing),
            metrics,
        }
    }

    /// The object, from the cache when fresh, else from the origin (one
    /// read however many ask at once), else the last good copy while the
    /// stale window lasts.
    pub async fn get(&self, key: &ObjectKey) -> Result<Fetched, OriginError> {
        let (origin, k) = (self.origin.clone(), key.clone());
        let got = self
            .objects
            .get(key, move || async move { origin.fetch(&k).await })
            .await;
        let labels = CacheLabels {
            cache: "origin".into(),
        };
        let hit = matches!(&got, Ok(g) if g.source == Source::Hit);
        if hit {
            self.metrics.cache_hits.get_or_create(&labels).inc();
        } else {
            self.metrics.cache_misses.get_or_create(&labels).inc();
        }
        let got = got.map_err(Arc::unwrap_or_clone)?;
        let stale = got.source == Source::Stale;
        if stale {
            self.metrics.origin_stale_served.inc();
        }
        Ok(Fetched {
            bytes: got.value,
            stale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An origin whose answers the test sets, counting reads.
    struct Scripted {
        reads: AtomicUsize,
        answer: Mutex<Result<&'static str, OriginError>>,
    }

    #[async_trait]
    impl Origin for Scripted {
        async fn fetch(&self, _key: &ObjectKey) -> Result<Bytes, OriginError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.answer
                .lock()
                .unwrap()
                .clone()
                .map(|s| Bytes::from_static(s.as_bytes()))
        }
    }

    fn cache(origin: Arc<Scripted>, fresh_ms: u64, stale_ms: u64) -> OriginCache {
        let config = crate::config::CacheConfig {
            origin_fresh: Duration::from_millis(fresh_ms),
            stale_if_error: Duration::from_millis(stale_ms),
            origin_max_bytes: 1 << 20,
            masters_max_entries: 10,
            signatures_max_entries: 10,
            asset_ttl: Duration::from_secs(1),
        };
        OriginCache::new(origin, &config, Arc::new(Metrics::new()))
    }

    #[tokio::test]
    async fn concurrent_misses_read_once_and_failures_serve_stale_then_fail() {
        let origin = Arc::new(Scripted {
            reads: AtomicUsize::new(0),
            answer: Mutex::new(Ok("#EXTM3U\n")),
        });
        let c = Arc::new(cache(origin.clone(), 100, 300));
        let key = ObjectKey::parse("assets/a/v1/hls/master.m3u8").unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (c, key) = (c.clone(), key.clone());
                tokio::spawn(async move { c.get(&key).await })
            })
            .collect();
        for t in tasks {
            let f = t.await.unwrap().unwrap();
            assert_eq!(&f.bytes[..], b"#EXTM3U\n");
            assert!(!f.stale);
        }
        assert_eq!(origin.reads.load(Ordering::SeqCst), 1);

        *origin.answer.lock().unwrap() = Err(OriginError::Unavailable("down".into()));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let f = c.get(&key).await.unwrap();
        assert!(
            f.stale,
            "past freshness with the origin down: the stale copy"
        );
        assert_eq!(&f.bytes[..], b"#EXTM3U\n");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(matches!(
            c.get(&key).await,
            Err(OriginError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn after_a_failure_the_origin_is_left_alone_for_a_while() {
        let origin = Arc::new(Scripted {
            reads: AtomicUsize::new(0),
            answer: Mutex::new(Ok("#EXTM3U\n")),
        });
        // Fresh for 200 ms, so the retry pause is 200 ms.
        let c = cache(origin.clone(), 200, 10_000);
        let key = ObjectKey::parse("assets/a/v1/hls/master.m3u8").unwrap();
        c.get(&key).await.unwrap();
        *origin.answer.lock().unwrap() = Err(OriginError::Unavailable("down".into()));
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert!(c.get(&key).await.unwrap().stale);
        let reads = origin.reads.load(Ordering::SeqCst);
        for _ in 0..20 {
            assert!(c.get(&key).await.unwrap().stale);
        }
        assert_eq!(
            origin.reads.load(Ordering::SeqCst),
            reads,
            "served stale without asking the failing origin"
        );
        *origin.answer.lock().unwrap() = Ok("#EXTM3U\n# v2\n");
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert!(
            c.get(&key).await.unwrap().stale,
            "after the pause the origin is asked in the background; no viewer waits"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        let back = c.get(&key).await.unwrap();
        assert!(!back.stale, "asked again after the pause");
        assert_eq!(&back.bytes[..], b"#EXTM3U\n# v2\n");
        assert_eq!(origin.reads.load(Ordering::SeqCst), reads + 1);
    }

    #[tokio::test]
    async fn not_found_is_never_served_stale() {
        let origin = Arc::new(Scripted {
            reads: AtomicUsize::new(0),
            answer: Mutex::new(Ok("x")),
        });
        let c = cache(origin.clone(), 50, 10_000);
        let key = ObjectKey::parse("k").unwrap();
        c.get(&key).await.unwrap();
        *origin.answer.lock().unwrap() = Err(OriginError::NotFound(key.clone()));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(matches!(c.get(&key).await, Err(OriginError::NotFound(_))));
    }
}
