//! playgate: a secure playback gateway and CloudFront edge signer for
//! video on demand.
//!
//! Map of the crate (docs/architecture.md has the request and pipeline
//! paths; `scripts/check-layers.py` holds the layering):
//! - `engine`: pure: CloudFront signing, tier rules, HLS and DASH
//!   filtering, `authorise`, the ladder plan, the playability report. No
//!   axum, AWS, tokio or config.
//! - `config`: typed config from TOML + `PLAYGATE__…` env, all problems at
//!   once; reads into engine value types, imports no service.
//! - `backends`: the store (SQLite, DynamoDB), object storage (disk, S3),
//!   the CDN (cache policy, invalidation), the AWS SDK set-up.
//! - `protect`: content keys (local KEK or KMS), key tokens, encrypting an
//!   encoded HLS tree.
//! - `playback`: the viewer service behind the play, sign and key
//!   endpoints, with its caches, the origin reader and read-through.
//! - `pipeline`: probe, encode (ffmpeg or MediaConvert), job states and
//!   events, publish, notifications.
//! - `auth`: viewer JWTs and service credentials.
//! - `http`: routes, middleware, extractors, one file per resource; every
//!   domain error's problem+json in `http::problem`.
//! - `state`: `AppState`, the services built once at start-up.
//! - `cli`: the `playgate` commands; `main.rs` only calls `cli::main`.
//! - `domain`, `secret`, `clock`, `metrics`: newtypes, redacting secrets,
//!   time, the Prometheus registry.
//!
//! The entry point for embedding and tests is [`run`].

pub mod auth;
pub mod backends;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod playback;
pub mod protect;
pub mod secret;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Startup(#[from] state::StartupError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the state from `config` and serves on `listener` until
/// `shutdown` resolves, then drains in-flight requests for at most the
/// configured grace period.
pub async fn run(
    config: config::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let state = state::AppState::build(config).await?;
    serve(state, http::router, listener, shutdown).await
}

/// Serves an already built state with the router `make` builds: HTTP/1.1
/// connections with a limit on how long a client may take to send a
/// request's headers (`server.header_timeout`: a client trickling bytes
/// cannot hold a connection), each request carrying the peer's address.
/// When `shutdown` resolves, the listener closes, in-flight requests
/// finish (idle connections close), and after `server.shutdown_grace`
/// whatever is left is dropped.
///
/// With `server.worker_threads` = N > 0 (the default: one per core), N
/// threads each run a single-threaded runtime and serve the connections
/// handed to them, start to end, as nginx runs one worker per core: a
/// request never wakes another thread. Connections are dealt round-robin
/// by one acceptor (on the caller's runtime), so the workers carry equal
/// shares whatever the kernel's wake-up order. With 0, connections are
/// tasks on the caller's (work-stealing) runtime.
pub async fn serve(
    state: state::AppState,
    make: impl FnOnce(state::AppState) -> axum::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let conn = Connections {
        grace: state.config.server.shutdown_grace,
        header_timeout: state.config.server.header_timeout,
    };
    let threads = state.config.server.worker_threads;
    let app = make(state);
    if threads == 0 {
        conn.serve(app, Incoming::Listener(listener), shutdown)
            .await;
        tracing::info!("stopped");
        return Ok(());
    }
    let mut workers = Vec::with_capacity(threads);
    let mut hand_to = Vec::with_capacity(threads);
    for i in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let app = app.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), RunError>>();
        std::thread::Builder::new()
            .name(format!("playgate-io-{i}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| {
                        // Ends when the acceptor drops its sender.
                        rt.block_on(conn.serve(app, Incoming::Handed(rx), std::future::pending()))
                    })
                    .map_err(RunError::from);
                let _ = done_tx.send(served);
            })?;
        hand_to.push(tx);
        workers.push(done_rx);
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next = 0usize;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted.and_then(|(s, peer)| Ok((s.into_std()?, peer))) {
                Ok(handed) => {
                    let _ = hand_to[next % threads].send(handed);
                    next = next.wrapping_add(1);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(reason = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(hand_to);
    for w in workers {
        if let Ok(Err(e)) = w.await {
            return Err(e);
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where a connection loop's connections come from: its own listener, or
/// an acceptor handing them over (`None` once it stops).
enum Incoming {
    Listener(TcpListener),
    Handed(tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>),
}

impl Incoming {
    async fn next(&mut self) -> Option<std::io::Result<(tokio::net::TcpStream, SocketAddr)>> {
        match self {
            Incoming::Listener(l) => Some(l.accept().await),
            Incoming::Handed(rx) => {
                let (s, peer) = rx.recv().await?;
                Some(tokio::net::TcpStream::from_std(s).map(|s| (s, peer)))
            }
        }
    }
}

/// How connections are served (one accept loop's settings).
#[derive(Clone, Copy)]
struct Connections {
    grace: std::time::Duration,
    header_timeout: std::time::Duration,
}

impl Connections {
    /// Serves what `incoming` yields until it ends or `shutdown`, then
    /// drains for `grace`.
    async fn serve(
        self,
        app: axum::Router,
        mut incoming: Incoming,
        shutdown: impl Future<Output = ()>,
    ) {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                next = incoming.next() => match next {
                    Some(Ok(a)) => a,
                    Some(Err(e)) => {
                        // Out of file descriptors and the like: wait, go on.
                        tracing::warn!(reason = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                    None => break,
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let svc = tower::ServiceExt::map_request(
                app.clone(),
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                    req
                },
            );
            let conn = http.serve_connection(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(svc),
            );
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(reason = %e, "connection ended with an error");
                }
            });
        }
        drop(incoming);
        tracing::info!("shutdown requested; draining in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(self.grace) => {
                tracing::warn!(grace_secs = self.grace.as_secs(), "grace period over; closing remaining connections");
            }
        }
    }
}
