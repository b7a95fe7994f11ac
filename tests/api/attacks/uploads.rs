//! The uploader (`playgate:ingest`) sends hostile sources. ffprobe and
//! ffmpeg follow references inside media files, so a source is opened only
//! as one of an allow-list of containers, picked from its own first bytes
//! and forced with `-f`, with a protocol allow-list of the one file.

use crate::helpers::{TestApp, problem, spawn_app_edited, with_api_key};
use crate::pipeline::{KEY, post, transcode, wait_for_job};
use serde_json::{Value, json};

const NOT_A_CONTAINER: &str = "source is not a supported media container";

/// Declares `bytes` as `filename` (`video/mp4`), sends them and starts a
/// transcode; the asset id and the finished job.
async fn ingest(app: &TestApp, filename: &str, bytes: Vec<u8>) -> (String, Value) {
    let resp = post(
        app,
        "/v1/uploads",
        json!({"filename": filename, "content_type": "video/mp4", "size": bytes.len()}),
    )
    .await;
    assert_eq!(resp.status(), 201, "{filename}");
    let id = resp.json::<Value>().await.unwrap()["asset_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = app
        .client
        .put(app.url(&format!("/v1/uploads/{id}/source")))
        .bearer_auth(KEY)
        .header("content-type", "video/mp4")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let job = transcode(app, &id, 202).await;
    (id.clone(), wait_for_job(app, &job).await)
}

/// The job failed saying the source is no container, the asset has no
/// version, and nothing but the upload itself is stored under it.
async fn refused(app: &TestApp, id: &str, job: &Value, what: &str) {
    assert_eq!(job["state"], "ERROR", "{what}: {job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(error.contains(NOT_A_CONTAINER), "{what}: {job}");
    let stored = app
        .state
        .objects
        .list(&format!("assets/{id}/"))
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|k| k.as_str().starts_with(&format!("assets/{id}/source/"))),
        "{what}: nothing was published: {stored:?}"
    );
    let asset = app
        .state
        .store
        .get(playgate::backends::store::Kind::Asset, id)
        .await
        .unwrap()
        .unwrap();
    assert!(asset.body["current_version"].is_null(), "{what}: {asset:?}");
}

/// Every stored object's bytes under `prefix`.
async fn bytes_under(app: &TestApp, prefix: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in app.state.objects.list(prefix).await.unwrap() {
        out.push(app.state.objects.get(&k).await.unwrap().to_vec());
    }
    out
}

/// An HLS media playlist named `evil.mp4` whose map and segments are
/// another asset's premium rendition (`../../{other}/v1/hls/720p/…`):
/// encoded, it would make a copy of that asset that bypasses its
/// `min_tier`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_posing_as_an_mp4_cannot_copy_another_asset() {
    let app = crate::pipeline::app().await;
    crate::clip::publish(&app, "premiumclip").await;
    let files = crate::clip::files_of("720p");
    let init = files.iter().find(|f| f.starts_with("init")).unwrap();
    let mut playlist = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"../../premiumclip/v1/hls/720p/{init}\"\n"
    );
    for seg in files.iter().filter(|f| f.ends_with(".m4s")) {
        playlist.push_str(&format!(
            "#EXTINF:1.0,\n../../premiumclip/v1/hls/720p/{seg}\n"
        ));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let (id, job) = ingest(&app, "evil.mp4", playlist.into_bytes()).await;
    refused(&app, &id, &job, "relative playlist").await;
    let premium = bytes_under(&app, "assets/premiumclip/v1/hls/720p/").await;
    for b in bytes_under(&app, &format!("assets/{id}/")).await {
        assert!(!premium.contains(&b), "a premium segment was copied");
    }
}

/// The same with `file:///…/outside/secret.ts`, and an ffconcat list with
/// relative entries: nothing from outside the storage root is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_to_files_outside_the_root_are_not_followed() {
    let app = crate::pipeline::app().await;
    let outside = tempfile::tempdir().unwrap();
    let secret = crate::media::ffmpeg_source(
        outside.path(),
        "secret.ts",
        &[
            "testsrc2=size=640x360:rate=30:duration=2",
            "sine=frequency=300:duration=2",
        ],
    );
    let secret_bytes = std::fs::read(&secret).unwrap();
    let file_url = format!("file://{}", secret.display());
    // A comment line makes the file's bit rate (size over duration) look
    // like a video's, so the ladder would plan real renditions.
    let padding = format!("#{}\n", "x".repeat(400_000));
    let playlist = format!(
        "#EXTM3U\n{padding}#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\n{file_url}\n#EXT-X-ENDLIST\n"
    );
    let (id, job) = ingest(&app, "evil.mp4", playlist.into_bytes()).await;
    refused(&app, &id, &job, "file:// playlist").await;

    // ffconcat entries are relative to the list: from
    // `{root}/assets/{id}/source/` up to the outside directory.
    let root = app.dir.path().join("data");
    let up = "../".repeat(root.components().count() + 3);
    let concat = format!(
        "ffconcat version 1.0\n{padding}file '{up}{}'\n",
        secret.display().to_string().trim_start_matches('/')
    );
    let (id2, job2) = ingest(&app, "list.mp4", concat.into_bytes()).await;
    refused(&app, &id2, &job2, "ffconcat").await;
    for id in [&id, &id2] {
        for b in bytes_under(&app, &format!("assets/{id}/")).await {
            assert_ne!(b, secret_bytes, "the outside file was copied in");
        }
    }
}

/// Other things ffmpeg would open when left to guess: a live playlist (no
/// `EXT-X-ENDLIST`: ffmpeg would wait for it forever), `data:` and
/// `subfile` URIs, an SDP description (RTP from the network), and a
/// still image (the image demuxers). Each ends `ERROR`, promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_descriptions_and_images_are_refused_promptly() {
    let app = crate::pipeline::app().await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("still.png");
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args(["testsrc2=size=320x180", "-frames:v", "1", "-y"])
        .arg(&png)
        .status()
        .unwrap();
    assert!(made.success());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "live playlist",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg.ts\n".to_vec(),
        ),
        (
            "data: URI",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ndata:video/mp2t;base64,RwAAEAAA\n#EXT-X-ENDLIST\n".to_vec(),
        ),
        (
            "subfile URI",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nsubfile,,start,0,end,188,,:/etc/passwd\n#EXT-X-ENDLIST\n".to_vec(),
        ),
        (
            "SDP",
            b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n".to_vec(),
        ),
        ("PNG image", std::fs::read(&png).unwrap()),
    ];
    let started = std::time::Instant::now();
    for (what, bytes) in cases {
        let (id, job) = ingest(&app, "source.mp4", bytes).await;
        refused(&app, &id, &job, what).await;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "refusals are prompt: {:?}",
        started.elapsed()
    );
}

/// Real sources in every allowed container still encode: MP4, MOV,
/// Matroska, WebM and MPEG-TS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_containers_still_encode() {
    let app = crate::pipeline::app().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, codecs) in [
        ("clip.mp4", &["-c:v", "libx264", "-c:a", "aac"][..]),
        ("clip.mov", &["-c:v", "libx264", "-c:a", "aac"][..]),
        ("clip.mkv", &["-c:v", "libx264", "-c:a", "aac"][..]),
        (
            "clip.webm",
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-c:a",
                "libopus",
            ][..],
        ),
        ("clip.ts", &["-c:v", "libx264", "-c:a", "aac"][..]),
    ] {
        let file = dir.path().join(name);
        let made = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=30:duration=1",
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=300:duration=1"])
            .args(codecs)
            .args(["-preset", "ultrafast", "-shortest", "-y"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let (id, job) = ingest(&app, name, std::fs::read(&file).unwrap()).await;
        assert_eq!(job["state"], "COMPLETE", "{name}: {job}");
        let master = app
            .get_bearer(
                &format!("/v1/play/{id}/master.m3u8"),
                &app.viewer_token("free"),
            )
            .await;
        assert_eq!(master.status(), 200, "{name}");
    }
}

/// A probe or an encode that runs past its wall-clock limit is stopped
/// (its whole process group) and the job says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encode_past_its_time_limit_is_killed_and_the_job_says_so() {
    let app = spawn_app_edited(
        "",
        |t| {
            with_api_key(
                format!(
                    "{t}\n[pipeline]\nsegment_seconds = 1\nencode_timeout = \"1s\"\nencode_timeout_factor = 0\n"
                ),
                KEY,
                "playgate:ingest",
            )
        },
        axum::Router::new(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let src = crate::media::ffmpeg_source(
        dir.path(),
        "long.mp4",
        &["testsrc2=size=1280x720:rate=30:duration=30"],
    );
    let (_, job) = ingest(&app, "long.mp4", std::fs::read(&src).unwrap()).await;
    assert_eq!(job["state"], "ERROR", "{job}");
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.contains("time limit")),
        "{job}"
    );
    let work = app.state.config.pipeline.work_dir.display().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("ffmpeg") && c.contains(&work))
        .collect();
    assert!(survivors.is_empty(), "ffmpeg still runs: {survivors:?}");
}

/// A file name is a plain name with a media extension: a playlist or a
/// list by name is refused before anything is stored; so is a content
/// type that is not a single `video/…` media type.
#[tokio::test]
async fn names_and_types_are_checked_when_the_upload_is_declared() {
    let app = crate::pipeline::app().await;
    for name in ["x.m3u8", "list.ffconcat", "a.txt", "noext", "evil.sdp"] {
        let body = json!({"filename": name, "content_type": "video/mp4", "size": 10});
        let (status, p) = problem(post(&app, "/v1/uploads", body).await).await;
        assert_eq!(
            (status, p["field"].as_str()),
            (400, Some("body.filename")),
            "{name}: {p}"
        );
    }
    for ct in [
        "video/x\r\nX-Evil: 1",
        "video/mp4, text/html",
        "video/",
        "video",
        "video/mp4; x",
    ] {
        let body = json!({"filename": "a.mp4", "content_type": ct, "size": 10});
        let (status, p) = problem(post(&app, "/v1/uploads", body).await).await;
        assert!(
            status == 400 || status == 415,
            "{ct:?} accepted: {status} {p}"
        );
    }
    let ok = json!({"filename": "a.MOV", "content_type": "video/quicktime; codecs=\"avc1\"", "size": 10});
    assert_eq!(post(&app, "/v1/uploads", ok).await.status(), 201);
}

/// Two PUTs racing for one upload: one wins, the other is 409, and the
/// bytes on disk are the winner's, as the record says (SHA-256).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_uploads_leave_the_winners_bytes_under_the_winners_hash() {
    use futures_util::StreamExt;
    let app = crate::pipeline::app().await;
    for round in 0..8 {
        let size = 64 * 1024;
        let resp = post(
            &app,
            "/v1/uploads",
            json!({"filename": "race.mp4", "content_type": "video/mp4", "size": size}),
        )
        .await;
        let id = resp.json::<Value>().await.unwrap()["asset_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Both bodies arrive but for their last byte, then both finish at once.
        let go = std::sync::Arc::new(tokio::sync::Notify::new());
        let send = |fill: u8| {
            let (app, id, go) = (&app, id.clone(), go.clone());
            async move {
                let head = bytes::Bytes::from(vec![fill; size - 1]);
                let tail = bytes::Bytes::from(vec![fill; 1]);
                let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) })
                    .chain(futures_util::stream::once(async move {
                        go.notified().await;
                        Ok(tail)
                    }));
                let resp = app
                    .client
                    .put(app.url(&format!("/v1/uploads/{id}/source")))
                    .bearer_auth(KEY)
                    .header("content-type", "video/mp4")
                    .header("content-length", size.to_string())
                    .body(reqwest::Body::wrap_stream(body))
                    .send()
                    .await
                    .unwrap();
                (fill, resp.status().as_u16())
            }
        };
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            go.notify_waiters();
        };
        let (a, b, ()) = tokio::join!(send(b'a'), send(b'b'), release);
        let winners: Vec<u8> = [a, b]
            .iter()
            .filter(|(_, s)| *s == 200)
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {a:?} {b:?}");
        let record = app
            .state
            .store
            .get(playgate::backends::store::Kind::Asset, &id)
            .await
            .unwrap()
            .unwrap();
        let on_disk = std::fs::read(
            app.dir
                .path()
                .join(format!("data/assets/{id}/source/race.mp4")),
        )
        .unwrap();
        let hash: String = openssl::sha::sha256(&on_disk)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            record.body["source"]["sha256"], hash,
            "round {round}: the record names the bytes on disk"
        );
        assert!(
            on_disk.iter().all(|b| *b == winners[0]),
            "round {round}: the winner's bytes"
        );
        let scratch = app.state.config.pipeline.work_dir.join("uploads");
        let left = std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "round {round}: the loser's bytes are discarded");
    }
}
