//! The local demo page (local mode, `demo.enabled`): pick an asset and a
//! tier, play it with hls.js through the real play endpoint and the local
//! `/cdn` edge, and see which levels the player got and which one plays.
//!
//! - `GET /demo`: the page; `GET /demo/hls.min.js`: hls.js, installed by
//!   npm into `web/` (never fetched from a CDN at run time);
//! - `GET /demo/assets`: ready assets; `GET /demo/token?tier=T`: a short
//!   viewer token from the config's `dev = true` issuer. Both answer only
//!   loopback clients of a gateway listening on loopback, and never a
//!   request a proxy forwarded (`Forwarded`, `X-Forwarded-For`, …): they
//!   hand out what the admin and viewer APIs guard.

use crate::backends::store::{Asset, AssetStatus, Kind, StoreExt};
use crate::domain::TierName;
use crate::http::extract::Query;
use crate::http::problem::{Error, Result};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

const PAGE: &str = include_str!("demo.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo", get(page))
        .route("/demo/hls.min.js", get(hlsjs))
        .route("/demo/assets", get(assets))
        .route("/demo/token", get(token))
}

/// Headers a reverse proxy adds: a request carrying one came from
/// somewhere else, whatever the peer address says.
const PROXY_HEADERS: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-host",
];

/// The helpers answer only a loopback peer of a gateway that listens on
/// loopback, and never through a proxy on the same host (which would make
/// every request look local). Anything else: 404, as if absent.
fn loopback_only(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Result<()> {
    let local = peer.ip().is_loopback()
        && state.config.server.listen.ip().is_loopback()
        && !PROXY_HEADERS.iter().any(|h| headers.contains_key(*h));
    if local { Ok(()) } else { Err(Error::NotFound) }
}

async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

async fn hlsjs(State(state): State<AppState>) -> Result<Response> {
    let path = state.config.demo.hlsjs_dir.join("hls.min.js");
    let js = tokio::fs::read(&path).await.map_err(|_| {
        Error::Unavailable(format!(
            "{} is missing; run `npm ci --prefix web` (make demo does)",
            path.display()
        ))
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/javascript"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        js,
    )
        .into_response())
}

async fn assets(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response> {
    loopback_only(&state, peer, &headers)?;
    let page = state
        .store
        .list_typed::<Asset>(Kind::Asset, None, 500)
        .await?;
    let ready: Vec<_> = page
        .into_iter()
        .filter(|v| v.value.status == AssetStatus::Ready)
        .map(|v| json!({"id": v.value.id, "title": v.value.title}))
        .collect();
    let tiers: Vec<&TierName> = state.config.tiers.keys().collect();
    Ok(Json(json!({"assets": ready, "tiers": tiers})).into_response())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    tier: TierName,
}

async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Response> {
    loopback_only(&state, peer, &headers)?;
    let issuer = state
        .config
        .auth
        .issuers
        .iter()
        .find(|i| i.dev)
        .ok_or_else(|| Error::NotFound)?;
    let jwt = crate::auth::mint_dev_token(
        issuer,
        "demo-viewer",
        &q.tier,
        &[],
        state.clock.now_epoch(),
        std::time::Duration::from_secs(600),
    )
    .map_err(|e| Error::internal(e.to_string()))?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"token": jwt})),
    )
        .into_response())
}
