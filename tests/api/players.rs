//! Real clients against a real playgate: ffmpeg reads the authorised
//! master over HTTP and copies every stream it may have to a file, in
//! cookie delivery and in URL delivery; hls.js in headless Chromium plays
//! from `/demo`. The streams that come out are exactly the tier's.
//!
//! ffmpeg's own cookie jar keys cookies by name alone, so one rendition's
//! `CloudFront-Policy` overwrites another's (browsers key them by name and
//! path, RFC 6265). In cookie delivery ffmpeg therefore talks through a
//! loopback proxy that keeps reqwest's RFC 6265 jar; ffmpeg still does
//! all the HLS work.

use crate::helpers::TestApp;
use crate::play::app_with_clip;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::path::Path;
use std::process::Command;

/// A forward proxy (absolute-form requests) with a cookie jar.
async fn cookie_jar_proxy() -> String {
    async fn forward(
        State(client): State<reqwest::Client>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), StatusCode> {
        let mut req = client.request(method, uri.to_string()).body(body);
        for (k, v) in headers.iter() {
            if !matches!(
                k.as_str(),
                "host" | "cookie" | "proxy-connection" | "connection"
            ) {
                req = req.header(k, v);
            }
        }
        let resp = req.send().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
        let status = resp.status();
        let mut out = HeaderMap::new();
        for (k, v) in resp.headers() {
            if !matches!(
                k.as_str(),
                "transfer-encoding" | "connection" | "content-length"
            ) {
                out.append(k, v.clone());
            }
        }
        let bytes = resp.bytes().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
        Ok((status, out, bytes))
    }
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(forward).with_state(client);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// ffmpeg copies every stream of `master` into `out`; returns the
/// streams as `video 360`, `audio`, … sorted.
pub async fn ffmpeg_copy(master: String, proxy: Option<String>, out: &Path) -> Vec<String> {
    let out = out.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-xerror"]);
        if let Some(p) = &proxy {
            cmd.args(["-http_proxy", p]);
        }
        cmd.args(["-i", &master, "-map", "0", "-c", "copy", "-y"])
            .arg(&out);
        let run = cmd
            .output()
            .expect("run ffmpeg (scripts/ensure-deps.sh installs it)");
        assert!(
            run.status.success() && run.stderr.is_empty(),
            "ffmpeg failed or complained: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(probe.status.success());
        let mut streams: Vec<String> = String::from_utf8(probe.stdout)
            .unwrap()
            .lines()
            .map(|l| l.trim_end_matches(',').replace(',', " "))
            .collect();
        streams.sort();
        streams
    })
    .await
    .unwrap()
}

fn master_url(app: &TestApp, token: &str) -> String {
    app.url(&format!("/v1/play/clip/master.m3u8?token={token}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_copies_exactly_the_tiers_streams_with_cookies_and_with_signed_urls() {
    let app = app_with_clip().await;
    let dir = tempfile::tempdir().unwrap();
    let expected = vec!["audio", "video 360", "video 480"];

    let proxy = cookie_jar_proxy().await;
    let cookies = ffmpeg_copy(
        master_url(&app, &app.viewer_token("free")),
        Some(proxy),
        &dir.path().join("cookies.mkv"),
    )
    .await;
    assert_eq!(cookies, expected, "cookie delivery, tier free");

    let urls = ffmpeg_copy(
        master_url(&app, &app.viewer_token("mobile")),
        None,
        &dir.path().join("urls.mkv"),
    )
    .await;
    assert_eq!(urls, expected, "URL delivery, tier mobile");

    let premium = ffmpeg_copy(
        master_url(&app, &app.viewer_token("premium")),
        Some(cookie_jar_proxy().await),
        &dir.path().join("premium.mkv"),
    )
    .await;
    assert_eq!(
        premium,
        vec!["audio", "video 360", "video 480", "video 720"]
    );
}

/// An encrypted asset (a key per rendition): ffmpeg fetches each key from
/// the gateway — with the master's key cookie (through the jar proxy) and
/// with the key token on the key URI (URL delivery) — and decrypts every
/// segment; `-xerror` and an empty stderr mean no segment failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_an_encrypted_asset_with_keys_from_the_gateway() {
    let app = app_with_clip().await;
    let _copy = crate::clip::publish_encrypted(&app, "enc").await;
    let dir = tempfile::tempdir().unwrap();
    let url = |tier: &str| {
        app.url(&format!(
            "/v1/play/enc/master.m3u8?token={}",
            app.viewer_token(tier)
        ))
    };
    let cookies = ffmpeg_copy(
        url("free"),
        Some(cookie_jar_proxy().await),
        &dir.path().join("cookies.mkv"),
    )
    .await;
    assert_eq!(cookies, vec!["audio", "video 360", "video 480"]);
    let urls = ffmpeg_copy(url("mobile"), None, &dir.path().join("urls.mkv")).await;
    assert_eq!(urls, vec!["audio", "video 360", "video 480"]);
    // The keys came from the gateway, as many as the streams.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let issued: f64 = metrics
        .lines()
        .find(|l| l.starts_with("playgate_content_keys_total{outcome=\"issued\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(issued >= 6.0, "keys issued: {issued}");
}

/// `node web/tests/{script} ARGS…`: a browser run in Debian's Chromium;
/// the JSON line it prints.
pub(crate) async fn browser(script: &str, args: Vec<String>) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("web/node_modules/playwright-core").is_dir()
            && root
                .join("web/node_modules/hls.js/dist/hls.min.js")
                .is_file(),
        "web/node_modules is missing: run `npm ci --prefix web` (scripts/ensure-deps.sh does)"
    );
    let script = root.join("web/tests").join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .args(&args)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `node web/tests/play.mjs`: hls.js in Debian's Chromium plays the clip
/// from `/demo` for `tier`; returns what the page reports.
async fn play_in_chromium(
    app: &TestApp,
    asset: &str,
    tier: &str,
    shot: &Path,
) -> serde_json::Value {
    browser(
        "play.mjs",
        vec![
            app.url(""),
            asset.into(),
            tier.to_owned(),
            shot.display().to_string(),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlsjs_in_chromium_plays_exactly_the_tiers_levels_from_the_demo_page() {
    let app = crate::helpers::spawn_app_edited(
        "",
        |t| {
            // The demo page serves hls.js from the repository's web/.
            let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/hls.js/dist");
            format!(
                "{t}\n[demo]\nhlsjs_dir = \"{}\"\n[cdn]\nsame_site = \"Lax\"\ncookie_secure = false\n",
                web.display()
            )
        },
        axum::Router::new(),
    )
    .await;
    crate::clip::publish(&app, "clip").await;
    // The same clip encrypted: hls.js fetches the keys with the cookie the
    // master set and decrypts every segment it plays.
    let _copy = crate::clip::publish_encrypted(&app, "enc").await;
    for (asset, tier, heights) in [
        ("clip", "free", vec![360, 480]),
        ("clip", "premium", vec![360, 480, 720]),
        ("enc", "free", vec![360, 480]),
    ] {
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("demo-{asset}-{tier}.png"));
        let _ = std::fs::remove_file(&shot);
        let seen = play_in_chromium(&app, asset, tier, &shot).await;
        assert!(seen["error"].is_null(), "{tier}: player error: {seen}");
        let mut got: Vec<u64> = seen["levels"]
            .as_array()
            .unwrap_or_else(|| panic!("{tier}: no levels: {seen}"))
            .iter()
            .map(|l| l["height"].as_u64().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, heights, "{tier}: the levels hls.js got: {seen}");
        assert!(
            seen["time"].as_f64().unwrap() > 1.5,
            "{tier}: playback did not advance: {seen}"
        );
        let level = seen["level"].as_i64().unwrap();
        assert!(level >= 0 && (level as usize) < heights.len(), "{seen}");
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 1000,
            "{tier}: a screenshot at {}",
            shot.display()
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("playgate_content_keys_total{outcome=\"issued\"}")
                && !l.ends_with(" 0")
        ),
        "hls.js fetched the keys from the gateway:\n{metrics}"
    );
}
