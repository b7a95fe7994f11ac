//! What the signing API may grant a backend (`playgate:sign`), what the
//! local edge serves whatever a signature says, and how much memory one
//! request to the edge may cost.

use crate::helpers::{TestApp, problem};
use crate::play::app_with_clip;
use serde_json::{Value, json};

async fn sign_urls(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/sign/urls"))
        .bearer_auth("signer-key")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Wildcards across assets, the original uploads, dot segments and
/// encoded separators are refused before anything is signed; one asset's
/// published output is granted.
#[tokio::test]
async fn grants_stay_inside_one_assets_published_output() {
    let app = app_with_clip().await;
    let cdn = app.state.config.cdn.base_url.clone();
    for bad in [
        "/assets/*",
        "/assets/*/source/*",
        "/assets/clip/source/*",
        "/assets/clip/source/orig.mp4",
        "/assets/clip/*",
        "/assets/cl*",
        "/assets/clip/v1*",
        "/assets/clip/v?/hls/*",
        "/assets/clip/v*/hls/*",
        "/assets/../playgate.db",
        "/assets/clip/v1/../../../playgate.db",
        "/assets/clip/v1/hls/./720p/*",
        "/assets/clip/v1/%2e%2e/%2e%2e/x",
        "/assets/clip/v1/hls%2f720p/*",
        "/assets/clip/v1/hls%5c720p/*",
        "/assets/clip%2fv1/hls/*",
        "/assets/nosuch/v1/hls/*",
        "/assets/clip/v2/hls/*",
        "/assets/clip/v0/hls/*",
        "/assets/clip/v01/hls/*",
        "/assets/clip/v1/",
        "/assets/clip/v1",
    ] {
        let resource = format!("{cdn}{bad}");
        let (status, p) = problem(sign_urls(&app, json!({"resource": resource})).await).await;
        assert_eq!(
            (status, p["field"].as_str()),
            (400, Some("body.resource")),
            "{bad}: {p}"
        );
        let (status, p) = problem(sign_urls(&app, json!({"urls": [resource]})).await).await;
        assert_eq!(
            (status, p["field"].as_str()),
            (400, Some("body.urls[0]")),
            "{bad} as a URL: {p}"
        );
    }
    for good in [
        "/assets/clip/v1/hls/720p/*",
        "/assets/clip/v1/*",
        "/assets/clip/v1/hls/master.m3u8",
    ] {
        let resp = sign_urls(&app, json!({"resource": format!("{cdn}{good}")})).await;
        assert_eq!(resp.status(), 200, "{good}");
    }
    let resp = sign_urls(
        &app,
        json!({"urls": [format!("{cdn}/assets/clip/v1/hls/720p/seg_001.m4s")]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

/// The uploaded original is not playback output: the local edge refuses
/// it even with a valid signature for exactly that URL.
#[tokio::test]
async fn the_edge_never_serves_an_uploaded_source() {
    let app = app_with_clip().await;
    let key = playgate::backends::storage::ObjectKey::parse("assets/clip/source/orig.mp4").unwrap();
    app.state
        .objects
        .put(&key, bytes::Bytes::from_static(b"the original upload"))
        .await
        .unwrap();
    let url = format!(
        "{}/assets/clip/source/orig.mp4",
        app.state.config.cdn.base_url
    );
    let signed = playgate::engine::cloudfront::signer::sign_url(
        app.state.keys.active(),
        &url,
        &playgate::engine::cloudfront::signer::SignOptions {
            expires: crate::helpers::now() + 600,
            ..Default::default()
        },
    )
    .unwrap();
    let path = signed.strip_prefix(&app.url("")).unwrap();
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(!body.contains("the original upload"), "{body}");
    assert!(body.contains("AccessDenied"), "{body}");
}

/// `VmHWM` (peak RSS) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// 16 concurrent reads of a 500 MB object through the local edge (8 whole,
/// 8 ranged, `bytes=0-0` among them) keep the gateway's peak RSS under
/// 100 MiB: objects are streamed, not read into memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_objects_are_streamed_by_the_edge() {
    use futures_util::StreamExt;
    const SIZE: u64 = 500_000_000;
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_keys(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let text = crate::helpers::config_text(dir.path(), "").replace("@ADDR@", &addr);
    let text = text.replace("127.0.0.1:0", &addr);
    let config = dir.path().join("playgate.toml");
    std::fs::write(&config, &text).unwrap();
    let seg = dir.path().join("data/assets/big/v1/hls/720p/seg_001.m4s");
    std::fs::create_dir_all(seg.parent().unwrap()).unwrap();
    // Sparse: the page cache, not the gateway, holds what is read.
    std::fs::File::create(&seg).unwrap().set_len(SIZE).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_playgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut up = false;
    for _ in 0..300 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway did not start");
    let signer = crate::helpers::test_config(dir.path(), &text);
    let keys = playgate::engine::cloudfront::keys::KeyRing::from_specs(
        &signer.signing.active,
        &signer.signing.keys,
    )
    .unwrap();
    let url = playgate::engine::cloudfront::signer::sign_url(
        keys.active(),
        &format!("{base}/cdn/assets/big/v1/hls/720p/seg_001.m4s"),
        &playgate::engine::cloudfront::signer::SignOptions {
            expires: crate::helpers::now() + 600,
            ..Default::default()
        },
    )
    .unwrap();
    let before = peak_rss(child.id());
    let ranges: Vec<Option<(String, u64)>> = (0..16)
        .map(|i| match i {
            0..=7 => None,
            8 => Some(("bytes=0-0".into(), 1)),
            9 => Some(("bytes=-1".into(), 1)),
            10 => Some(("bytes=499999999-".into(), 1)),
            11 => Some(("bytes=250000000-250000099".into(), 100)),
            n => Some((
                format!("bytes={}-", SIZE - 50_000_000 * (n - 11)),
                50_000_000 * (n - 11),
            )),
        })
        .collect();
    let reads = ranges.into_iter().map(|range| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let mut req = client.get(&url);
            let expected = match &range {
                Some((r, n)) => {
                    req = req.header("range", r);
                    *n
                }
                None => SIZE,
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let mut got = 0u64;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                got += chunk.unwrap().len() as u64;
            }
            (status, got, expected)
        }
    });
    let results = futures_util::future::join_all(reads).await;
    let peak = peak_rss(child.id());
    let _ = child.kill();
    let _ = child.wait();
    for (i, (status, got, expected)) in results.iter().enumerate() {
        assert_eq!(got, expected, "read {i}: status {status}");
        assert_eq!(*status, if i < 8 { 200 } else { 206 }, "read {i}");
    }
    eprintln!(
        "edge: 16 reads of a 500 MB object, peak RSS {} MiB (at start {} MiB)",
        peak >> 20,
        before >> 20
    );
    assert!(
        peak < 100 << 20,
        "peak RSS {} MiB (at start {} MiB)",
        peak >> 20,
        before >> 20
    );
}
