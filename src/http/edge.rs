//! The local edge, `GET|HEAD /cdn/{path}` (local mode): CloudFront's
//! stand-in in front of the object store. Every request must carry a
//! signed URL or signed cookies that the verifier accepts for the URL as
//! CloudFront would see it (`cdn.base_url` + path + query); otherwise 403
//! with CloudFront's body, never saying which check failed. Then: Range
//! (206/416), ETag and `If-None-Match` (304), content types and
//! Cache-Control by file type as the design's cache policy says. Only
//! keys under `assets/` are served, never an uploaded original
//! (`assets/{id}/source/…`), whatever a signature allows. Objects are
//! streamed in bounded chunks, so a request's memory is a buffer, not the
//! object. CORS comes from the layer on this route.

use crate::backends::cdn::content_type;
use crate::backends::storage::{ObjectKey, StorageError};
use crate::engine::cloudfront::cookies::CloudFrontCookies;
use crate::engine::cloudfront::verifier::{Credentials, verify_request};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

const ACCESS_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>";
const NO_SUCH_KEY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";

fn xml_error(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The `Range: bytes=…` of a request, resolved against `len`:
/// `Ok(None)` for no (or an ignorable) range, `Err(())` when unsatisfiable.
fn byte_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    // One range only; a multi-range request gets the whole object.
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let n: u64 = end.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let s: u64 = start.parse().map_err(|_| ())?;
        let e: u64 = if end.is_empty() {
            len.saturating_sub(1)
        } else {
            end.parse::<u64>()
                .map_err(|_| ())?
                .min(len.saturating_sub(1))
        };
        if s >= len || e < s {
            return Err(());
        }
        (s, e)
    };
    Ok(Some(range))
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == etag)
        })
}

pub async fn serve(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let rest = uri.path().strip_prefix("/cdn").unwrap_or("");
    let mut url = format!("{}{rest}", state.config.cdn.base_url);
    if let Some(q) = uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let cookies = CloudFrontCookies::parse(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let cookies = (cookies.signature.is_some()).then(|| Credentials::from(cookies));
    let now = state.clock.now_epoch();
    if let Err(why) = verify_request(
        state.keys.public_keys(),
        &url,
        cookies,
        Some(peer.ip()),
        now,
    ) {
        state.metrics.edge_denied.inc();
        tracing::debug!(reason = %why, "edge refused a request");
        return xml_error(StatusCode::FORBIDDEN, ACCESS_DENIED);
    }
    // Only the encoded outputs are the CDN's to serve (CloudFront's
    // behaviours cover `/assets/*`); the database is not, and the uploaded
    // originals are refused as the template's bucket policy refuses them
    // (`Deny s3:GetObject assets/*/source/*`: S3 answers AccessDenied).
    let key = match percent_encoding::percent_decode_str(rest.trim_start_matches('/'))
        .decode_utf8()
        .ok()
        .and_then(|p| ObjectKey::parse(&p).ok())
        .filter(|k| k.as_str().starts_with("assets/"))
    {
        Some(k) => k,
        None => return xml_error(StatusCode::NOT_FOUND, NO_SUCH_KEY),
    };
    if is_source(&key) {
        state.metrics.edge_denied.inc();
        return xml_error(StatusCode::FORBIDDEN, ACCESS_DENIED);
    }
    let meta = match state.objects.head(&key).await {
        Ok(m) => m,
        Err(StorageError::NotFound(_)) => return xml_error(StatusCode::NOT_FOUND, NO_SUCH_KEY),
        Err(e) => {
            tracing::warn!(key = %key, reason = %e, "edge could not read the object store");
            return crate::http::problem::Error::Unavailable(e.to_string()).into_response();
        }
    };
    let path = key.as_str();
    let mut common = HeaderMap::new();
    let put = |h: &mut HeaderMap, name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(&mut common, header::CONTENT_TYPE, content_type(path));
    put(
        &mut common,
        header::CACHE_CONTROL,
        &crate::backends::cdn::cache_control(path, state.config.cdn.playlist_max_age.as_secs()),
    );
    put(&mut common, header::ETAG, &meta.etag);
    put(&mut common, header::ACCEPT_RANGES, "bytes");
    put(
        &mut common,
        header::LAST_MODIFIED,
        &crate::engine::cloudfront::cookies::http_date(meta.modified_epoch),
    );
    if etag_matches(&headers, &meta.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let range = match byte_range(&headers, meta.size) {
        Ok(r) => r,
        Err(()) => {
            put(
                &mut common,
                header::CONTENT_RANGE,
                &format!("bytes */{}", meta.size),
            );
            common.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, common).into_response();
        }
    };
    let (status, start, end) = match range {
        Some((s, e)) => {
            put(
                &mut common,
                header::CONTENT_RANGE,
                &format!("bytes {s}-{e}/{}", meta.size),
            );
            (StatusCode::PARTIAL_CONTENT, s, e + 1)
        }
        None => (StatusCode::OK, 0, meta.size),
    };
    put(
        &mut common,
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    if method == Method::HEAD {
        return (status, common).into_response();
    }
    // Streamed in bounded chunks: a request costs a buffer, not the object.
    match state.objects.read(&key, Some(start..end)).await {
        Ok(stream) => (status, common, Body::from_stream(stream)).into_response(),
        Err(StorageError::NotFound(_)) => xml_error(StatusCode::NOT_FOUND, NO_SUCH_KEY),
        Err(e) => crate::http::problem::Error::Unavailable(e.to_string()).into_response(),
    }
}

/// `assets/{id}/source/…`: an uploaded original, not playback output.
fn is_source(key: &ObjectKey) -> bool {
    let mut parts = key.as_str().split('/');
    parts.next() == Some("assets") && parts.nth(1) == Some("source")
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/cdn/{*path}", get(serve))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        byte_range(&h, len)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=0-0,5-6", 100), Ok(None));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=9-3", 100), Err(()));
        assert_eq!(range("bytes=-0", 100), Err(()));
        assert_eq!(range("bytes=x-", 100), Err(()));
    }

    #[test]
    fn sources_are_told_by_their_second_segment() {
        let k = |s: &str| ObjectKey::parse(s).unwrap();
        assert!(is_source(&k("assets/a/source/x.mp4")));
        assert!(!is_source(&k("assets/a/v1/hls/source/x.ts")));
        assert!(!is_source(&k("assets/source/v1/hls/master.m3u8")));
    }

    #[test]
    fn types_and_cache_policy() {
        assert_eq!(content_type("a/720p/seg_001.m4s"), "video/iso.segment");
        assert_eq!(content_type("a/720p/init.mp4"), "video/mp4");
        assert_eq!(content_type("a/720p/s.ts"), "video/mp2t");
        assert_eq!(content_type("a/sub/en.vtt"), "text/vtt");
        use crate::backends::cdn::cache_control;
        assert_eq!(cache_control("a/720p/index.m3u8", 60), "public, max-age=60");
        assert_eq!(
            cache_control("a/720p/seg.ts", 60),
            "public, max-age=31536000, immutable"
        );
    }
}
