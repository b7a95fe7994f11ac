//! playgate: a secure playback gateway and CloudFront edge signer for
//! video on demand.
//!
//! Map of the crate:
//! - `cli`: the `playgate` commands; `main.rs` only calls `cli::main`.
//! - `config`: typed config from TOML + `PLAYGATE__…` env, all problems at once.
//! - `state`: `AppState`, the services built once at start-up.
//! - `http`: routes, middleware, extractors, one file per resource.
//! - `error`: one `Error` → problem+json.
//! - `domain`, `secret`, `clock`: newtypes, redacting secrets, time.
//! - `aws`: the AWS SDK configuration and error wording shared by the AWS backends.
//! - `cdn`: the cache policy by file type, and invalidating an asset at the
//!   CDN (CloudFront; nothing locally).
//! - `doctor`: `playgate doctor`, the live AWS setup checked against the config.
//! - `cloudfront`: policies, signing, verifying, cookies, key ring.
//! - `auth`: tier-claim paths and dev token minting.
//! - `store`: `Store` trait (assets, tiers, jobs) and SQLite.
//! - `storage`: `ObjectStore` trait and the local directory store.
//! - `tiers`: tier rules and their evaluation.
//! - `hls`: playlist tokenizer, master filtering and URI rewriting,
//!   rendition scopes, media playlist signing.
//! - `dash`: MPD filtering.
//! - `playback`: what a tier's viewer receives (filtered, rewritten, signed).
//! - `pipeline`: ladder planning, probing, job states, the ffmpeg encoder,
//!   I-frame playlists, the MediaConvert backend, the runner and reconciler.
//! - `origin`: where playback reads playlists, with coalescing and stale-if-error.
//! - `ingest`: the `playgate ingest` client (upload, transcode, wait).
//! - `publish`: an encoded directory becomes an asset's next version.
//! - `play`: the playback service behind the play and sign endpoints, with its caches.
//! - `metrics`: Prometheus registry.
//!
//! The entry point for embedding and tests is [`run`].

pub mod auth;
pub mod aws;
pub mod cdn;
pub mod cli;
pub mod clock;
pub mod cloudfront;
pub mod config;
pub mod dash;
pub mod doctor;
pub mod domain;
pub mod error;
pub mod hls;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod origin;
pub mod pipeline;
pub mod play;
pub mod playback;
pub mod publish;
pub mod secret;
pub mod state;
pub mod storage;
pub mod store;
pub mod tiers;

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

/// Serves an already built state with the router `make` builds.
pub async fn serve(
    state: state::AppState,
    make: impl FnOnce(state::AppState) -> axum::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let grace = state.config.server.shutdown_grace;
    let app = make(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = tx.send(());
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let deadline = async move {
        if rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server => r?,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining connections");
        }
    }
    tracing::info!("stopped");
    Ok(())
}
