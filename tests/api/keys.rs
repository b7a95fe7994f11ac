//! Encrypted renditions and the key endpoint: the clip encrypted as the
//! local encoder does (a key per rendition), keys released only to a
//! viewer whose tier has the rendition — with the master's cookie (cookie
//! delivery) or the token the gateway puts on the key URI (URL delivery).

use crate::clip::{self, cookie_header, set_cookies};
use crate::helpers::{TestApp, spawn_app_edited, with_api_key};
use crate::play::EXTRA_TIERS;
use playgate::protect::ContentKey;
use playgate::protect::encrypt::{decrypt_segment, sequence_iv};
use std::path::Path;

const ADMIN: &str = "admin-key-0123456789";

async fn app() -> TestApp {
    spawn_app_edited(
        "",
        |t| with_api_key(format!("{t}{EXTRA_TIERS}"), ADMIN, "playgate:admin"),
        axum::Router::new(),
    )
    .await
}

fn key_of<'k>(keys: &'k [ContentKey], rendition: &str) -> &'k ContentKey {
    keys.iter().find(|k| k.rendition == rendition).unwrap()
}

/// The `Cookie` header the master's response gives the key path of `asset`.
async fn key_cookie(app: &TestApp, asset: &str, tier: &str) -> String {
    let r = app
        .get_bearer(
            &format!("/v1/play/{asset}/master.m3u8"),
            &app.viewer_token(tier),
        )
        .await;
    assert_eq!(r.status(), 200);
    let jar = set_cookies(&r);
    let keys: Vec<_> = jar
        .iter()
        .filter(|(_, n, _)| n == "playgate-keys")
        .collect();
    assert_eq!(keys.len(), 1, "one key cookie: {jar:?}");
    assert_eq!(
        keys[0].0,
        format!("/v1/keys/{asset}"),
        "for the key path only"
    );
    let raw = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("playgate-keys="))
        .unwrap();
    assert!(raw.contains("HttpOnly"), "{raw}");
    cookie_header(&jar, &format!("/v1/keys/{asset}/x")).unwrap()
}

async fn get_key(app: &TestApp, asset: &str, key: &str, cookie: Option<&str>) -> reqwest::Response {
    let path = format!("/v1/keys/{asset}/{key}");
    match cookie {
        Some(c) => app.get_with(&path, &[("cookie", c)]).await,
        None => app.get(&path).await,
    }
}

async fn problem(r: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_lower_tier_never_gets_a_forbidden_renditions_key_even_with_its_segments() {
    let app = app().await;
    let (copy, keys) = clip::publish_encrypted(&app, "enc").await;
    let free = key_cookie(&app, "enc", "free").await;
    let premium = key_cookie(&app, "enc", "premium").await;

    for r in ["360p", "480p", "audio"] {
        let resp = get_key(&app, "enc", &key_of(&keys, r).id, Some(&free)).await;
        assert_eq!(resp.status(), 200, "{r}");
        assert_eq!(resp.headers()["cache-control"], "private, no-store");
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        let key: [u8; 16] = resp.bytes().await.unwrap()[..].try_into().unwrap();
        // The key opens the rendition's first segment, as written.
        let seg = copy.path().join(format!("hls/{r}/seg_000.m4s"));
        let clear = std::fs::read(clip::clip().join(format!("hls/{r}/seg_000.m4s"))).unwrap();
        let sealed = std::fs::read(&seg).unwrap();
        assert_ne!(sealed, clear, "{r}: the published segment is encrypted");
        assert_eq!(
            decrypt_segment(&key, &sequence_iv(0), &sealed).unwrap(),
            clear
        );
    }
    // The free viewer holds 720p's segments (here, from disk) and asks for
    // its key with the free cookie: refused.
    let top = key_of(&keys, "720p");
    let refused = problem(get_key(&app, "enc", &top.id, Some(&free)).await, 403).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("rendition"),
        "{refused}"
    );
    // The free cookie's grant widened to 720p, its signature kept.
    let forged = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let value = free.trim_start_matches("playgate-keys=");
        let (payload, sig) = value.split_once('.').unwrap();
        let payload = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
        assert!(!payload.contains("720p"), "{payload}");
        format!(
            "playgate-keys={}.{sig}",
            b64.encode(format!("{payload},720p"))
        )
    };
    problem(get_key(&app, "enc", &top.id, Some(&forged)).await, 403).await;
    let ok = get_key(&app, "enc", &top.id, Some(&premium)).await;
    assert_eq!(ok.status(), 200, "premium has 720p");
    assert_eq!(ok.bytes().await.unwrap().len(), 16);
}

#[tokio::test]
async fn key_requests_without_a_good_token_are_refused_clearly() {
    let app = app().await;
    let (_copy, keys) = clip::publish_encrypted(&app, "enc").await;
    let (_copy2, _) = clip::publish_encrypted(&app, "enc2").await;
    let low = &key_of(&keys, "360p").id;
    // No token: 401. A made-up one: 403.
    let none = problem(get_key(&app, "enc", low, None).await, 401).await;
    assert!(none["detail"].as_str().unwrap().contains("token"), "{none}");
    problem(
        get_key(&app, "enc", low, Some("playgate-keys=eyJ4IjoxfQ.AAAA")).await,
        403,
    )
    .await;
    // Another asset's cookie names that asset: 403 here.
    let other = key_cookie(&app, "enc2", "premium").await;
    let p = problem(get_key(&app, "enc", low, Some(&other)).await, 403).await;
    assert!(
        p["detail"].as_str().unwrap().contains("another asset"),
        "{p}"
    );
    // An unknown key or asset is 404 whatever the token; so is a bad id.
    let free = key_cookie(&app, "enc", "free").await;
    for (asset, key) in [
        ("enc", "0123456789abcdef0123456789abcdef"),
        ("enc", "../../v1/assets"),
        ("enc", "0123456789ABCDEF0123456789ABCDEF"),
        ("nope", low.as_str()),
        ("enc2", low.as_str()),
    ] {
        problem(get_key(&app, asset, key, Some(&free)).await, 404).await;
    }
    // Issued and refused keys are counted.
    assert_eq!(get_key(&app, "enc", low, Some(&free)).await.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for outcome in ["issued", "refused"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "playgate_content_keys_total{{outcome=\"{outcome}\"}}"
                ))
            })
            .unwrap_or_else(|| panic!("no {outcome} counter:\n{metrics}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
}

#[tokio::test]
async fn url_delivery_puts_a_key_token_for_that_rendition_on_the_key_uri() {
    let app = app().await;
    let (_copy, keys) = clip::publish_encrypted(&app, "enc").await;
    let master = app
        .get_bearer("/v1/play/enc/master.m3u8", &app.viewer_token("mobile"))
        .await;
    assert_eq!(master.status(), 200);
    assert!(
        set_cookies(&master)
            .iter()
            .all(|(_, n, _)| n != "playgate-keys"),
        "URL delivery sets no key cookie"
    );
    let text = master.text().await.unwrap();
    let low = text
        .lines()
        .find(|l| l.contains("/hls/360p/index.m3u8"))
        .unwrap();
    let media = reqwest::get(low).await.unwrap();
    assert_eq!(media.status(), 200);
    let media = media.text().await.unwrap();
    let key_line = media
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:"))
        .unwrap_or_else(|| panic!("{media}"));
    let uri = key_line
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let id = &key_of(&keys, "360p").id;
    assert!(
        uri.starts_with(&app.url(&format!("/v1/keys/enc/{id}?kt="))),
        "the key URI points at the gateway with a key token: {uri}"
    );
    assert!(
        !uri.contains("Signature=") && !uri.contains("Policy="),
        "no CDN signature travels to the key endpoint: {uri}"
    );
    assert!(
        media
            .lines()
            .filter(|l| l.contains("seg_"))
            .all(|l| l.contains("Signature=")),
        "{media}"
    );
    let got = reqwest::get(uri).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().len(), 16);
    // The 360p token on 720p's key (the viewer swaps the id): refused.
    let token = uri.split("kt=").nth(1).unwrap();
    let top = &key_of(&keys, "720p").id;
    let swapped = app.get(&format!("/v1/keys/enc/{top}?kt={token}")).await;
    problem(swapped, 403).await;
}

/// Every form a 16-byte key could be written in.
fn spellings(key: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        key.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(key)
            .trim_end_matches('=')
            .as_bytes()
            .to_vec(),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn keys_are_stored_only_wrapped_and_a_delete_shreds_them() {
    let app = app().await;
    let (_copy, keys) = clip::publish_encrypted(&app, "enc").await;
    let premium = key_cookie(&app, "enc", "premium").await;
    let mut clear = Vec::new();
    for k in &keys {
        let r = get_key(&app, "enc", &k.id, Some(&premium)).await;
        assert_eq!(r.status(), 200, "{}", k.rendition);
        clear.push(r.bytes().await.unwrap().to_vec());
    }
    // The record (as the store holds it) and the whole SQLite file.
    let id = playgate::domain::AssetId::parse("enc").unwrap();
    let record = playgate::backends::store::StoreExt::get_asset(app.state.store.as_ref(), &id)
        .await
        .unwrap()
        .unwrap();
    let json = serde_json::to_vec(&record.value).unwrap();
    assert_eq!(
        record.value.content_keys.len(),
        4,
        "the keys are on the record"
    );
    let db = std::fs::read(app.dir.path().join("data/playgate.db")).unwrap();
    let wal = std::fs::read(app.dir.path().join("data/playgate.db-wal")).unwrap_or_default();
    for k in &clear {
        for s in spellings(k) {
            for (what, bytes) in [("record", &json), ("db", &db), ("wal", &wal)] {
                assert!(!contains(bytes, &s), "a clear key is in the {what}");
            }
        }
    }
    // The admin API shows which renditions are encrypted, not the keys.
    let shown = app
        .get_bearer("/v1/assets/enc", ADMIN)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(shown["asset"]["encryption"]["method"], "AES-128", "{shown}");
    assert!(shown["asset"].get("content_keys").is_none(), "{shown}");

    // Delete: the wrapped keys go with it.
    let del = app
        .client
        .delete(app.url("/v1/assets/enc"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let after = playgate::backends::store::StoreExt::get_asset(app.state.store.as_ref(), &id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.value.content_keys.is_empty(), "shredded");
    for k in &keys {
        problem(get_key(&app, "enc", &k.id, Some(&premium)).await, 404).await;
    }
}

/// The first segment of `rendition` after its init section: decodable
/// when clear, not when encrypted.
fn frames_ffprobe_reads(init: &Path, segment: &Path, out: &Path) -> (bool, u64) {
    let mut bytes = std::fs::read(init).unwrap();
    bytes.extend(std::fs::read(segment).unwrap());
    std::fs::write(out, bytes).unwrap();
    let run = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(out)
        .output()
        .expect("ffprobe (scripts/ensure-deps.sh installs it)");
    let frames = String::from_utf8_lossy(&run.stdout)
        .trim()
        .trim_end_matches(',')
        .parse()
        .unwrap_or(0);
    (run.status.success() && run.stderr.is_empty(), frames)
}

#[tokio::test]
async fn ffprobe_cannot_decode_an_encrypted_segment_without_its_key() {
    let app = app().await;
    let (copy, _) = clip::publish_encrypted(&app, "enc").await;
    let tmp = tempfile::tempdir().unwrap();
    let init = clip::clip().join("hls/720p/init_2.mp4");
    let init = if init.exists() {
        init
    } else {
        let name = clip::files_of("720p")
            .into_iter()
            .find(|f| f.starts_with("init"))
            .unwrap();
        clip::clip().join("hls/720p").join(name)
    };
    let (clean, frames) = frames_ffprobe_reads(
        &init,
        &clip::clip().join("hls/720p/seg_000.m4s"),
        &tmp.path().join("clear.mp4"),
    );
    assert!(clean && frames > 0, "the clear segment decodes: {frames}");
    let (clean, frames) = frames_ffprobe_reads(
        &init,
        &copy.path().join("hls/720p/seg_000.m4s"),
        &tmp.path().join("sealed.mp4"),
    );
    assert!(
        !clean || frames == 0,
        "ffprobe read {frames} frames of an encrypted segment"
    );
}

/// A distribution that routes `/v1/*` to the gateway puts the gateway and
/// the CDN on one host (`cdn.base_url` = the origin root): the key URIs in
/// the media playlists are then on the CDN's host, and must still stay out
/// of every CDN scope — else the cookie scope of a rendition would widen
/// to the host's root (or the layout would not be path-separable).
#[tokio::test]
async fn key_uris_on_the_cdns_own_host_stay_out_of_cdn_scopes() {
    let app = spawn_app_edited(
        "",
        |t| format!("{t}{EXTRA_TIERS}[cdn]\nbase_url = \"http://@ADDR@\"\ncookie_secure = false\nsame_site = \"Lax\"\n"),
        axum::Router::new(),
    )
    .await;
    clip::publish_encrypted(&app, "enc").await;
    let r = app
        .get_bearer("/v1/play/enc/master.m3u8", &app.viewer_token("free"))
        .await;
    let status = r.status();
    let jar = set_cookies(&r);
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let mut paths: Vec<&str> = jar
        .iter()
        .filter(|(_, n, _)| n == "CloudFront-Policy")
        .map(|(p, _, _)| p.as_str())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/assets/enc/v1/hls/360p/",
            "/assets/enc/v1/hls/480p/",
            "/assets/enc/v1/hls/audio/"
        ],
        "{jar:?}"
    );
}
