//! Playback end to end over a real ffmpeg clip: the master endpoint, the
//! local edge enforcing each tier's renditions (cookies and signed URLs),
//! the URL-mode media endpoint, the session and sign endpoints, and the
//! asset states a viewer can meet.

use crate::clip::{self, RENDITIONS, cookie_header, files_in, files_of, set_cookies, triple};
use crate::helpers::{TestApp, problem, spawn_app_edited, with_api_key};

pub const EXTRA_TIERS: &str = r#"
[tiers.mobile]
rank = 5
max_height = 480
delivery = "urls"
[tiers.tiny]
max_height = 100
[tiers.bound]
bind_ip = true
"#;

pub async fn app_with_clip() -> TestApp {
    let app = spawn_app_edited(
        "cors_allowed_origins = [\"https://player.example\"]",
        |t| with_api_key(format!("{t}{EXTRA_TIERS}"), "signer-key", "playgate:sign"),
        axum::Router::new(),
    )
    .await;
    clip::publish(&app, "clip").await;
    app
}

fn allowed_for(tier: &str) -> &'static [&'static str] {
    match tier {
        "free" | "mobile" => &["360p", "480p", "audio"],
        "premium" => &["360p", "480p", "720p", "audio"],
        _ => unreachable!(),
    }
}

/// A custom-policy signature by the app's key for `{cdn}{pattern}`.
fn sign_cdn(
    app: &TestApp,
    pattern: &str,
    expires: u64,
) -> playgate::engine::cloudfront::signer::Signature {
    playgate::engine::cloudfront::signer::Signature::for_resource(
        app.state.keys.active(),
        &format!("{}{pattern}", app.state.config.cdn.base_url),
        &playgate::engine::cloudfront::signer::SignOptions {
            expires,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Sets one field of an asset's stored record (as the pipeline or another
/// replica would), then waits out the asset cache.
async fn edit_record(app: &TestApp, id: &str, field: &str, value: &str) {
    let v = app
        .state
        .store
        .get(playgate::backends::store::Kind::Asset, id)
        .await
        .unwrap()
        .unwrap();
    let mut asset = v.body.clone();
    asset[field] = value.into();
    app.state
        .store
        .put(
            playgate::backends::store::Kind::Asset,
            id,
            &asset,
            playgate::backends::store::Expect::Revision(v.revision),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(
        app.state.config.cache.asset_ttl.as_millis() as u64 + 100,
    ))
    .await;
}

fn cdn_path(rendition: &str, file: &str) -> String {
    format!("/cdn/assets/clip/v1/hls/{rendition}/{file}")
}

async fn get_cookie(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    match cookie {
        Some(c) => app.get_with(path, &[("cookie", c)]).await,
        None => app.get(path).await,
    }
}

/// Every URI of every allowed rendition is 200 with the tier's cookies as
/// a browser sends them; every file of every other rendition is 403, both
/// as a browser sends (no matching cookie) and with each of the tier's
/// triples forced onto it.
#[tokio::test]
async fn cookie_tiers_open_exactly_their_renditions_at_the_edge() {
    let app = app_with_clip().await;
    for tier in ["free", "premium"] {
        let resp = app
            .get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token(tier))
            .await;
        assert_eq!(resp.status(), 200, "{tier}");
        assert_eq!(resp.headers()["cache-control"], "private, no-store");
        assert_eq!(
            resp.headers()["content-type"],
            "application/vnd.apple.mpegurl"
        );
        let jar = set_cookies(&resp);
        let master = resp.text().await.unwrap();
        let paths: std::collections::BTreeSet<&str> =
            jar.iter().map(|(p, _, _)| p.as_str()).collect();
        let expected: std::collections::BTreeSet<String> = allowed_for(tier)
            .iter()
            .map(|r| format!("/cdn/assets/clip/v1/hls/{r}/"))
            .collect();
        assert_eq!(
            paths,
            expected.iter().map(String::as_str).collect(),
            "{tier}: one cookie triple per allowed rendition"
        );
        for r in RENDITIONS {
            let listed = master.contains(&format!("/hls/{r}/index.m3u8"));
            assert_eq!(listed, allowed_for(tier).contains(&r), "{tier} lists {r}");
            for f in files_of(r) {
                let path = cdn_path(r, &f);
                let sent = cookie_header(&jar, &path);
                let status = get_cookie(&app, &path, sent.as_deref()).await.status();
                if allowed_for(tier).contains(&r) {
                    assert_eq!(status, 200, "{tier}: {path}");
                } else {
                    assert_eq!(status, 403, "{tier}: {path} as a browser sends");
                    for p in &paths {
                        let forced = triple(&jar, p);
                        let resp = get_cookie(&app, &path, Some(&forced)).await;
                        assert_eq!(resp.status(), 403, "{tier}: {path} with {p}'s cookies");
                        let body = resp.text().await.unwrap();
                        assert!(body.contains("AccessDenied"), "{body}");
                    }
                }
            }
        }
    }
}

/// The URI lines of a playlist.
fn uris(playlist: &str) -> Vec<String> {
    let mut out: Vec<String> = playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for l in playlist.lines().filter(|l| l.starts_with('#')) {
        if let Some(i) = l.find("URI=\"") {
            let rest = &l[i + 5..];
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    out
}

fn local(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&format!("http://{}", app.addr))
        .unwrap_or_else(|| panic!("{url} is not on the test server"))
        .to_owned()
}

/// URL delivery: the master points at the gateway's media endpoint; each
/// media playlist comes back with the signature on every URI, and each
/// URI fetches 200; the signature of an allowed rendition opens nothing of
/// a forbidden one, at the edge or at the gateway.
#[tokio::test]
async fn url_delivery_opens_exactly_the_tiers_renditions() {
    let app = app_with_clip().await;
    let resp = app
        .get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token("mobile"))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    let master = resp.text().await.unwrap();
    let variants = uris(&master);
    assert_eq!(variants.len(), 3, "{master}");
    let mut some_query = None;
    for v in &variants {
        assert!(v.contains("/v1/play/clip/hls/"), "{v}");
        assert!(!v.contains("720p"), "{v}");
        let resp = app.get(&local(&app, v)).await;
        assert_eq!(resp.status(), 200, "{v}");
        let cc = resp.headers()["cache-control"].to_str().unwrap().to_owned();
        let age: u64 = cc
            .strip_prefix("private, max-age=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(age <= 60, "{cc}");
        let media = resp.text().await.unwrap();
        let signed = uris(&media);
        assert!(signed.len() >= 4, "{media}");
        for u in &signed {
            assert!(u.contains("Signature="), "{u}");
            assert_eq!(app.get(&local(&app, u)).await.status(), 200, "{u}");
        }
        some_query = Some(v.split_once('?').unwrap().1.to_owned());
    }
    let query = some_query.unwrap();
    for f in files_of("720p") {
        let path = format!("{}?{query}", cdn_path("720p", &f));
        assert_eq!(app.get(&path).await.status(), 403, "{path}");
    }
    let (status, _) = problem(
        app.get(&format!("/v1/play/clip/hls/720p/index.m3u8?{query}"))
            .await,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = problem(app.get("/v1/play/clip/hls/360p/index.m3u8").await).await;
    assert_eq!(status, 403, "no signature");
    let (status, _) = problem(
        app.get(&format!("/v1/play/clip/hls/..%2F..%2Fx/index.m3u8?{query}"))
            .await,
    )
    .await;
    assert!(status == 404 || status == 400, "{status}");
}

/// Unsigned, expired and tampered requests are refused, with no hint why.
#[tokio::test]
async fn no_credentials_expired_or_tampered_signatures_are_refused() {
    let app = app_with_clip().await;
    let path = cdn_path("360p", "seg_000.m4s");
    let resp = app.get(&path).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let denied = resp.text().await.unwrap();

    let key = app.state.keys.active();
    let url = format!(
        "{}/assets/clip/v1/hls/360p/*",
        app.state.config.cdn.base_url
    );
    let sign = |expires| {
        playgate::engine::cloudfront::signer::Signature::for_resource(
            key,
            &url,
            &playgate::engine::cloudfront::signer::SignOptions {
                expires,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let now = crate::helpers::now();
    let good = sign(now + 600);
    assert_eq!(app.get(&good.append_to(&path)).await.status(), 200);
    let expired = sign(now - 1);
    let resp = app.get(&expired.append_to(&path)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.text().await.unwrap(),
        denied,
        "the body never says which check failed"
    );
    let mut cookies = String::new();
    for (n, v) in expired.cookies() {
        cookies.push_str(&format!("{n}={v}; "));
    }
    assert_eq!(get_cookie(&app, &path, Some(&cookies)).await.status(), 403);
    let tampered = good.append_to(&path).replace("Signature=", "Signature=A");
    assert_eq!(app.get(&tampered).await.status(), 403);
}

#[tokio::test]
async fn the_edge_speaks_http_range_etag_types_cors_and_cache_policy() {
    let app = app_with_clip().await;
    let sig = sign_cdn(&app, "/assets/clip/v1/hls/*", crate::helpers::now() + 600);
    let seg = sig.append_to(&cdn_path("720p", "seg_001.m4s"));
    let full = app.get(&seg).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "video/iso.segment");
    assert_eq!(
        full.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = full.bytes().await.unwrap();
    let part = app.get_with(&seg, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(10..20));
    let beyond = format!("bytes={}-", bytes.len());
    assert_eq!(
        app.get_with(&seg, &[("range", beyond.as_str())])
            .await
            .status(),
        416
    );
    assert_eq!(
        app.get_with(&seg, &[("if-none-match", etag.as_str())])
            .await
            .status(),
        304
    );
    let head = app.client.head(app.url(&seg)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    let init = app
        .get(&sig.append_to(&cdn_path("720p", "init_2.mp4")))
        .await;
    assert_eq!(init.headers()["content-type"], "video/mp4");
    let pl = app
        .get_with(
            &sig.append_to(&cdn_path("720p", "index.m3u8")),
            &[("origin", "https://player.example")],
        )
        .await;
    assert_eq!(
        pl.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(pl.headers()["cache-control"], "public, max-age=60");
    assert_eq!(
        pl.headers()["access-control-allow-origin"],
        "https://player.example"
    );
    assert_eq!(pl.headers()["access-control-allow-credentials"], "true");
    let missing = app.get(&sig.append_to(&cdn_path("720p", "nope.m4s"))).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn what_a_viewer_meets_for_each_asset_state() {
    let app = app_with_clip().await;
    let free = app.viewer_token("free");
    let (s, _) = problem(app.get_bearer("/v1/play/nope/master.m3u8", &free).await).await;
    assert_eq!(s, 404);
    let (s, body) = problem(
        app.get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token("tiny"))
            .await,
    )
    .await;
    assert_eq!(s, 403, "{body}");
    // An asset waiting for its encode.
    let admin = app.token(serde_json::json!({
        "iss": "playgate-dev", "aud": "playgate", "sub": "op",
        "exp": crate::helpers::now() + 600, "scope": "playgate:admin",
    }));
    let put = |id: &'static str, body: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.client
                .put(app.url(&format!("/v1/assets/{id}")))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert!(put("fresh", "{}").await.status().is_success());
    let (s, _) = problem(app.get_bearer("/v1/play/fresh/master.m3u8", &free).await).await;
    assert_eq!(s, 409);
    // min_tier: free may not, premium may.
    edit_record(&app, "clip", "min_tier", "premium").await;
    let (s, body) = problem(app.get_bearer("/v1/play/clip/master.m3u8", &free).await).await;
    assert_eq!(s, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("premium"));
    let ok = app
        .get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token("premium"))
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn session_sets_and_returns_the_cookies() {
    let app = app_with_clip().await;
    let resp = app
        .client
        .post(app.url("/v1/play/clip/session"))
        .bearer_auth(app.viewer_token("free"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "private, no-store");
    for h in resp.headers().get_all("set-cookie") {
        let h = h.to_str().unwrap();
        assert!(
            h.ends_with("; Secure; HttpOnly; SameSite=None") && h.contains("; Expires="),
            "default attributes: {h}"
        );
    }
    let jar = set_cookies(&resp);
    assert_eq!(jar.len(), 9, "three triples: 360p, 480p, audio");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["tier"], "free");
    assert_eq!(body["renditions"].as_array().unwrap().len(), 3);
    let cookies = body["cookies"].as_array().unwrap();
    assert_eq!(cookies.len(), 9);
    for (c, (path, name, value)) in cookies.iter().zip(&jar) {
        assert_eq!(&c["path"], path.as_str());
        assert_eq!(&c["name"], name.as_str());
        assert_eq!(&c["value"], value.as_str());
        assert_eq!(c["http_only"], true);
    }
    let path = cdn_path("480p", "seg_000.m4s");
    let sent = cookie_header(&jar, &path).unwrap();
    assert_eq!(get_cookie(&app, &path, Some(&sent)).await.status(), 200);
}

#[tokio::test]
async fn backends_sign_cookies_and_urls_within_limits() {
    let app = app_with_clip().await;
    let post = |path: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url(path))
                .header("authorization", "Bearer signer-key")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = post(
        "/v1/sign/cookies",
        serde_json::json!({"asset": "clip", "tier": "premium", "ttl": "30m"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["set_cookie"].as_array().unwrap().len(), 12);
    let exp = body["expires_at"].as_u64().unwrap();
    let now = crate::helpers::now();
    assert!(exp > now + 1700 && exp <= now + 1800 + 300, "{exp}");
    let jar = clip::json_cookies(&body);
    let path = cdn_path("720p", "seg_000.m4s");
    let sent = cookie_header(&jar, &path).unwrap();
    assert_eq!(get_cookie(&app, &path, Some(&sent)).await.status(), 200);

    let cdn = app.state.config.cdn.base_url.clone();
    let url = format!("{cdn}/assets/clip/v1/hls/720p/seg_001.m4s");
    let resp = post(
        "/v1/sign/urls",
        serde_json::json!({"urls": [url], "ttl": "5m"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let signed = body["urls"][0].as_str().unwrap();
    assert_eq!(app.get(&local(&app, signed)).await.status(), 200);

    for (bad, field) in [
        (
            serde_json::json!({"asset": "clip", "tier": "premium", "ttl": "30d"}),
            "body.ttl",
        ),
        (
            serde_json::json!({"asset": "clip", "tier": "gold"}),
            "body.tier",
        ),
    ] {
        let (s, body) = problem(post("/v1/sign/cookies", bad).await).await;
        assert_eq!(s, 400);
        assert_eq!(body["field"], field, "{body}");
    }
    let many: Vec<String> = (0..101).map(|i| format!("{cdn}/assets/x/{i}.ts")).collect();
    for (bad, field) in [
        (serde_json::json!({"urls": many}), "body.urls"),
        (
            serde_json::json!({"urls": ["https://evil.example/x.ts"]}),
            "body.urls[0]",
        ),
        (serde_json::json!({"urls": [url], "ttl": "2d"}), "body.ttl"),
        (serde_json::json!({}), "body.urls"),
        (
            serde_json::json!({"resource": format!("{cdn}/*")}),
            "body.resource",
        ),
    ] {
        let (s, body) = problem(post("/v1/sign/urls", bad).await).await;
        assert_eq!(s, 400);
        assert_eq!(body["field"], field, "{body}");
    }
    let viewer = app
        .client
        .post(app.url("/v1/sign/urls"))
        .bearer_auth(app.viewer_token("premium"))
        .json(&serde_json::json!({"urls": [url]}))
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 403, "viewers cannot sign");
}

/// DASH (cookie delivery): the MPD keeps the tier's representations and
/// the cookies open exactly their directories at the edge.
#[tokio::test]
async fn dash_mpd_and_its_cookies_open_exactly_the_tiers_representations() {
    let app = app_with_clip().await;
    let resp = app
        .get_bearer("/v1/play/clip/manifest.mpd", &app.viewer_token("free"))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/dash+xml");
    assert_eq!(resp.headers()["cache-control"], "private, no-store");
    let jar = set_cookies(&resp);
    let mpd = resp.text().await.unwrap();
    assert!(
        mpd.contains("height=\"480\"") && !mpd.contains("height=\"720\""),
        "{mpd}"
    );
    let allowed = ["r0", "r1", "r3"];
    for dir in ["r0", "r1", "r2", "r3"] {
        for f in files_in(&format!("dash/{dir}")) {
            let path = format!("/cdn/assets/clip/v1/dash/{dir}/{f}");
            let sent = cookie_header(&jar, &path);
            let status = get_cookie(&app, &path, sent.as_deref()).await.status();
            let want = if allowed.contains(&dir) { 200 } else { 403 };
            assert_eq!(status, want, "{path}");
        }
    }
    let (s, _) = problem(
        app.get_bearer("/v1/play/clip/manifest.mpd", &app.viewer_token("tiny"))
            .await,
    )
    .await;
    assert_eq!(s, 403);
}

/// Path tricks on the edge and the media endpoint never reach a file
/// outside the asset tree, signed or not.
#[tokio::test]
async fn path_tricks_are_refused() {
    let app = app_with_clip().await;
    let sig = sign_cdn(&app, "/*", crate::helpers::now() + 600);
    for trick in [
        "/cdn/assets/clip/v1/hls/360p/../../../../playgate.db",
        "/cdn/assets/clip/v1/hls/360p/%2e%2e/%2e%2e/%2e%2e/%2e%2e/playgate.db",
        "/cdn/assets/clip/v1/hls/360p/..%2f..%2f..%2f..%2fplaygate.db",
        "/cdn/assets/clip/v1/hls/360p/..%5c..%5cplaygate.db",
        "/cdn/playgate.db%00.m4s",
        "/cdn/%c0%ae%c0%ae/playgate.db",
        "/cdn//etc/passwd",
        "/cdn/playgate.db",
    ] {
        let resp = app.get(&sig.append_to(trick)).await;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        assert!(
            status == 404 || status == 403 || status == 400,
            "{trick}: {status}"
        );
        assert!(!body.starts_with(b"SQLite"), "{trick} leaked the database");
    }
}

/// A `bind_ip` tier's signatures carry the viewer's address: they work
/// from it and from nowhere else.
#[tokio::test]
async fn bound_signatures_work_only_from_the_viewers_address() {
    let app = app_with_clip().await;
    let resp = app
        .get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token("bound"))
        .await;
    assert_eq!(resp.status(), 200);
    let jar = set_cookies(&resp);
    let path = cdn_path("720p", "seg_000.m4s");
    let sent = cookie_header(&jar, &path).unwrap();
    assert_eq!(get_cookie(&app, &path, Some(&sent)).await.status(), 200);
    let policy = jar
        .iter()
        .find(|(_, n, _)| n == "CloudFront-Policy")
        .map(|(_, _, v)| v.clone())
        .unwrap();
    let json = playgate::engine::cloudfront::encode::cf_base64_decode(&policy).unwrap();
    assert!(
        String::from_utf8(json)
            .unwrap()
            .contains("\"127.0.0.1/32\""),
        "the policy names the viewer's address"
    );
    // A backend signing for another viewer's address: refused from here.
    let resp = app
        .client
        .post(app.url("/v1/sign/cookies"))
        .header("authorization", "Bearer signer-key")
        .json(&serde_json::json!({"asset": "clip", "tier": "bound", "viewer_ip": "192.0.2.7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let other = clip::json_cookies(&body);
    let sent = cookie_header(&other, &path).unwrap();
    assert_eq!(get_cookie(&app, &path, Some(&sent)).await.status(), 403);
    let missing = app
        .client
        .post(app.url("/v1/sign/cookies"))
        .header("authorization", "Bearer signer-key")
        .json(&serde_json::json!({"asset": "clip", "tier": "bound"}))
        .send()
        .await
        .unwrap();
    let (s, body) = problem(missing).await;
    assert_eq!(s, 400);
    assert_eq!(body["field"], "body.viewer_ip");
}

/// A re-encode sets the asset `processing` while the new version is made;
/// viewers keep playing the current one meanwhile (the next version is
/// written beside it and the record points at it only when complete).
#[tokio::test]
async fn a_published_asset_keeps_playing_while_it_is_re_encoded() {
    let app = app_with_clip().await;
    edit_record(&app, "clip", "status", "processing").await;
    let master = app
        .get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token("free"))
        .await;
    assert_eq!(master.status(), 200, "v1 still plays while v2 is made");
    let mpd = app
        .get_bearer("/v1/play/clip/manifest.mpd", &app.viewer_token("free"))
        .await;
    assert_eq!(mpd.status(), 200);
}
