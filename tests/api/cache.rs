//! The origin cache seen from outside: playgate in front of a plain HTTP
//! origin (a loopback server holding the ffmpeg clip, counting reads, and
//! able to fail on demand).

use crate::clip;
use crate::helpers::{TestApp, problem, spawn_app_edited};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// How the origin misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Fault {
    None = 0,
    /// 500 Internal Server Error.
    Error = 1,
    /// No answer for 10 s (longer than `origin.timeout`).
    Hang = 2,
    /// Headers with the full Content-Length, half the body, then the
    /// connection closes.
    Truncate = 3,
}

#[derive(Clone, Default)]
struct Origin {
    reads: Arc<Mutex<HashMap<String, usize>>>,
    fault: Arc<AtomicU8>,
}

/// Half of `data`, then an error: hyper closes the connection mid-body.
struct Truncated(Option<bytes::Bytes>);

impl http_body::Body for Truncated {
    type Data = bytes::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(match self.0.take() {
            Some(half) => Ok(http_body::Frame::data(half)),
            None => Err(std::io::Error::other("origin closed mid-body")),
        }))
    }
}

impl Origin {
    fn set(&self, f: Fault) {
        self.fault.store(f as u8, Ordering::SeqCst);
    }

    fn reads_of(&self, path: &str) -> usize {
        self.reads.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// `GET /assets/clip/v1/{rest}` → the clip's `{rest}`, after 100 ms (so
/// concurrent requests really overlap), or the fault set.
async fn serve(State(o): State<Origin>, uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    *o.reads
        .lock()
        .unwrap()
        .entry(uri.path().to_owned())
        .or_default() += 1;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let fault = o.fault.load(Ordering::SeqCst);
    if fault == Fault::Error as u8 {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if fault == Fault::Hang as u8 {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    }
    let Some(rest) = uri.path().strip_prefix("/assets/clip/v1/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if rest.split('/').any(|s| s == "..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(bytes) = std::fs::read(clip::clip().join(rest)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if fault == Fault::Truncate as u8 {
        let len = bytes.len();
        let half = bytes::Bytes::from(bytes).slice(..len / 2);
        return (
            [(axum::http::header::CONTENT_LENGTH, len.to_string())],
            axum::body::Body::new(Truncated(Some(half))),
        )
            .into_response();
    }
    bytes.into_response()
}

async fn origin_and_app(cache: &str) -> (Origin, TestApp) {
    let origin = Origin::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .fallback(serve)
        .with_state(origin.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let cache = cache.to_owned();
    let app = spawn_app_edited(
        "",
        move |t| {
            format!(
                "{t}\n[origin]\nhttp_base = \"http://{addr}\"\ntimeout = \"500ms\"\n[cache]\n{cache}\n"
            )
        },
        axum::Router::new(),
    )
    .await;
    clip::publish(&app, "clip").await;
    (origin, app)
}

#[tokio::test]
async fn a_thousand_concurrent_first_requests_read_the_origin_once() {
    let (origin, app) = origin_and_app("").await;
    let app = Arc::new(app);
    let token = app.viewer_token("free");
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move {
                let r = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    let mut bodies = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        bodies.insert(body);
    }
    assert_eq!(bodies.len(), 1, "every viewer got the same master");
    assert_eq!(origin.reads_of("/assets/clip/v1/hls/master.m3u8"), 1);
    for r in clip::RENDITIONS {
        assert_eq!(
            origin.reads_of(&format!("/assets/clip/v1/hls/{r}/index.m3u8")),
            1,
            "{r}: media playlists are read once too (to find the scopes)"
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("playgate_cache_hits_total{cache=\"masters\"}"),
        "{metrics}"
    );
}

/// The origin fails as `fault` says: the last good copy is served marked
/// stale within `stale_if_error`, then a 503 problem, then fresh again
/// once the origin is back.
async fn stale_then_503_then_fresh(fault: Fault) {
    let (origin, app) = origin_and_app("origin_fresh = \"1s\"\nstale_if_error = \"2s\"").await;
    let token = app.viewer_token("free");
    let first = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("x-playgate-stale").is_none());
    let good = first.text().await.unwrap();
    origin.set(fault);

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let stale = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
    assert_eq!(stale.status(), 200, "{fault:?}");
    assert_eq!(stale.headers()["x-playgate-stale"], "1", "{fault:?}");
    assert_eq!(
        stale.text().await.unwrap(),
        good,
        "{fault:?}: never a partial body"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("playgate_origin_stale_served_total") && !l.ends_with(" 0")),
        "{metrics}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let (status, body) = problem(app.get_bearer("/v1/play/clip/master.m3u8", &token).await).await;
    assert_eq!(status, 503, "{fault:?}: {body}");
    assert!(
        !body["detail"].as_str().unwrap().contains("127.0.0.1"),
        "no internals in the body: {body}"
    );

    origin.set(Fault::None);
    let back = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
    assert_eq!(back.status(), 200);
    assert!(back.headers().get("x-playgate-stale").is_none());
}

#[tokio::test]
async fn origin_500s_serve_the_last_good_copy_marked_stale_then_503() {
    stale_then_503_then_fresh(Fault::Error).await;
}

#[tokio::test]
async fn an_origin_that_hangs_is_cut_at_the_timeout_and_treated_as_down() {
    stale_then_503_then_fresh(Fault::Hang).await;
}

#[tokio::test]
async fn an_origin_closing_mid_body_never_yields_a_partial_playlist() {
    stale_then_503_then_fresh(Fault::Truncate).await;
}
