//! The origin cache seen from outside: playgate in front of a plain HTTP
//! origin (a loopback server holding the ffmpeg clip, counting reads, and
//! able to fail on demand).

use crate::clip;
use crate::helpers::{TestApp, problem, spawn_app_edited};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Origin {
    reads: Arc<Mutex<HashMap<String, usize>>>,
    down: Arc<AtomicBool>,
}

impl Origin {
    fn reads_of(&self, path: &str) -> usize {
        self.reads.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// `GET /assets/clip/v1/{rest}` → the clip's `{rest}`, after 100 ms (so
/// concurrent requests really overlap); 500 while `down`.
async fn serve(State(o): State<Origin>, uri: Uri) -> Result<Vec<u8>, StatusCode> {
    *o.reads
        .lock()
        .unwrap()
        .entry(uri.path().to_owned())
        .or_default() += 1;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    if o.down.load(Ordering::SeqCst) {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let rest = uri
        .path()
        .strip_prefix("/assets/clip/v1/")
        .ok_or(StatusCode::NOT_FOUND)?;
    if rest.split('/').any(|s| s == "..") {
        return Err(StatusCode::NOT_FOUND);
    }
    std::fs::read(clip::clip().join(rest)).map_err(|_| StatusCode::NOT_FOUND)
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
                "{t}\n[origin]\nhttp_base = \"http://{addr}\"\ntimeout = \"2s\"\n[cache]\n{cache}\n"
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

#[tokio::test]
async fn origin_down_serves_the_last_good_copy_marked_stale_then_503() {
    let (origin, app) = origin_and_app("origin_fresh = \"1s\"\nstale_if_error = \"2s\"").await;
    let token = app.viewer_token("free");
    let first = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("x-playgate-stale").is_none());
    let good = first.text().await.unwrap();
    origin.down.store(true, Ordering::SeqCst);

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let stale = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()["x-playgate-stale"], "1");
    assert_eq!(stale.text().await.unwrap(), good);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("playgate_origin_stale_served_total") && !l.ends_with(" 0")),
        "{metrics}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let (status, body) = problem(app.get_bearer("/v1/play/clip/master.m3u8", &token).await).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        !body["detail"].as_str().unwrap().contains("127.0.0.1"),
        "no internals in the body: {body}"
    );

    origin.down.store(false, Ordering::SeqCst);
    let back = app.get_bearer("/v1/play/clip/master.m3u8", &token).await;
    assert_eq!(back.status(), 200);
    assert!(back.headers().get("x-playgate-stale").is_none());
}
