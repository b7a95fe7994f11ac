//! The middleware stack, outermost first:
//!
//! 1. `observe`: request id (accepted if sane, else generated; echoed),
//!    one access-log line with secrets redacted, metrics by route;
//!    inside it, a panic anywhere below becomes an opaque 500 problem with
//!    the request id (the connection stays up);
//! 2. overload and time limits: a concurrency limit that sheds load with
//!    503 + `Retry-After`, and a request timeout (longer for source
//!    uploads) — both as problem+json;
//! 3. gzip for playlists, MPDs and JSON;
//! 4. body size limit for extractors.
//!
//! CORS is applied to the play routes only (see `cors()`).

use crate::http::problem::{Error, REQUEST_ID};
use crate::state::AppState;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::Predicate;
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn wrap(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let server = &state.config.server;
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: tower::BoxError| async move {
            if e.is::<tower::load_shed::error::Overloaded>() {
                Error::Overloaded
            } else if e.is::<tower::timeout::error::Elapsed>() {
                Error::Timeout
            } else {
                Error::internal(e)
            }
        }))
        .load_shed()
        // `Router::layer` wraps each route, so the limit must share one
        // semaphore across them to be global.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            server.max_concurrency,
        ));
    router
        .layer(axum::extract::DefaultBodyLimit::max(
            usize::try_from(server.max_body).unwrap_or(usize::MAX),
        ))
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .compress_when(TextualBody),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            time_limit,
        ))
        .layer(limits)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
}

/// A handler panicked: log what it said, answer an opaque 500 problem.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    axum::response::IntoResponse::into_response(Error::internal(format!(
        "handler panicked: {what}"
    )))
}

/// `server.request_timeout` for every request but a source upload, which
/// gets `pipeline.upload_timeout` (a 5 GB file does not arrive in 30 s).
async fn time_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let upload = req.method() == Method::PUT
        && req.uri().path().starts_with("/v1/uploads/")
        && req.uri().path().ends_with("/source");
    let limit = if upload {
        state.config.pipeline.upload_timeout
    } else {
        state.config.server.request_timeout
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => axum::response::IntoResponse::into_response(Error::Timeout),
    }
}

/// Compress only text formats worth compressing (never video segments).
#[derive(Clone, Copy)]
struct TextualBody;

impl Predicate for TextualBody {
    fn should_compress<B: http_body::Body>(&self, response: &axum::http::Response<B>) -> bool {
        let ct = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let textual = ct.starts_with("application/vnd.apple.mpegurl")
            || ct.starts_with("application/x-mpegurl")
            || ct.starts_with("application/dash+xml")
            || ct.starts_with("application/json")
            || ct.starts_with("application/problem+json")
            || ct.starts_with("text/");
        let big_enough = http_body::Body::size_hint(response.body())
            .exact()
            .is_none_or(|n| n >= 256);
        textual && big_enough
    }
}

/// CORS for the play endpoints and the local edge. Listed origins get
/// their own origin back with credentials (cookies: cookie delivery), so
/// only they can read a viewer's entitled responses; `*` (alone) gives
/// `Access-Control-Allow-Origin: *` and never credentials (URL delivery,
/// players that send no cookies). Preflights (`OPTIONS` with
/// `Access-Control-Request-Method`) get 200 with the allowed method and
/// headers; other origins get no CORS headers, which the browser reads as
/// a refusal (Fetch standard, "CORS check").
pub fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::RANGE])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .max_age(std::time::Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return layer.allow_origin(AllowOrigin::any());
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let listed = list.clone();
    layer
        .allow_origin(AllowOrigin::list(list))
        // Only where the origin is allowed: no stray credentials header.
        .allow_credentials(AllowCredentials::predicate(move |origin, _| {
            listed.contains(origin)
        }))
}

/// A client-sent id is kept if it is short and plain; otherwise replaced.
fn accept_request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Query parameters whose values never reach a log.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "signature",
    "policy",
    "key-pair-id",
    "api_key",
    "access_token",
    // Key tokens (`crate::protect::TOKEN_PARAM`).
    "kt",
];

/// The request target with secret query values replaced by `[redacted]`.
/// Names are compared as the extractors read them: percent- and
/// `+`-decoded (`?%74oken=` is `token`), in any case.
pub fn redact_uri(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let Some(q) = uri.query() else {
        return path.to_owned();
    };
    let parts: Vec<String> = q
        .split('&')
        .map(|pair| {
            let (k, _) = pair.split_once('=').unwrap_or((pair, ""));
            let name: String = form_urlencoded::parse(k.as_bytes())
                .next()
                .map(|(name, _)| name.into_owned())
                .unwrap_or_default();
            if SECRET_PARAMS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name.trim()))
            {
                format!("{k}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// How a credential header is shown in logs: its scheme only.
fn redact_auth(headers: &HeaderMap) -> Option<String> {
    headers.get(header::AUTHORIZATION).map(|v| {
        let scheme = v
            .to_str()
            .ok()
            .and_then(|s| s.split_whitespace().next())
            .filter(|s| s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphabetic()))
            .unwrap_or("?");
        format!("{scheme} [redacted]")
    })
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = accept_request_id(req.headers());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let target = redact_uri(req.uri());
    let authorization = redact_auth(req.headers());
    let has_cookie = req.headers().contains_key(header::COOKIE);
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels {
            route: route.clone(),
            method: method.to_string(),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "playgate::access",
        request_id = %id,
        method = %method,
        route = %route,
        uri = %target,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        authorization = authorization.as_deref().unwrap_or("-"),
        cookie = if has_cookie { "[redacted]" } else { "-" },
        "request"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_query_values() {
        let uri: axum::http::Uri =
            "/v1/play/a/master.m3u8?token=eyJhbGc.x.y&lang=en&Signature=abc&Policy=p"
                .parse()
                .unwrap();
        let r = redact_uri(&uri);
        assert_eq!(
            r,
            "/v1/play/a/master.m3u8?token=[redacted]&lang=en&Signature=[redacted]&Policy=[redacted]"
        );
    }

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(accept_request_id(&h), "abc-123");
        h.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_static("bad id with spaces"),
        );
        assert_ne!(accept_request_id(&h), "bad id with spaces");
    }
}
