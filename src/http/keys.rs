//! `GET /v1/keys/{asset}/{key}`: the 16 bytes of a content key
//! (`application/octet-stream`, `private, no-store`), only for a key token
//! that grants the key's rendition: `?kt=` (URL delivery: the gateway put
//! it on the key URI of the media playlist) or the `playgate-keys` cookie
//! (cookie delivery: set with the master, for this path only).
//!
//! 404 for an unknown asset or key (before any token is looked at); 401
//! without a token; 403 for a token that is expired, for another asset or
//! address, or that does not grant the key's rendition.

use crate::domain::AssetId;
use crate::http::extract::Path;
use crate::http::problem::{Error, Result};
use crate::protect::{COOKIE, TOKEN_PARAM, is_key_id};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The key tokens offered, in order: the query's `kt`, then every
/// `playgate-keys` cookie (a browser may hold an older one beside the
/// current; any one that opens the key will do). At most 8.
fn tokens_of(uri: &Uri, headers: &HeaderMap) -> Vec<String> {
    let query = uri.query().into_iter().flat_map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == TOKEN_PARAM)
            .map(|(_, v)| v.into_owned())
    });
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned());
    query.chain(cookies).take(8).collect()
}

/// A content key (16 bytes), released only to a token granting its
/// rendition (`?kt=` or the `playgate-keys` cookie).
#[utoipa::path(get, path = "/v1/keys/{asset}/{key}", tag = "playback",
    security(("key_token" = []), ("key_cookie" = [])),
    params(("asset" = String, Path, description = "The asset"),
        ("key" = String, Path, description = "The key id: 32 hex digits")),
    responses((status = 200, description = "The key",
        content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn key(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((asset, key)): Path<(AssetId, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    if !is_key_id(&key) {
        return Err(Error::NotFound);
    }
    let tokens = tokens_of(&uri, &headers);
    let clear = state
        .play
        .content_key(&asset, &key, &tokens, Some(peer.ip()))
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        clear.expose().to_vec(),
    )
        .into_response())
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/v1/keys/{asset}/{key}", get(key))
}
