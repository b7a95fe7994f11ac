//! CORS with credentials: a page may read a viewer's entitled content only
//! from an origin the operator listed; `*` means no credentials at all.
//! Preflights are answered as the Fetch standard describes.

use crate::helpers::{TestApp, spawn_app_edited};
use std::path::Path;

const ALLOWED: &str = "https://player.example.com";

async fn app(origins: &str) -> TestApp {
    let app = spawn_app_edited(
        &format!("cors_allowed_origins = {origins}"),
        |t| t,
        axum::Router::new(),
    )
    .await;
    crate::clip::publish(&app, "clip").await;
    app
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A listed origin is mirrored with credentials (and `Vary: Origin`); any
/// other gets no CORS headers; `*` gives `*` and never credentials.
#[tokio::test]
async fn credentials_go_only_to_listed_origins() {
    let listed = app(&format!("[\"{ALLOWED}\"]")).await;
    let token = listed.viewer_token("free");
    async fn get(app: &TestApp, token: &str, origin: &str) -> reqwest::Response {
        app.client
            .get(app.url("/v1/play/clip/master.m3u8"))
            .bearer_auth(token)
            .header("origin", origin)
            .send()
            .await
            .unwrap()
    }
    let ok = get(&listed, &token, ALLOWED).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(
        header(&ok, "access-control-allow-credentials"),
        Some("true")
    );
    assert!(
        ok.headers().get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")),
        "Vary: Origin"
    );
    let evil = get(&listed, &token, "https://evil.example").await;
    assert_eq!(header(&evil, "access-control-allow-origin"), None);
    assert_eq!(header(&evil, "access-control-allow-credentials"), None);

    let any = app("[\"*\"]").await;
    let token = any.viewer_token("free");
    let resp = get(&any, &token, "https://evil.example").await;
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        None,
        "`*` never allows credentials"
    );
}

/// `OPTIONS` with `Access-Control-Request-Method` is a preflight: 2xx
/// with the allowed method and headers for a listed origin (on the play
/// routes and the edge), and no CORS headers for another.
#[tokio::test]
async fn preflights_are_answered_per_the_fetch_standard() {
    let app = app(&format!("[\"{ALLOWED}\"]")).await;
    for path in [
        "/v1/play/clip/master.m3u8",
        "/v1/play/clip/session",
        "/cdn/assets/clip/v1/hls/360p/index.m3u8",
    ] {
        let pre = |origin: &'static str| {
            app.client
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization, range")
                .send()
        };
        let ok = pre(ALLOWED).await.unwrap();
        assert!(ok.status().is_success(), "{path}: {}", ok.status());
        assert_eq!(header(&ok, "access-control-allow-origin"), Some(ALLOWED));
        assert_eq!(
            header(&ok, "access-control-allow-credentials"),
            Some("true")
        );
        let methods = header(&ok, "access-control-allow-methods").unwrap_or("");
        assert!(methods.contains("GET"), "{path}: {methods}");
        let allowed = header(&ok, "access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("range"),
            "{path}: {allowed}"
        );
        let evil = pre("https://evil.example").await.unwrap();
        assert_eq!(header(&evil, "access-control-allow-origin"), None, "{path}");
    }
}

/// `node web/tests/cors.mjs PAGE`: hls.js in Chromium on a page of another
/// origin plays `src` with credentials; what the page saw.
async fn play_from_page(page: String) -> serde_json::Value {
    crate::players::browser("cors.mjs", vec![page]).await
}

/// A page server on its own origin: `/` plays `?src=` with hls.js and
/// credentials.
async fn page_server(listener: tokio::net::TcpListener) {
    const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><video id="v" muted></video>
<script src="/hls.min.js"></script><script>
window.result = { levels: [], time: 0, error: null };
const src = new URLSearchParams(location.search).get("src");
const hls = new Hls({ xhrSetup: (x) => { x.withCredentials = true; } });
hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
  window.result.levels = d.levels.map((l) => l.height);
  document.getElementById("v").play().catch(() => {});
});
hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.result.error = d.type + "/" + d.details; });
setInterval(() => { window.result.time = document.getElementById("v").currentTime; }, 100);
hls.loadSource(src);
hls.attachMedia(document.getElementById("v"));
</script>"#;
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/hls.js/dist/hls.min.js");
    let router = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Html(PAGE) }),
        )
        .route(
            "/hls.min.js",
            axum::routing::get(move || async move {
                (
                    [("content-type", "text/javascript")],
                    std::fs::read(js).unwrap(),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
}

/// A gateway with a clip, its cookies readable over plain http (`Lax`).
async fn browser_app(origins: &str) -> TestApp {
    let app = spawn_app_edited(
        &format!("cors_allowed_origins = {origins}"),
        |t| format!("{t}\n[cdn]\nsame_site = \"Lax\"\ncookie_secure = false\n"),
        axum::Router::new(),
    )
    .await;
    crate::clip::publish(&app, "clip").await;
    app
}

/// The page URL that plays `app`'s clip for a free viewer, on `origin`.
fn page_for(app: &TestApp, origin: &str) -> String {
    let src = app.url(&format!(
        "/v1/play/clip/master.m3u8?token={}",
        app.viewer_token("free")
    ));
    let enc: String = url::form_urlencoded::byte_serialize(src.as_bytes()).collect();
    format!("{origin}/?src={enc}")
}

fn read_nothing(seen: &serde_json::Value, what: &str) {
    assert!(
        seen["error"]
            .as_str()
            .is_some_and(|e| e.contains("manifestLoadError")),
        "{what}: {seen}"
    );
    assert_eq!(seen["levels"], serde_json::json!([]), "{what}: {seen}");
}

/// hls.js in Chromium plays the free tier from a page on a listed origin
/// (cookie delivery: the master sets the cookies, the edge reads them),
/// and gets nothing from a page on an origin that is not listed, nor from
/// any page when the gateway allows `*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlsjs_plays_from_a_listed_page_origin_only() {
    let allowed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_origin = format!("http://{}", allowed.local_addr().unwrap());
    let other_origin = format!("http://{}", other.local_addr().unwrap());
    page_server(allowed).await;
    page_server(other).await;

    let app = browser_app(&format!("[\"{allowed_origin}\"]")).await;
    let seen = play_from_page(page_for(&app, &allowed_origin)).await;
    assert!(seen["error"].is_null(), "listed origin: {seen}");
    let mut levels: Vec<u64> = seen["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap())
        .collect();
    levels.sort();
    assert_eq!(levels, [360, 480], "{seen}");
    assert!(seen["time"].as_f64().unwrap() > 1.5, "it plays: {seen}");
    let seen = play_from_page(page_for(&app, &other_origin)).await;
    read_nothing(&seen, "an origin not listed");

    let any = browser_app("[\"*\"]").await;
    let seen = play_from_page(page_for(&any, &other_origin)).await;
    read_nothing(&seen, "`*` lends no credentials to any page");
}
