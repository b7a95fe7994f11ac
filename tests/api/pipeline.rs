//! The local pipeline end to end: upload a real source, transcode it with
//! ffmpeg, watch the job, play the result (ffmpeg as the client), and the
//! ways a bad upload or source is refused.

use crate::helpers::{TestApp, problem, spawn_app_edited, with_api_key};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const KEY: &str = "ingest-key";

pub(crate) async fn app() -> TestApp {
    app_with_pipeline("").await
}

/// `app()` with extra `[pipeline]` settings.
async fn app_with_pipeline(extra: &str) -> TestApp {
    spawn_app_edited(
        "",
        |t| {
            with_api_key(
                format!(
                    "{t}{}\n[pipeline]\nsegment_seconds = 1\n{extra}",
                    crate::play::EXTRA_TIERS
                ),
                KEY,
                "playgate:ingest",
            )
        },
        axum::Router::new(),
    )
    .await
}

use crate::media::ffmpeg_source;

/// A 3 s 640×360 30 fps H.264 + AAC MP4.
fn source(dir: &Path) -> PathBuf {
    ffmpeg_source(
        dir,
        "source.mp4",
        &[
            "testsrc2=size=640x360:rate=30:duration=3",
            "sine=frequency=300:duration=3",
        ],
    )
}

pub(crate) async fn post(app: &TestApp, path: &str, body: serde_json::Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Declares and sends `bytes`; returns the asset id and the PUT response.
pub(crate) async fn upload(app: &TestApp, bytes: Vec<u8>, ct: &str) -> (String, reqwest::Response) {
    let resp = post(
        app,
        "/v1/uploads",
        serde_json::json!({"filename": "source.mp4", "content_type": ct, "size": bytes.len(), "title": "t"}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["asset_id"].as_str().unwrap().to_owned();
    let url = body["upload"]["url"].as_str().unwrap();
    assert_eq!(body["upload"]["method"], "PUT");
    let put = app
        .client
        .put(url)
        .bearer_auth(KEY)
        .header("content-type", ct)
        .body(bytes)
        .send()
        .await
        .unwrap();
    (id, put)
}

/// Starts a transcode, expecting `status`; the job id.
pub(crate) async fn transcode(app: &TestApp, id: &str, status: u16) -> String {
    let resp = post(
        app,
        &format!("/v1/assets/{id}/transcode"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(resp.status(), status);
    resp.json::<serde_json::Value>().await.unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Uploads a file as video/mp4, expecting success; the asset id.
async fn upload_file(app: &TestApp, file: &Path) -> String {
    let (id, put) = upload(app, std::fs::read(file).unwrap(), "video/mp4").await;
    assert_eq!(put.status(), 200);
    id
}

pub(crate) async fn wait_for_job(app: &TestApp, job: &str) -> serde_json::Value {
    for _ in 0..600 {
        let j: serde_json::Value = app
            .client
            .get(app.url(&format!("/v1/jobs/{job}")))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["COMPLETE", "ERROR", "CANCELED"].contains(&j["job"]["state"].as_str().unwrap()) {
            return j["job"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {job} did not finish in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_transcode_and_play() {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let bytes = std::fs::read(&src).unwrap();
    let sha: String = openssl::sha::sha256(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (id, put) = upload(&app, bytes.clone(), "video/mp4").await;
    assert_eq!(put.status(), 200);
    let body: serde_json::Value = put.json().await.unwrap();
    assert_eq!(body["sha256"], sha.as_str());

    let again = app
        .client
        .put(app.url(&format!("/v1/uploads/{id}/source")))
        .bearer_auth(KEY)
        .header("content-type", "video/mp4")
        // Refused before its body is read, the server closes this
        // connection; do not let the pool hand it to the next request.
        .header("connection", "close")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(again).await.0, 409, "a second upload is refused");

    let job = transcode(&app, &id, 202).await;
    let second = post(
        &app,
        &format!("/v1/assets/{id}/transcode"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(second.status(), 200, "idempotent while the job runs");
    assert_eq!(
        second.json::<serde_json::Value>().await.unwrap()["job"]["id"],
        job.as_str()
    );
    let done = wait_for_job(&app, &job).await;
    assert_eq!(done["state"], "COMPLETE", "{done}");
    assert_eq!(done["progress"], 100);

    // The default ladder for a 360p source: 270p at 15 fps and 360p.
    let master = app
        .get_bearer(
            &format!("/v1/play/{id}/master.m3u8"),
            &app.viewer_token("premium"),
        )
        .await;
    assert_eq!(master.status(), 200);
    let text = master.text().await.unwrap();
    assert!(
        text.contains("RESOLUTION=480x270,FRAME-RATE=15.000"),
        "{text}"
    );
    assert!(
        text.contains("RESOLUTION=640x360,FRAME-RATE=30.000"),
        "{text}"
    );
    assert!(!text.contains("480p"), "never upscaled: {text}");
    let streams = crate::players::ffmpeg_copy(
        app.url(&format!(
            "/v1/play/{id}/master.m3u8?token={}",
            app.viewer_token("mobile")
        )),
        None,
        &dir.path().join("out.mkv"),
    )
    .await;
    assert_eq!(streams, ["audio", "video 270", "video 360"]);
    let thumbs = app
        .state
        .objects
        .list(&format!("assets/{id}/v1/thumbs/"))
        .await
        .unwrap();
    assert_eq!(thumbs.len(), 1, "one frame capture per 10 s: {thumbs:?}");
    assert_eq!(
        thumbs[0].as_str(),
        format!("assets/{id}/v1/thumbs/thumb.0000000.jpg"),
        "MediaConvert's frame-capture naming"
    );
    let jpeg = app.state.objects.get(&thumbs[0]).await.unwrap();
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
    // The session hands out the captures signed: the poster plays at the
    // edge, the query opens the captures and nothing else.
    let session: serde_json::Value = app
        .client
        .post(app.url(&format!("/v1/play/{id}/session")))
        .bearer_auth(app.viewer_token("free"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &session["thumbnails"];
    let poster = t["poster"].as_str().unwrap_or_else(|| panic!("{session}"));
    let local = poster.strip_prefix(&app.url("")).unwrap();
    let got = app.get(local).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.unwrap(), jpeg);
    let query = t["query"].as_str().unwrap();
    let segment = app.url(&format!("/cdn/assets/{id}/v1/hls/360p/index.m3u8?{query}"));
    assert_eq!(
        app.client.get(segment).send().await.unwrap().status(),
        403,
        "the thumbnails' signature opens no rendition"
    );
    // Encrypted by default: each rendition's stored playlist names its own
    // key at the gateway, its segments do not decode as stored, and there
    // are no I-frame playlists (byte ranges of CBC-encrypted files).
    assert!(!text.contains("#EXT-X-I-FRAME-STREAM-INF:"), "{text}");
    let hls = app.dir.path().join(format!("data/assets/{id}/v1/hls"));
    let mut key_uris = Vec::new();
    for rendition in ["270p", "360p", "audio"] {
        let playlist =
            std::fs::read_to_string(hls.join(format!("{rendition}/index.m3u8"))).unwrap();
        let key = playlist
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-KEY:METHOD=AES-128,URI=\""))
            .unwrap_or_else(|| panic!("{rendition} is not encrypted:\n{playlist}"));
        assert!(
            key.starts_with(&app.url(&format!("/v1/keys/{id}/"))),
            "{key}"
        );
        key_uris.push(key.to_owned());
        assert!(!hls.join(format!("{rendition}/iframes.m3u8")).exists());
    }
    key_uris.sort();
    key_uris.dedup();
    assert_eq!(key_uris.len(), 3, "a key per rendition: {key_uris:?}");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(hls.join("360p/seg_00000.m4s"))
        .output()
        .unwrap();
    assert!(
        !probe.status.success() || !probe.stderr.is_empty(),
        "ffprobe read a stored segment: {}",
        String::from_utf8_lossy(&probe.stdout)
    );
}

/// Every entry of a rendition's I-frame playlist, read as a player would
/// (the init segment, then the entry's byte range), decodes as exactly
/// one key frame.
async fn one_key_frame_per_entry(app: &TestApp, id: &str, rendition: &str, tmp: &Path) {
    let get = |rel: String| {
        let key =
            playgate::backends::storage::ObjectKey::parse(&format!("assets/{id}/v1/hls/{rel}"))
                .unwrap();
        let objects = app.state.objects.clone();
        async move { objects.get(&key).await.unwrap() }
    };
    let master = get("master.m3u8".into()).await;
    let want = format!("URI=\"{rendition}/iframes.m3u8\"");
    assert!(
        String::from_utf8_lossy(&master).contains(&want),
        "the master lists {want}"
    );
    let list = String::from_utf8(get(format!("{rendition}/iframes.m3u8")).await.to_vec()).unwrap();
    assert!(list.contains("#EXT-X-I-FRAMES-ONLY"), "{list}");
    let map = list
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    let init = get(format!("{rendition}/{map}")).await;
    let mut entries = 0;
    let mut range = None;
    for line in list.lines() {
        if let Some(r) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = r.split_once('@').unwrap();
            range = Some((len.parse::<usize>().unwrap(), off.parse::<usize>().unwrap()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let (len, off) = range.take().unwrap();
            let seg = get(format!("{rendition}/{line}")).await;
            let mut bytes = init.to_vec();
            bytes.extend_from_slice(&seg[off..off + len]);
            let file = tmp.join(format!("iframe-{rendition}-{entries}.mp4"));
            std::fs::write(&file, bytes).unwrap();
            let out = Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v", "-show_entries"])
                .args(["frame=key_frame,pict_type", "-of", "csv=p=0"])
                .arg(&file)
                .output()
                .unwrap();
            let frames = String::from_utf8_lossy(&out.stdout);
            let frames: Vec<&str> = frames
                .lines()
                .map(|l| l.trim_end_matches(','))
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(frames, ["1,I"], "{rendition} entry {entries}");
            entries += 1;
        }
    }
    assert!(entries > 0, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_and_sources_are_refused_clearly() {
    let app = app().await;
    for (body, status, field) in [
        (
            serde_json::json!({"filename": "a.mp4", "content_type": "text/plain", "size": 10}),
            415,
            None,
        ),
        (
            serde_json::json!({"filename": "a.mp4", "content_type": "video/mp4", "size": 10_000_000_000_000u64}),
            413,
            None,
        ),
        (
            serde_json::json!({"filename": "../a.mp4", "content_type": "video/mp4", "size": 10}),
            400,
            Some("body.filename"),
        ),
    ] {
        let (s, p) = problem(post(&app, "/v1/uploads", body).await).await;
        assert_eq!(s, status, "{p}");
        if let Some(f) = field {
            assert_eq!(p["field"], f);
        }
    }
    // Wrong content type and wrong size on the PUT.
    let resp = post(
        &app,
        "/v1/uploads",
        serde_json::json!({"filename": "a.mp4", "content_type": "video/mp4", "size": 5}),
    )
    .await;
    let id = resp.json::<serde_json::Value>().await.unwrap()["asset_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = |ct: &'static str, body: &'static [u8]| {
        let (app, id) = (&app, id.clone());
        async move {
            app.client
                .put(app.url(&format!("/v1/uploads/{id}/source")))
                .bearer_auth(KEY)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(problem(put("video/quicktime", b"12345").await).await.0, 415);
    assert_eq!(problem(put("video/mp4", b"123456789").await).await.0, 413);
    assert_eq!(problem(put("video/mp4", b"123").await).await.0, 400);
    assert_eq!(
        problem(
            post(
                &app,
                &format!("/v1/assets/{id}/transcode"),
                serde_json::json!({})
            )
            .await
        )
        .await
        .0,
        409,
        "no source yet"
    );
    // Five bytes that are no media container: the job fails and says why.
    assert_eq!(put("video/mp4", b"hello").await.status(), 200);
    let job = transcode(&app, &id, 202).await;
    let done = wait_for_job(&app, &job).await;
    assert_eq!(done["state"], "ERROR");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("source is not a supported media container: a text file"),
        "{done}"
    );
    let asset = app
        .state
        .store
        .get(playgate::backends::store::Kind::Asset, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asset.body["status"], "failed");
    assert!(
        !app.state.config.pipeline.work_dir.join(&job).exists(),
        "scratch is cleaned up"
    );
}

/// `playgate ingest FILE` against a running gateway: the URL it prints
/// plays; a file that is no video fails in one line with exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_command_uploads_transcodes_and_prints_a_playable_url() {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("playgate.toml");
    let text = crate::helpers::config_text(app.dir.path(), "")
        .replace(crate::helpers::ADDR, &app.addr.to_string());
    std::fs::write(&config, text).unwrap();
    let run = |file: PathBuf| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_playgate"))
                .arg("ingest")
                .arg("--config")
                .arg(&config)
                .args(["--token-env", "PLAYGATE_TEST_INGEST", "--title", "cli"])
                .arg(&file)
                .env("PLAYGATE_TEST_INGEST", KEY)
                .output()
                .unwrap()
        })
    };
    let out = run(source(dir.path())).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(url.ends_with("/master.m3u8"), "{url}");
    let path = url.strip_prefix(&app.url("")).unwrap().to_owned();
    let resp = app.get_bearer(&path, &app.viewer_token("free")).await;
    assert_eq!(resp.status(), 200);

    let junk = dir.path().join("notes.mp4");
    std::fs::write(&junk, b"not a video at all").unwrap();
    let out = run(junk).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("playgate: transcode failed: source is not a supported media container"),
        "{err}"
    );
}

/// A long source so the encode is still running when the test acts.
fn long_source(dir: &Path) -> PathBuf {
    ffmpeg_source(
        dir,
        "long.mp4",
        &["testsrc2=size=1280x720:rate=30:duration=60"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_encode_can_be_cancelled_and_started_again() {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload_file(&app, &long_source(dir.path())).await;
    let job = transcode(&app, &id, 202).await;
    // Wait until ffmpeg is running.
    for _ in 0..100 {
        let j = app.state.pipeline.job(&job.parse().unwrap()).await.unwrap();
        if j.state == playgate::backends::store::JobState::Progressing {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cancelled = app
        .client
        .delete(app.url(&format!("/v1/jobs/{job}")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let done = wait_for_job(&app, &job).await;
    assert_eq!(done["state"], "CANCELED", "{done}");
    // ffmpeg is stopped and the asset goes back to waiting for a transcode.
    let mut status = serde_json::Value::Null;
    for _ in 0..50 {
        let asset = app
            .state
            .store
            .get(playgate::backends::store::Kind::Asset, &id)
            .await
            .unwrap()
            .unwrap();
        status = asset.body["status"].clone();
        if status == "uploaded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "uploaded", "ready to be transcoded again");
    assert!(!app.state.config.pipeline.work_dir.join(&job).exists());
    let second = transcode(&app, &id, 202).await;
    assert_ne!(second, job, "a new attempt");
    app.client
        .delete(app.url(&format!("/v1/jobs/{second}")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
}

/// A job left SUBMITTED or PROGRESSING by a stopped process is run again,
/// from scratch, when the next one starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_encode_runs_again_after_a_restart() {
    let mut first = app().await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload_file(&first, &source(dir.path())).await;
    // What a crash mid-encode leaves: a PROGRESSING job, half an output.
    let job = playgate::backends::store::Job {
        id: format!("{id}-a1").parse().unwrap(),
        asset_id: id.parse().unwrap(),
        attempt: 1,
        version: 1,
        state: playgate::backends::store::JobState::Progressing,
        progress: 40,
        backend_job_id: None,
        error: None,
        created_at: crate::helpers::now(),
        submissions: 0,
    };
    use playgate::backends::store::StoreExt;
    first
        .state
        .store
        .put_job(&job, playgate::backends::store::Expect::Absent)
        .await
        .unwrap();
    let scratch = first.state.config.pipeline.work_dir.join(job.id.as_str());
    std::fs::create_dir_all(scratch.join("hls/360p")).unwrap();
    std::fs::write(scratch.join("hls/360p/seg_00099.m4s"), b"half").unwrap();
    first.shutdown().await;

    let text = crate::helpers::config_text(first.dir.path(), "");
    let text = with_api_key(
        format!("{text}\n[pipeline]\nsegment_seconds = 1\n"),
        KEY,
        "playgate:ingest",
    );
    let second = crate::helpers::spawn_in(first.dir.clone(), text, axum::Router::new()).await;
    let done = wait_for_job(&second, job.id.as_str()).await;
    assert_eq!(done["state"], "COMPLETE", "{done}");
    let master = second
        .get_bearer(
            &format!("/v1/play/{id}/master.m3u8"),
            &second.viewer_token("free"),
        )
        .await;
    assert_eq!(master.status(), 200);
    let leftovers = second
        .state
        .objects
        .list(&format!("assets/{id}/v1/hls/360p/"))
        .await
        .unwrap();
    assert!(
        leftovers
            .iter()
            .all(|k| !k.as_str().ends_with("seg_00099.m4s")),
        "the half-written output was not published"
    );
}

/// The end of an encode is POSTed to the webhook, signed, and retried
/// when the receiver fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_hears_of_the_encode_signed_and_retried() {
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;
    let seen: Seen = Default::default();
    async fn hook(
        axum::extract::State(seen): axum::extract::State<Seen>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        let mut s = seen.lock().unwrap();
        s.push((headers, body.to_vec()));
        if s.len() == 1 {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            axum::http::StatusCode::NO_CONTENT
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("hook-secret");
    std::fs::write(&secret_file, "s3cret-for-hooks\n").unwrap();
    let notify = format!(
        "\n[notify]\nwebhook_url = \"http://{addr}/hook\"\nwebhook_secret_file = \"{}\"\nretry_base = \"50ms\"\n",
        secret_file.display()
    );
    let app = spawn_app_edited(
        "",
        move |t| {
            with_api_key(
                format!("{t}\n[pipeline]\nsegment_seconds = 1\n{notify}"),
                KEY,
                "playgate:ingest",
            )
        },
        axum::Router::new(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload_file(&app, &source(dir.path())).await;
    let job = transcode(&app, &id, 202).await;
    assert_eq!(wait_for_job(&app, &job).await["state"], "COMPLETE");
    for _ in 0..50 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one failure, one retry that worked");
    let (headers, body) = &seen[1];
    assert_eq!(seen[0].1, *body, "the retry sends the same payload");
    let ts = headers["x-playgate-timestamp"].to_str().unwrap();
    let key = openssl::pkey::PKey::hmac(b"s3cret-for-hooks").unwrap();
    let mut mac = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    mac.update(format!("{ts}.").as_bytes()).unwrap();
    mac.update(body).unwrap();
    let expected: String = mac
        .sign_to_vec()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers["x-playgate-signature"].to_str().unwrap(),
        format!("v1={expected}")
    );
    let n: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(n["asset_id"], id.as_str());
    assert_eq!(n["job_id"], job.as_str());
    assert_eq!(n["status"], "COMPLETE");
    assert_eq!(
        n["renditions"],
        serde_json::json!(["270p", "360p", "audio"])
    );
    assert_eq!(
        n["playback_path"],
        format!("/v1/play/{id}/master.m3u8").as_str()
    );
    assert!(n["error"].is_null());
}

/// Key frames (and so segment boundaries) line up across rungs for a
/// 29.97 fps source: the 270p rung runs at 15000/1001, its GOP spans the
/// same 2.002 s as the others'; ffprobe reads the key frames' times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_frames_and_segments_line_up_across_rungs() {
    // A clear encode: ffprobe reads the stored playlists directly, and
    // I-frame playlists exist only for clear renditions.
    let app = app_with_pipeline("encrypt = false\n").await;
    let dir = tempfile::tempdir().unwrap();
    let src = ffmpeg_source(
        dir.path(),
        "ntsc.mp4",
        &[
            "testsrc2=size=640x360:rate=30000/1001:duration=5",
            "sine=frequency=300:duration=5",
        ],
    );
    let id = upload_file(&app, &src).await;
    let job = transcode(&app, &id, 202).await;
    assert_eq!(wait_for_job(&app, &job).await["state"], "COMPLETE");
    let hls = app.dir.path().join(format!("data/assets/{id}/v1/hls"));
    let key_frames = |r: &str| -> Vec<String> {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-skip_frame",
                "nokey",
            ])
            .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
            .arg(hls.join(format!("{r}/index.m3u8")))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.trim_end_matches(',').trim().parse::<f64>().ok())
            .map(|t| format!("{t:.3}"))
            .collect()
    };
    let durations = |r: &str| -> Vec<String> {
        std::fs::read_to_string(hls.join(format!("{r}/index.m3u8")))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(str::to_owned)
            .collect()
    };
    let (low, high) = (key_frames("270p"), key_frames("360p"));
    assert!(low.len() >= 3, "{low:?}");
    assert_eq!(low, high, "key frames at the same instants");
    assert_eq!(
        durations("270p"),
        durations("360p"),
        "segments of the same length"
    );
    let master = std::fs::read_to_string(hls.join("master.m3u8")).unwrap();
    assert!(master.contains("FRAME-RATE=14.985"), "{master}");
    assert!(master.contains("#EXT-X-I-FRAME-STREAM-INF:"), "{master}");
    for rendition in ["270p", "360p"] {
        one_key_frame_per_entry(&app, &id, rendition, dir.path()).await;
    }
}
