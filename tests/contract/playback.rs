//! What MediaConvert writes, played the way viewers play it. The stand-in
//! encodes a real source into MediaConvert's documented flat layout
//! (`SINGLE_DIRECTORY`: child manifests and segments beside the master);
//! on COMPLETE the gateway moves each rendition into its own directory;
//! then a cookie tier and a URL tier play it through a CloudFront stand-in
//! that verifies every request, and every file of a forbidden rendition is
//! refused at that edge.

use crate::edge::Edge;
use crate::mediaconvert::StandIn;
use serde_json::Value;
use std::sync::Arc;

/// The cookies of `Set-Cookie` headers a browser would send to `path`
/// (RFC 6265 path match), as one `Cookie` header.
fn cookie_for(jar: &[(String, String)], path: &str) -> Option<String> {
    let sent: Vec<&str> = jar
        .iter()
        .filter(|(p, _)| path.starts_with(p.as_str()))
        .map(|(_, pair)| pair.as_str())
        .collect();
    (!sent.is_empty()).then(|| sent.join("; "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediaconvert_output_plays_per_tier_at_the_edge() {
    plays_per_tier_at_the_edge(false).await;
}

/// The same with `pipeline.encrypt` (KMS data keys from moto's KMS): a
/// MediaConvert group per rendition, the master composed, the segments
/// encrypted at rest, and ffmpeg plays the URL tier through the edge with
/// each key fetched from the gateway with its key token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_mediaconvert_output_plays_per_tier_at_the_edge() {
    plays_per_tier_at_the_edge(true).await;
}

async fn plays_per_tier_at_the_edge(encrypted: bool) {
    let Some(m) = crate::moto::moto() else { return };
    let sdk = crate::moto::moto_sdk(&m.url).await;
    let (_dynamo, s3) = crate::gateway::store_and_bucket(&sdk).await;
    let sources = playgate::backends::storage::s3::S3Store::new(&sdk, "pgtest-src", true);
    sources.create_bucket().await.unwrap();
    let outputs: Arc<dyn playgate::backends::storage::ObjectStore> = Arc::new(s3);
    let stand_in = StandIn::start_encoding(outputs.clone(), Arc::new(sources)).await;

    let dir = tempfile::tempdir().unwrap();
    let (listener, edge_port) = Edge::bind().await;
    let gw_port = crate::tools::free_port();
    let (cdn_host, play_host) = (
        format!("cdn.example.com:{edge_port}"),
        format!("play.example.com:{gw_port}"),
    );
    let hook = dir.path().join("hook");
    std::fs::write(&hook, "mediaconvert-hook-secret-123").unwrap();
    let protection = if encrypted {
        let (section, _) = crate::jobs::kms_protection(&sdk, dir.path()).await;
        format!("[pipeline]\nencrypt = true\n{section}")
    } else {
        String::new()
    };
    // A webhook receiver: what the job's end announces.
    let (announced_tx, mut announced) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_addr = receiver.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = announced_tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or_default());
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, router).await });
    std::fs::write(dir.path().join("webhook"), "webhook-secret-123").unwrap();
    let g = crate::gateway::Gateway::start_at(
        gw_port,
        dir.path(),
        &dir.path().join("keys"),
        &m.url,
        &format!(
            r#"[tiers.small]
rank = 1
max_height = 300
[tiers.smallurl]
rank = 1
max_height = 300
delivery = "urls"
[notify]
mediaconvert_hook_secret_file = "{hook}"
webhook_url = "http://{receiver_addr}/hook"
webhook_secret_file = "{webhook}"
{protection}"#,
            hook = hook.display(),
            webhook = dir.path().join("webhook").display()
        ),
        &format!("mediaconvert_endpoint = \"{}\"", stand_in.url),
        &[
            (
                "PLAYGATE__SERVER__PUBLIC_URL",
                &format!("http://{play_host}"),
            ),
            ("PLAYGATE__CDN__BASE_URL", &format!("http://{cdn_host}")),
        ],
    )
    .await;
    stand_in.send_events_to(
        &format!("{}/hooks/mediaconvert", g.base),
        "mediaconvert-hook-secret-123",
    );
    let public = playgate::engine::cloudfront::keys::VerifyKey::from_file(
        "KAWSTEST".parse().unwrap(),
        &dir.path().join("keys/cf_pub.pem"),
    )
    .unwrap();
    let edge = Edge::serve(
        listener,
        &cdn_host,
        playgate::engine::cloudfront::keys::PublicKeys::new(vec![public]).unwrap(),
        outputs.clone(),
        vec![(play_host.clone(), g.base.clone())],
    );

    // Encode: a 640×360 source gives 270p, 360p and audio.
    let client = reqwest::Client::new();
    let source = crate::media::small_source(dir.path(), 2);
    let id = crate::jobs::upload(&client, &g.base, &source).await;
    let job = crate::jobs::transcode(&client, &g.base, &id).await;
    let job = crate::jobs::wait_for_job(&client, &g.base, job["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "COMPLETE", "{job}\n{}", g.log());

    // One directory per rendition, nothing left flat.
    let keys = outputs.list(&format!("assets/{id}/v1/hls/")).await.unwrap();
    let hls = format!("assets/{id}/v1/hls/");
    let mut dirs = std::collections::BTreeSet::new();
    for k in &keys {
        let rest = k.as_str().strip_prefix(&hls).unwrap();
        match rest.split_once('/') {
            Some((d, _)) => {
                dirs.insert(d.to_owned());
            }
            None => assert_eq!(rest, "master.m3u8", "only the master stays flat: {keys:?}"),
        }
    }
    assert_eq!(
        dirs.into_iter().collect::<Vec<_>>(),
        ["270p", "360p", "audio"],
        "{keys:?}"
    );
    let asset = crate::jobs::asset(&client, &g.base, &id).await;
    assert_eq!(
        asset["renditions"],
        serde_json::json!(["270p", "360p", "audio"]),
        "{asset}"
    );
    assert!(
        asset["thumbnails"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("thumb.0000000")),
        "frame captures recorded: {asset}"
    );
    let note = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let n = announced.recv().await.unwrap();
            if n["job_id"] == job["id"] {
                return n;
            }
        }
    })
    .await
    .expect("the job's end was announced");
    assert_eq!(
        note["renditions"],
        serde_json::json!(["270p", "360p", "audio"]),
        "the webhook names the renditions of a flat master: {note}"
    );
    // And says, per tier, whether it can play the new version and how,
    // before any viewer asks (the layout was moved, so cookies work).
    let tiers = note["playability"]["tiers"]
        .as_array()
        .unwrap_or_else(|| panic!("no playability in {note}"));
    assert_eq!(note["playability"]["version"], 1, "{note}");
    for (tier, delivery, renditions) in [("small", "cookies", 2), ("smallurl", "urls", 2)] {
        let t = tiers
            .iter()
            .find(|t| t["tier"] == tier)
            .unwrap_or_else(|| panic!("{tier} missing: {note}"));
        assert_eq!(
            t["hls"],
            serde_json::json!({"playable": true, "delivery": delivery, "renditions": renditions}),
            "{tier}: {note}"
        );
    }

    let via_edge = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&edge.proxy).unwrap())
        .build()
        .unwrap();
    // The asset API hands the frame captures out signed; the poster opens
    // at the edge.
    let record: Value = client
        .get(format!("{}/v1/assets/{id}", g.base))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poster = record["thumbnails"]["poster"]
        .as_str()
        .unwrap_or_else(|| panic!("{record}"));
    let got = via_edge.get(poster).send().await.unwrap();
    assert_eq!(got.status(), 200, "{poster}");
    assert!(
        got.bytes().await.unwrap().starts_with(&[0xff, 0xd8]),
        "a JPEG"
    );
    let cdn = format!("http://{cdn_host}");
    let all_files = |rendition: &str| -> Vec<String> {
        keys.iter()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with(&format!("{hls}{rendition}/")))
            .collect()
    };

    // Cookie delivery (≤300 px): 270p and audio open at the edge, every
    // 360p file is refused, even with each of the tier's cookies on it.
    let master = via_edge
        .get(format!("http://{play_host}/v1/play/{id}/master.m3u8"))
        .bearer_auth(g.viewer_token("small"))
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
    let jar: Vec<(String, String)> = master
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| {
            let s = h.to_str().unwrap();
            let pair = s.split("; ").next().unwrap().to_owned();
            let path = s
                .split("; ")
                .find_map(|p| p.strip_prefix("Path="))
                .unwrap()
                .to_owned();
            (path, pair)
        })
        .collect();
    let key_cookies = jar
        .iter()
        .filter(|(p, _)| p.starts_with("/v1/keys/"))
        .count();
    assert_eq!(
        key_cookies,
        usize::from(encrypted),
        "the key cookie, when encrypted: {jar:?}"
    );
    assert_eq!(
        jar.len() - key_cookies,
        6,
        "two renditions' triples: {jar:?}"
    );
    if encrypted {
        let seg = all_files("270p")
            .into_iter()
            .find(|f| f.ends_with(".ts"))
            .unwrap();
        let bytes = outputs
            .get(&playgate::backends::storage::ObjectKey::parse(&seg).unwrap())
            .await
            .unwrap();
        assert_ne!(bytes.first(), Some(&0x47), "{seg} is stored encrypted");
    }
    let body = master.text().await.unwrap();
    assert!(!body.contains("360p"), "{body}");
    for (rendition, open) in [("270p", true), ("audio", true), ("360p", false)] {
        let files = all_files(rendition);
        assert!(files.len() >= 2, "{rendition}: {files:?}");
        for f in files {
            let path = format!("/{f}");
            let cookie = cookie_for(&jar, &path);
            assert_eq!(cookie.is_some(), open, "{path}");
            let mut req = via_edge.get(format!("{cdn}{path}"));
            if let Some(c) = &cookie {
                req = req.header("cookie", c);
            }
            let status = req.send().await.unwrap().status().as_u16();
            assert_eq!(status, if open { 200 } else { 403 }, "{path}");
            if !open {
                for (_, pair) in &jar {
                    let all = jar
                        .iter()
                        .map(|(_, p)| p.as_str())
                        .collect::<Vec<_>>()
                        .join("; ");
                    for c in [pair.as_str(), all.as_str()] {
                        let forced = via_edge
                            .get(format!("{cdn}{path}"))
                            .header("cookie", c)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(forced.status(), 403, "{path} with {c}");
                    }
                }
            }
        }
    }

    // URL delivery: ffmpeg plays the master through the edge, and gets
    // exactly 270p and the audio.
    let url_master = format!(
        "http://{play_host}/v1/play/{id}/master.m3u8?token={}",
        g.viewer_token("smallurl")
    );
    let out = dir.path().join("urls.mkv");
    let proxy = edge.proxy.clone();
    let out2 = out.clone();
    let copied = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-xerror"])
            .args(["-http_proxy", &proxy, "-i", &url_master])
            .args(["-map", "0", "-c", "copy", "-y"])
            .arg(&out2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        copied.status.success(),
        "ffmpeg through the edge: {}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert_eq!(probed_streams(&out), ["audio", "video 270"]);
    // The 270p signature on a 360p file is refused at the edge.
    let master = via_edge
        .get(format!(
            "http://{play_host}/v1/play/{id}/master.m3u8?token={}",
            g.viewer_token("smallurl")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let media_url = master
        .lines()
        .find(|l| l.contains("/hls/270p/"))
        .unwrap_or_else(|| panic!("{master}"));
    let query = media_url.split_once('?').unwrap().1;
    for f in all_files("360p") {
        let status = via_edge
            .get(format!("{cdn}/{f}?{query}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "{f}");
    }
}

/// ffmpeg reads a local master and copies every stream: the streams.
fn streams_of(master: &std::path::Path, out: &std::path::Path) -> Vec<String> {
    let run = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-xerror",
            "-i",
        ])
        .arg(master)
        .args(["-map", "0", "-c", "copy", "-y"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    probed_streams(out)
}

/// The streams of a media file, as `video 270`, `audio`, … sorted.
fn probed_streams(file: &std::path::Path) -> Vec<String> {
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let mut s: Vec<String> = String::from_utf8(probe.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches(',').replace(',', " "))
        .collect();
    s.sort();
    s
}

/// Both layouts MediaConvert documents — `SINGLE_DIRECTORY` (what playgate
/// sends) and `SUBDIRECTORY_PER_STREAM` (child manifests flat, segments in
/// a directory per stream) — are moved into one directory per rendition,
/// and what is left plays with every stream it had; a tree that is
/// already one directory per rendition is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_documented_layouts_become_one_directory_per_rendition() {
    use playgate::pipeline::layout::ensure_separable;
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let outputs: Arc<dyn playgate::backends::storage::ObjectStore> =
        Arc::new(playgate::backends::storage::local::LocalStore::open(&out_root).unwrap());
    let sources =
        playgate::backends::storage::local::LocalStore::open(&dir.path().join("src")).unwrap();
    let source = crate::media::small_source(dir.path(), 2);
    let key = playgate::backends::storage::ObjectKey::parse("sources/a/in.mp4").unwrap();
    playgate::backends::storage::ObjectStore::put(
        &sources,
        &key,
        std::fs::read(&source).unwrap().into(),
    )
    .await
    .unwrap();
    let stand_in = StandIn::start_encoding(outputs.clone(), Arc::new(sources)).await;
    stand_in.behave(crate::mediaconvert::Behaviour::Silent);
    let sdk = crate::moto::moto_sdk(&stand_in.url).await;
    let mut aws = crate::jobs::aws_config(&stand_in.url);
    aws.source_bucket = "src".into();
    aws.output_bucket = "out".into();
    let mc = playgate::pipeline::mediaconvert::MediaConvert::new(&sdk, &aws);
    let plan = playgate::engine::ladder::plan(
        &playgate::engine::ladder::Source {
            width: 640,
            height: 360,
            frame_rate: 30.0,
            bit_rate: None,
            has_audio: true,
            duration: 2.0,
        },
        &playgate::engine::ladder::LadderConfig::default(),
    )
    .unwrap();
    let job = playgate::backends::store::Job {
        id: "a-a1".parse().unwrap(),
        asset_id: "a".parse().unwrap(),
        attempt: 1,
        version: 1,
        state: playgate::backends::store::JobState::Submitted,
        progress: 0,
        backend_job_id: None,
        error: None,
        created_at: 0,
        submissions: 0,
    };
    mc.submit(&job, "sources/a/in.mp4", &plan, &[])
        .await
        .unwrap();
    let mut sent = stand_in.created()[0].clone();
    for _ in 0..100 {
        if outputs.list("assets/a/v1/thumbs/").await.unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The same job with SUBDIRECTORY_PER_STREAM, into v2.
    let hls = sent
        .pointer_mut("/settings/outputGroups/0/outputGroupSettings/hlsGroupSettings")
        .unwrap();
    hls["directoryStructure"] = "SUBDIRECTORY_PER_STREAM".into();
    hls["destination"] = "s3://out/assets/a/v2/hls/master".into();
    sent["settings"]["outputGroups"][1]["outputGroupSettings"]["fileGroupSettings"]["destination"] =
        "s3://out/assets/a/v2/thumbs/thumb".into();
    stand_in.encode_body(&sent).await;
    let flat = outputs.list("assets/a/v1/hls/").await.unwrap();
    assert!(
        flat.iter()
            .any(|k| k.as_str() == "assets/a/v1/hls/master_270p_00001.ts"),
        "{flat:?}"
    );
    let per_stream = outputs.list("assets/a/v2/hls/").await.unwrap();
    assert!(
        per_stream
            .iter()
            .any(|k| k.as_str() == "assets/a/v2/hls/master_270p/master_270p_00001.ts"),
        "{per_stream:?}"
    );
    for v in ["v1", "v2"] {
        let version = format!("assets/a/{v}");
        let before = streams_of(
            &out_root.join(&version).join("hls/master.m3u8"),
            &dir.path().join(format!("{v}-before.mkv")),
        );
        assert_eq!(before, ["audio", "video 270", "video 360"], "{v}");
        let done = ensure_separable(outputs.as_ref(), &version).await.unwrap();
        assert_eq!(done.renditions, ["270p", "360p", "audio"], "{v}");
        assert!(done.moved > 0, "{v}");
        let keys = outputs.list(&format!("{version}/hls/")).await.unwrap();
        for k in &keys {
            let rest = k.as_str().strip_prefix(&format!("{version}/hls/")).unwrap();
            assert!(
                rest == "master.m3u8"
                    || ["270p/", "360p/", "audio/"]
                        .iter()
                        .any(|d| rest.starts_with(d)),
                "{v}: {rest} is left over"
            );
        }
        let after = streams_of(
            &out_root.join(&version).join("hls/master.m3u8"),
            &dir.path().join(format!("{v}-after.mkv")),
        );
        assert_eq!(after, before, "{v} plays the same after the move");
        let again = ensure_separable(outputs.as_ref(), &version).await.unwrap();
        assert_eq!(
            (again.renditions, again.moved),
            (done.renditions, 0),
            "{v}: idempotent"
        );
    }
}

/// An I-frame playlist points into its video rendition's segments: the two
/// move together into one directory, byte ranges kept; a key on another
/// origin is left as written; a master naming a file outside the version
/// is refused.
#[tokio::test]
async fn iframe_playlists_move_with_their_video() {
    use playgate::backends::storage::{ObjectKey, ObjectStore};
    let dir = tempfile::tempdir().unwrap();
    let s = playgate::backends::storage::local::LocalStore::open(dir.path()).unwrap();
    let put = |k: &str, v: &str| {
        let (k, v) = (ObjectKey::parse(k).unwrap(), v.to_owned());
        let s = &s;
        async move { s.put(&k, v.into_bytes().into()).await.unwrap() }
    };
    let v = "assets/i/v1/hls";
    put(&format!("{v}/master.m3u8"), "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.4d401e\"\nmaster_360p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=480x270,CODECS=\"avc1.4d401e\"\nmaster_270p.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=640x360,CODECS=\"avc1.4d401e\",URI=\"master_360p_I-Frame.m3u8\"\n").await;
    for r in ["360p", "270p"] {
        put(&format!("{v}/master_{r}.m3u8"), &format!("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.net/k\"\n#EXTINF:6,\nmaster_{r}_00001.ts\n#EXT-X-ENDLIST\n")).await;
        put(&format!("{v}/master_{r}_00001.ts"), r).await;
    }
    put(&format!("{v}/master_360p_I-Frame.m3u8"), "#EXTM3U\n#EXT-X-I-FRAMES-ONLY\n#EXTINF:6,\n#EXT-X-BYTERANGE:188@0\nmaster_360p_00001.ts\n#EXT-X-ENDLIST\n").await;
    let done = playgate::pipeline::layout::ensure_separable(&s, "assets/i/v1")
        .await
        .unwrap();
    assert_eq!(done.renditions, ["270p", "360p"]);
    let read = |k: &str| std::fs::read_to_string(dir.path().join(k)).unwrap();
    let iframes = read(&format!("{v}/360p/master_360p_I-Frame.m3u8"));
    assert!(
        iframes.contains("#EXT-X-BYTERANGE:188@0\nmaster_360p_00001.ts\n"),
        "{iframes}"
    );
    let media = read(&format!("{v}/360p/master_360p.m3u8"));
    assert!(
        media.contains("URI=\"https://keys.example.net/k\""),
        "{media}"
    );
    let master = read(&format!("{v}/master.m3u8"));
    assert!(
        master.contains("\n360p/master_360p.m3u8\n")
            && master.contains("URI=\"360p/master_360p_I-Frame.m3u8\""),
        "{master}"
    );
    assert!(
        !dir.path()
            .join(format!("{v}/master_360p_00001.ts"))
            .exists(),
        "the old files go"
    );

    put("assets/o/v1/hls/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\n../../../i/v1/hls/360p/master_360p.m3u8\n").await;
    let err = playgate::pipeline::layout::ensure_separable(&s, "assets/o/v1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("outside the version"), "{err}");
}
