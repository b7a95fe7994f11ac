//! A real encoded clip (ffmpeg via `scripts/make-clip.sh`): 360p, 480p,
//! 720p and an audio rendition, fMP4, 1 s segments, made once per test
//! binary, and helpers to publish it and to act like a browser's cookie
//! jar (RFC 6265 path matching).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const RENDITIONS: [&str; 4] = ["360p", "480p", "720p", "audio"];

/// The clip's directory (it has `hls/…`).
pub fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clip-4s");
        if root.join("hls/master.m3u8").is_file() {
            return root;
        }
        let tmp =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("clip-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-clip.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&tmp)
            .arg("4")
            .output()
            .expect("run make-clip.sh");
        assert!(
            out.status.success(),
            "make-clip.sh failed (is ffmpeg installed? scripts/ensure-deps.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test binary may have won the race; either copy is whole.
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        root
    })
}

/// Every file of one HLS rendition, relative to `hls/{rendition}/`.
pub fn files_of(rendition: &str) -> Vec<String> {
    files_in(&format!("hls/{rendition}"))
}

/// Every file of one directory of the clip (`dash/r0`).
pub fn files_in(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(clip().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    assert!(v.len() >= 3, "{dir} has too few files: {v:?}");
    v
}

/// Publishes the clip as `asset` (version 1) in the app's stores.
pub async fn publish(app: &crate::helpers::TestApp, asset: &str) {
    let id = playgate::domain::AssetId::parse(asset).unwrap();
    let v = playgate::pipeline::publish::publish_dir(
        app.state.store.as_ref(),
        app.state.objects.as_ref(),
        &id,
        Some("test clip".into()),
        clip(),
        crate::helpers::now(),
    )
    .await
    .unwrap();
    assert_eq!(v, 1);
}

/// The cookies of `Set-Cookie` headers: (path, name, value).
pub fn set_cookies(resp: &reqwest::Response) -> Vec<(String, String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| {
            let s = h.to_str().unwrap();
            let mut parts = s.split("; ");
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let path = parts
                .find_map(|p| p.strip_prefix("Path="))
                .expect("a Path attribute")
                .to_owned();
            (path, name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The `Cookie` header a browser sends to `path` from this jar.
pub fn cookie_header(jar: &[(String, String, String)], path: &str) -> Option<String> {
    let sent: Vec<String> = jar
        .iter()
        .filter(|(p, _, _)| path.starts_with(p.as_str()))
        .map(|(_, n, v)| format!("{n}={v}"))
        .collect();
    (!sent.is_empty()).then(|| sent.join("; "))
}

/// One cookie triple (by its path) as a `Cookie` header, whatever the
/// request path: what a viewer copying cookies by hand would send.
pub fn triple(jar: &[(String, String, String)], path: &str) -> String {
    jar.iter()
        .filter(|(p, _, _)| p == path)
        .map(|(_, n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The jar of a `cookies[]` array the session and sign endpoints return.
pub fn json_cookies(body: &serde_json::Value) -> Vec<(String, String, String)> {
    body["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap().to_owned();
            (field("path"), field("name"), field("value"))
        })
        .collect()
}

/// A copy of the clip encrypted as the local encoder encrypts its output
/// (a key per rendition, from the app's protection), published as
/// `asset`; the copy's directory (its segments are the encrypted ones).
pub async fn publish_encrypted(
    app: &crate::helpers::TestApp,
    asset: &str,
) -> (tempfile::TempDir, Vec<playgate::protect::ContentKey>) {
    let id = playgate::domain::AssetId::parse(asset).unwrap();
    let copy = tempfile::tempdir().unwrap();
    playgate::pipeline::publish::copy_tree(&clip().join("hls"), &copy.path().join("hls")).unwrap();
    let protection = app
        .state
        .protection
        .as_ref()
        .expect("protection is configured");
    let keys = protection.encrypt_dir(&id, copy.path()).await.unwrap();
    assert_eq!(keys.len(), RENDITIONS.len(), "a key per rendition");
    let v = playgate::pipeline::publish::publish_dir_with_keys(
        app.state.store.as_ref(),
        app.state.objects.as_ref(),
        &id,
        Some("encrypted clip".into()),
        copy.path(),
        crate::helpers::now(),
        keys.clone(),
    )
    .await
    .unwrap();
    assert_eq!(v, 1);
    (copy, keys)
}
