//! The viewer's endpoints:
//! - `GET /v1/play/{asset}/master.m3u8`: the tier's master; cookie
//!   delivery sets one CloudFront cookie triple per allowed rendition
//!   path, URL delivery points each variant at the signed media endpoint;
//! - `GET /v1/play/{asset}/hls/{*rest}`: URL delivery's media playlist,
//!   verified as CloudFront would, re-served with the signature on every URI;
//! - `GET /v1/play/{asset}/manifest.mpd`: the tier's MPD (cookies);
//! - `POST /v1/play/{asset}/session`: the cookies as JSON (and set).
//!
//! Status codes: 404 unknown or deleted asset; 409 not ready yet, or
//! `delivery-unavailable` when the asset's layout cannot carry the tier's
//! delivery (a cookie tier with `fallback = "urls"` gets URL delivery
//! instead, on the master and the session); 403 below the asset's
//! `min_tier`, nothing playable for the tier, or a bad media signature;
//! 503 when the origin is down past the stale window.

use crate::domain::AssetId;
use crate::engine::tiers::Delivery;
use crate::http::auth::{MasterViewerClaims, ViewerClaims};
use crate::http::extract::Path;
use crate::http::problem::Result;
use crate::playback::{Entitlement, Format, Viewer};
use crate::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The session: the viewer's cookies as JSON (also set), and where to play.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Session<'a> {
    asset: AssetId,
    tier: &'a crate::domain::TierName,
    /// `urls` when a cookie tier's asset cannot carry cookies and the tier
    /// falls back.
    delivery: Delivery,
    master_url: String,
    /// Epoch seconds.
    expires_at: u64,
    renditions: &'a [String],
    cookies: &'a [crate::playback::CookieGrant],
    thumbnails: Option<crate::playback::Thumbnails>,
}

pub const HLS: &str = "application/vnd.apple.mpegurl";
pub const DASH: &str = "application/dash+xml";
/// Set when a response was built from an origin copy served stale.
pub const STALE_HEADER: &str = "x-playgate-stale";

fn viewer<'a>(v: &'a ViewerClaims, peer: SocketAddr) -> Viewer<'a> {
    Viewer {
        tier: &v.tier,
        rules: &v.rules,
        ip: Some(peer.ip()),
        ttl: None,
    }
}

fn stale_marker(headers: &mut HeaderMap, stale: bool) {
    if stale {
        headers.insert(
            HeaderName::from_static(STALE_HEADER),
            HeaderValue::from_static("1"),
        );
    }
}

/// The body with `private, no-store`, the cookies when the delivery
/// uses them, and the stale marker.
fn entitled(ent: &Entitlement, content_type: &'static str) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        ent.body.clone(),
    )
        .into_response();
    let headers = resp.headers_mut();
    for v in &ent.set_cookie {
        headers.append(header::SET_COOKIE, v.clone());
    }
    stale_marker(headers, ent.stale);
    resp
}

/// The tier's master (`master.m3u8`, its delivery) or MPD (cookies).
async fn authorised(
    state: &AppState,
    v: &ViewerClaims,
    peer: SocketAddr,
    asset: &AssetId,
    format: Format,
) -> Result<Response> {
    let (delivery, content_type) = match format {
        Format::Hls => (v.rules.delivery, HLS),
        Format::Dash => (Delivery::Cookies, DASH),
    };
    let ent = state
        .play
        .authorise(asset, &viewer(v, peer), format, delivery)
        .await?;
    Ok(entitled(&ent, content_type))
}

/// The tier's master playlist. Cookie delivery sets one CloudFront cookie
/// triple per allowed rendition path; URL delivery points each variant at
/// the signed media endpoint.
#[utoipa::path(get, path = "/v1/play/{asset}/master.m3u8", tag = "playback",
    security(("viewer" = []), ("viewer_query" = [])),
    params(("asset" = String, Path, description = "The asset")),
    responses((status = 200, description = "The authorised master",
        content_type = "application/vnd.apple.mpegurl", body = String)))]
pub async fn master(
    State(state): State<AppState>,
    MasterViewerClaims(v): MasterViewerClaims,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(asset): Path<AssetId>,
) -> Result<Response> {
    authorised(&state, &v, peer, &asset, Format::Hls).await
}

/// The tier's DASH MPD (cookie delivery).
#[utoipa::path(get, path = "/v1/play/{asset}/manifest.mpd", tag = "playback",
    security(("viewer" = []), ("viewer_query" = [])),
    params(("asset" = String, Path, description = "The asset")),
    responses((status = 200, description = "The authorised MPD",
        content_type = "application/dash+xml", body = String)))]
pub async fn mpd(
    State(state): State<AppState>,
    MasterViewerClaims(v): MasterViewerClaims,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(asset): Path<AssetId>,
) -> Result<Response> {
    authorised(&state, &v, peer, &asset, Format::Dash).await
}

/// The viewer's cookies as JSON, also set as `Set-Cookie`.
#[utoipa::path(post, path = "/v1/play/{asset}/session", tag = "playback",
    security(("viewer" = [])),
    params(("asset" = String, Path, description = "The asset")),
    responses((status = 200, description = "The session", body = Session)))]
pub async fn session(
    State(state): State<AppState>,
    v: ViewerClaims,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(asset): Path<AssetId>,
) -> Result<Response> {
    let ent = state
        .play
        .authorise(&asset, &viewer(&v, peer), Format::Hls, Delivery::Cookies)
        .await?;
    let gateway = state.config.server.public_url.as_str();
    let (record, version) = state.play.playable_asset(&asset).await?;
    let thumbnails = state.play.thumbnails(&record, version, ent.expires);
    let mut resp = (
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(Session {
            master_url: format!("{gateway}/v1/play/{asset}/master.m3u8"),
            asset,
            tier: &v.tier,
            delivery: ent.delivery,
            expires_at: ent.expires,
            renditions: &ent.renditions,
            cookies: &ent.cookies,
            thumbnails,
        }),
    )
        .into_response();
    for v in &ent.set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, v.clone());
    }
    stale_marker(resp.headers_mut(), ent.stale);
    Ok(resp)
}

/// URL delivery's media playlist: the CloudFront signature in the query is
/// verified as CloudFront would, and the playlist is served with it on
/// every URI.
#[utoipa::path(get, path = "/v1/play/{asset}/hls/{rest}", tag = "playback",
    params(("asset" = String, Path, description = "The asset"),
        ("rest" = String, Path, description = "The playlist path in the version")),
    responses((status = 200, description = "The signed media playlist",
        content_type = "application/vnd.apple.mpegurl", body = String)))]
pub async fn media(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((asset, rest)): Path<(AssetId, String)>,
    uri: Uri,
) -> Result<Response> {
    let query = uri.query().unwrap_or("");
    let m = state
        .play
        .signed_media(&asset, &rest, query, Some(peer.ip()))
        .await?;
    let cache = format!("private, max-age={}", m.max_age);
    let mut resp = (
        [
            (header::CONTENT_TYPE, HLS.to_owned()),
            (header::CACHE_CONTROL, cache),
        ],
        m.body,
    )
        .into_response();
    stale_marker(resp.headers_mut(), m.stale);
    Ok(resp)
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/play/{asset}/master.m3u8", get(master))
        .route("/v1/play/{asset}/manifest.mpd", get(mpd))
        .route("/v1/play/{asset}/session", post(session))
        .route("/v1/play/{asset}/hls/{*rest}", get(media))
}
