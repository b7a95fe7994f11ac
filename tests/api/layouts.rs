//! A layout whose rendition names are prefixes of each other, as an
//! operator meets it: a flat, MediaConvert-style stream (`title_240p`,
//! `title_360p`, `title_360p_hi` and their `.ts` side by side) kept as
//! it is at the origin, and tiers allowing ≤ 360p at ≤ 1 Mb/s (so
//! `title_360p` but not `title_360p_hi`).
//!
//! - URL delivery plays (ffmpeg and hls.js as clients): the playlist is
//!   granted exactly and `title_360p_0*` for its segments, and no
//!   signature the tier receives opens a `title_360p_hi` file.
//! - Cookie delivery cannot carry the tier (no cookie `Path` holds
//!   `title_360p` without `title_360p_hi`): a 409
//!   `delivery-unavailable` problem naming URL delivery, on the master,
//!   the session and the signing API; with `fallback = "urls"` the master
//!   and the session switch to URL delivery, and no cookie is set.
//! - The playability report says all of it before any viewer asks, and
//!   the asset API shows it for a published version.

use crate::helpers::{TestApp, problem, spawn_app_edited, with_api_key};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TIERS: &str = r#"
[tiers.sd_urls]
max_height = 360
max_bandwidth = 1000000
delivery = "urls"
[tiers.sd_cookies]
max_height = 360
max_bandwidth = 1000000
[tiers.sd_fallback]
max_height = 360
max_bandwidth = 1000000
fallback = "urls"
[tiers.hevc_only]
codecs = ["hvc1"]
"#;

const NAMES: [(&str, &str, &str); 3] = [
    ("title_240p", "426x240", "200k"),
    ("title_360p", "640x360", "400k"),
    ("title_360p_hi", "640x360", "1500k"),
];

/// The flat stream: `hls/master.m3u8` (the encoder's `title.m3u8`,
/// renamed) and each rendition's playlist and 1 s segments beside it.
fn flat_stream() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flat-prefixes");
        if root.join("hls/master.m3u8").is_file() {
            return root;
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("flat-prefixes-{}", std::process::id()));
        let hls = tmp.join("hls");
        std::fs::create_dir_all(&hls).unwrap();
        for (name, size, rate) in NAMES {
            let run = Command::new("ffmpeg")
                .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi"])
                .arg("-i")
                .arg(format!("testsrc2=size={size}:rate=25:duration=4"))
                .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-b:v", rate])
                .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
                .args(["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"])
                .arg("-hls_segment_filename")
                .arg(hls.join(format!("{name}_%05d.ts")))
                .arg(hls.join(format!("{name}.m3u8")))
                .output()
                .expect("run ffmpeg (scripts/ensure-deps.sh installs it)");
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
        std::fs::write(
            hls.join("master.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:3\n\
             #EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=426x240,CODECS=\"avc1.640015\"\ntitle_240p.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=640x360,CODECS=\"avc1.64001e\"\ntitle_360p.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=640x360,CODECS=\"avc1.64001e\"\ntitle_360p_hi.m3u8\n",
        )
        .unwrap();
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        root
    })
}

/// Every file of the flat stream that belongs to `name` alone.
fn files_of(name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(flat_stream().join("hls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| {
            f.strip_prefix(name)
                .is_some_and(|rest| rest == ".m3u8" || rest.starts_with("_0"))
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{name}: {v:?}");
    v
}

async fn app() -> TestApp {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/hls.js/dist");
    let app = spawn_app_edited(
        "",
        |t| {
            let t = with_api_key(
                format!(
                    "{t}{TIERS}\n[demo]\nhlsjs_dir = \"{}\"\n[cdn]\nsame_site = \"Lax\"\ncookie_secure = false\n",
                    web.display()
                ),
                "signer-key",
                "playgate:sign",
            );
            with_api_key(t, "admin-key", "playgate:admin")
        },
        axum::Router::new(),
    )
    .await;
    // As the origin holds it: not published by playgate, so not moved.
    crate::tree::put_tree(
        app.state.objects.as_ref(),
        flat_stream(),
        "hls",
        "assets/flat/v1",
    )
    .await;
    let id = playgate::domain::AssetId::parse("flat").unwrap();
    let asset = playgate::backends::store::Asset {
        id,
        title: Some("flat".into()),
        min_tier: None,
        status: playgate::backends::store::AssetStatus::Ready,
        current_version: Some(1),
        renditions: Vec::new(),
        thumbnails: Vec::new(),
        failure: None,
        playability: None,
        source: None,
        content_keys: Vec::new(),
        created_at: crate::helpers::now(),
    };
    playgate::backends::store::StoreExt::put_asset(
        app.state.store.as_ref(),
        &asset,
        playgate::backends::store::Expect::Absent,
    )
    .await
    .unwrap();
    app
}

fn local(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&format!("http://{}", app.addr))
        .unwrap_or_else(|| panic!("{url} is not on the test server"))
        .to_owned()
}

/// The URI lines of a playlist.
fn uri_lines(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn query_of(url: &str) -> String {
    url.split_once('?').unwrap().1.to_owned()
}

#[tokio::test]
async fn url_delivery_grants_each_file_of_the_tier_and_nothing_of_a_longer_name() {
    let app = app().await;
    let resp = app
        .get_bearer("/v1/play/flat/master.m3u8", &app.viewer_token("sd_urls"))
        .await;
    assert_eq!(resp.status(), 200);
    let master = resp.text().await.unwrap();
    let variants = uri_lines(&master);
    assert_eq!(variants.len(), 2, "{master}");
    assert!(variants[0].contains("/v1/play/flat/hls/title_240p.m3u8?"));
    assert!(variants[1].contains("/v1/play/flat/hls/title_360p.m3u8?"));
    // Every signature the tier receives, with what it was on.
    let mut received = Vec::new();
    for v in &variants {
        received.push(query_of(v));
        let resp = app.get(&local(&app, v)).await;
        assert_eq!(resp.status(), 200, "{v}");
        let media = resp.text().await.unwrap();
        let segments = uri_lines(&media);
        assert!(segments.len() >= 4, "{media}");
        for s in &segments {
            assert_eq!(app.get(&local(&app, s)).await.status(), 200, "{s}");
            received.push(query_of(s));
        }
    }
    received.sort();
    received.dedup();
    // 240p: one prefix for all; 360p: its playlist exactly and one prefix
    // for its segments.
    assert_eq!(received.len(), 3, "{received:?}");
    let secret = files_of("title_360p_hi");
    for q in &received {
        for f in &secret {
            let at_edge = format!("/cdn/assets/flat/v1/hls/{f}?{q}");
            assert_eq!(app.get(&at_edge).await.status(), 403, "{at_edge}");
        }
        let (status, _) = problem(
            app.get(&format!("/v1/play/flat/hls/title_360p_hi.m3u8?{q}"))
                .await,
        )
        .await;
        assert_eq!(status, 403, "the gateway serves title_360p_hi for {q}");
    }
    // The media playlist signs only with the patterns of its rendition.
    let hi_policy = |q: &str| {
        let p = q
            .split('&')
            .find_map(|kv| kv.strip_prefix("Policy="))
            .unwrap();
        let json =
            String::from_utf8(playgate::engine::cloudfront::encode::cf_base64_decode(p).unwrap())
                .unwrap();
        json.contains("title_360p_hi") || json.contains("title_360p*")
    };
    assert!(!received.iter().any(|q| hi_policy(q)), "{received:?}");
}

/// `POST /v1/play/flat/session` as a viewer.
async fn session(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/v1/play/flat/session"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cookie_tier_gets_a_clear_problem_or_its_fallback_never_a_500() {
    let app = app().await;
    // No fallback: 409 on the master, the session and the signing API.
    let token = app.viewer_token("sd_cookies");
    let resp = app.get_bearer("/v1/play/flat/master.m3u8", &token).await;
    assert!(resp.headers().get("set-cookie").is_none());
    let (status, body) = problem(resp).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "urn:playgate:problem:delivery-unavailable");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("cookie delivery") && detail.contains("URL delivery works"),
        "{detail}"
    );
    let resp = session(&app, &token).await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "urn:playgate:problem:delivery-unavailable");
    for tier in ["sd_cookies", "sd_fallback"] {
        let resp = reqwest::Client::new()
            .post(app.url("/v1/sign/cookies"))
            .bearer_auth("signer-key")
            .json(&serde_json::json!({"asset": "flat", "tier": tier}))
            .send()
            .await
            .unwrap();
        let (status, body) = problem(resp).await;
        assert_eq!(status, 409, "{tier}: {body}");
        assert_eq!(body["type"], "urn:playgate:problem:delivery-unavailable");
    }

    // With fallback = "urls": the master is URL delivery, no cookie.
    let token = app.viewer_token("sd_fallback");
    let resp = app.get_bearer("/v1/play/flat/master.m3u8", &token).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    let master = resp.text().await.unwrap();
    let variants = uri_lines(&master);
    assert_eq!(variants.len(), 2, "{master}");
    for v in &variants {
        assert!(v.contains("/v1/play/flat/hls/") && v.contains("Signature="));
        assert_eq!(app.get(&local(&app, v)).await.status(), 200, "{v}");
    }
    let resp = session(&app, &token).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["delivery"], "urls", "{body}");
    assert_eq!(body["cookies"], serde_json::json!([]), "{body}");

    // A tier allowed everything needs no split: one cookie for hls/.
    let resp = app
        .get_bearer("/v1/play/flat/master.m3u8", &app.viewer_token("premium"))
        .await;
    assert_eq!(resp.status(), 200);
    let jar = crate::clip::set_cookies(&resp);
    assert!(
        !jar.is_empty() && jar.iter().all(|(p, _, _)| p == "/cdn/assets/flat/v1/hls/"),
        "{jar:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_and_hlsjs_play_the_flat_stream_for_the_url_tier() {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let master = app.url(&format!(
        "/v1/play/flat/master.m3u8?token={}",
        app.viewer_token("sd_urls")
    ));
    let streams = crate::players::ffmpeg_copy(master, None, &dir.path().join("flat.mkv")).await;
    assert_eq!(streams, ["video 240", "video 360"]);

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flat-sd_urls.png");
    let seen = crate::players::browser(
        "play.mjs",
        vec![
            app.url(""),
            "flat".into(),
            "sd_urls".into(),
            shot.display().to_string(),
        ],
    )
    .await;
    assert!(seen["error"].is_null(), "player error: {seen}");
    let mut heights: Vec<u64> = seen["levels"]
        .as_array()
        .unwrap_or_else(|| panic!("no levels: {seen}"))
        .iter()
        .map(|l| l["height"].as_u64().unwrap())
        .collect();
    heights.sort();
    assert_eq!(heights, [240, 360], "{seen}");
    assert!(seen["time"].as_f64().unwrap() > 1.5, "{seen}");
}

#[tokio::test]
async fn the_playability_report_says_which_tier_plays_and_how() {
    let app = app().await;
    let id = playgate::domain::AssetId::parse("flat").unwrap();
    let tiers: Vec<_> = playgate::backends::store::StoreExt::list_tiers(app.state.store.as_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n, v.value))
        .collect();
    let report =
        playgate::pipeline::playability::report(app.state.objects.as_ref(), &id, 1, &tiers, 7)
            .await
            .unwrap();
    let of = |tier: &str| {
        let t = report
            .tiers
            .iter()
            .find(|t| t.tier.as_str() == tier)
            .unwrap_or_else(|| panic!("{tier} missing: {report:?}"));
        serde_json::to_value(&t.hls).unwrap()
    };
    assert_eq!(
        of("sd_urls"),
        serde_json::json!({"playable": true, "delivery": "urls", "renditions": 2})
    );
    let cookies = of("sd_cookies");
    assert_eq!(cookies["playable"], false, "{cookies}");
    assert!(
        cookies["problem"]
            .as_str()
            .unwrap()
            .contains("URL delivery, or fallback = \"urls\", works"),
        "{cookies}"
    );
    let fallback = of("sd_fallback");
    assert_eq!(fallback["playable"], true, "{fallback}");
    assert_eq!(fallback["delivery"], "urls", "{fallback}");
    assert_eq!(fallback["fallback"], true, "{fallback}");
    assert_eq!(of("premium")["delivery"], "cookies");
    assert_eq!(of("premium")["renditions"], 3);
    assert_eq!(of("hevc_only")["playable"], false);
    assert_eq!(
        report
            .unplayable()
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        ["hevc_only", "sd_cookies"]
    );

    // Published by playgate, the same stream is moved into one directory
    // per rendition, and the asset API shows the report of that version.
    let pub_id = playgate::domain::AssetId::parse("flat-pub").unwrap();
    playgate::pipeline::publish::publish_dir(
        app.state.store.as_ref(),
        app.state.objects.as_ref(),
        &pub_id,
        None,
        flat_stream(),
        crate::helpers::now(),
    )
    .await
    .unwrap();
    let resp = app.get_bearer("/v1/assets/flat-pub", "admin-key").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let p = &body["asset"]["playability"];
    assert_eq!(p["version"], 1, "{body}");
    let tiers = p["tiers"].as_array().unwrap();
    let get = |name: &str| {
        tiers
            .iter()
            .find(|t| t["tier"] == name)
            .unwrap_or_else(|| panic!("{name}: {p}"))["hls"]
            .clone()
    };
    assert_eq!(
        get("sd_cookies"),
        serde_json::json!({"playable": true, "delivery": "cookies", "renditions": 2})
    );
    assert_eq!(get("sd_urls")["delivery"], "urls");
    assert_eq!(get("hevc_only")["playable"], false);
}
