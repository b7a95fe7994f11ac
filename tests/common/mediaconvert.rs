//! A loopback stand-in for MediaConvert (the moto server has none: every
//! call is a 500). It speaks the REST JSON the real aws-sdk-mediaconvert
//! client sends and parses:
//!
//! - `POST /2017-08-29/jobs` (CreateJob): checks the SigV4 scope names
//!   mediaconvert, and that `role`, `clientRequestToken`,
//!   `userMetadata.{app,asset_id,job_id}`, an `s3://` input and an HLS
//!   output group are there, and that the body fits MediaConvert's model
//!   as botocore publishes it (`tests/contract/aws_model.py`: every wire
//!   name a member, required members present, enums and ranges kept); a
//!   token seen before returns the first job and runs nothing new. 400
//!   `BadRequestException` otherwise.
//!   The token is honoured as the API model says: "If you reuse a client
//!   request token within one minute of a successful request, the API
//!   returns the job details of the original request instead" — after a
//!   minute (of the stand-in's clock, which `advance` moves) the same
//!   token creates another job.
//! - `GET /2017-08-29/jobs` (ListJobs: newest first, twenty a page,
//!   `nextToken`), `GET /2017-08-29/jobs/{id}` (GetJob), `DELETE`
//!   (CancelJob).
//!
//! A created job "runs". Made with `start_encoding`, it encodes the job's
//! source (read from the source bucket) with real ffmpeg as the settings
//! say — every HLS output at its size, frame rate, GOP and bit rate,
//! segments of `segmentLength` — and writes what MediaConvert's
//! documentation says it writes: the master at `{destination}.m3u8`, child
//! manifests at `{destination}{nameModifier}.m3u8` beside it, segments
//! `{destination}{nameModifier}_00001.ts` beside them with
//! `SINGLE_DIRECTORY`, or in a subdirectory per stream
//! (`{destination}{nameModifier}/…`) with `SUBDIRECTORY_PER_STREAM`; frame
//! captures `{destination}.NNNNNNN.jpg` from 0 ("Files will be named as
//! filename.NNNNNNN.jpg where N is the 0-based frame sequence number zero
//! padded to 7 decimal places", FrameCaptureSettings in the API model).
//! An HLS group with `encryption` (`STATIC_KEY`, `AES128`) has its
//! segments encrypted with the group's `staticKeyValue` ("a 32-character
//! hexidecimal string") in AES-128-CBC, the IV "the segment number by
//! default" (no `constantInitializationVector`: HlsEncryptionSettings in
//! the API model), and each child manifest names the key
//! (`#EXT-X-KEY:METHOD=AES-128,URI="{url}"`, with the KEYFORMAT attributes
//! asked for). An audio output whose `audioTrackType` is
//! `AUDIO_ONLY_VARIANT_STREAM` is an `EXT-X-STREAM-INF` of its group's
//! master ("Represented as an EXT-X-STREAM-INF in the HLS manifest").
//! Unlike MediaConvert it writes no I-frame manifests (ffmpeg cannot write
//! byte ranges into the segments it also writes) and audio segments in TS,
//! not raw AAC. Made with `start`, a job copies a prepared HLS tree (one
//! directory per rendition) instead. Then it reports as the `Behaviour`
//! says. Events are
//! delivered as EventBridge's API destinations do: a 5xx, a 429 or no
//! answer is tried again with exponential backoff; other answers are final.
#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a created job does after copying its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// EventBridge-shaped PROGRESSING, STATUS_UPDATE and COMPLETE events to
    /// the hook (COMPLETE twice, then a late PROGRESSING).
    Events,
    /// Completes without a word: only GetJob knows.
    Silent,
    /// An ERROR event with code 1010, no output.
    Fail,
    /// PROGRESSING forever (until canceled).
    Hang,
}

struct Inner {
    behaviour: Behaviour,
    /// CreateJob answers 500 InternalServerErrorException while set.
    unavailable: bool,
    jobs: HashMap<String, Value>,
    /// Token → the job it made and when (the stand-in's clock).
    tokens: HashMap<String, (String, u64)>,
    /// Seconds added to the real clock (`advance`).
    offset: u64,
    /// CreateJob answers still to lose: the job is made (or the token's job
    /// returned), then the caller gets a 500 instead.
    lose: usize,
    /// Jobs ListJobs does not show (one the lookup cannot find).
    hidden: bool,
    /// How many times each output key was written.
    writes: HashMap<String, usize>,
    /// Every accepted CreateJob body, in order.
    created: Vec<Value>,
    create_calls: usize,
    /// Event deliveries the hook did not take (to be tried again).
    refused: usize,
}

#[derive(Clone)]
struct Ctx {
    inner: Arc<Mutex<Inner>>,
    outputs: Arc<dyn playgate::backends::storage::ObjectStore>,
    /// Where jobs read their source, when they encode it.
    sources: Option<Arc<dyn playgate::backends::storage::ObjectStore>>,
    tree: std::path::PathBuf,
    hook: Arc<Mutex<Option<(String, String)>>>,
    /// While true, a job that has written its output waits before it
    /// reports COMPLETE (GetJob already says COMPLETE).
    hold: tokio::sync::watch::Sender<bool>,
}

pub struct StandIn {
    pub url: String,
    ctx: Ctx,
}

impl StandIn {
    /// Serves on a free loopback port; a job's output is `tree/hls/`
    /// (`master.m3u8` and a directory per rendition), put into `outputs`
    /// (the output bucket).
    pub async fn start(
        outputs: Arc<dyn playgate::backends::storage::ObjectStore>,
        tree: &std::path::Path,
    ) -> StandIn {
        Self::start_with(outputs, None, tree).await
    }

    /// Serves on a free loopback port; a job encodes its source from
    /// `sources` (the source bucket) into `outputs` as its settings say.
    pub async fn start_encoding(
        outputs: Arc<dyn playgate::backends::storage::ObjectStore>,
        sources: Arc<dyn playgate::backends::storage::ObjectStore>,
    ) -> StandIn {
        Self::start_with(outputs, Some(sources), std::path::Path::new("")).await
    }

    async fn start_with(
        outputs: Arc<dyn playgate::backends::storage::ObjectStore>,
        sources: Option<Arc<dyn playgate::backends::storage::ObjectStore>>,
        tree: &std::path::Path,
    ) -> StandIn {
        let ctx = Ctx {
            inner: Arc::new(Mutex::new(Inner {
                behaviour: Behaviour::Events,
                unavailable: false,
                jobs: HashMap::new(),
                tokens: HashMap::new(),
                offset: 0,
                lose: 0,
                hidden: false,
                writes: HashMap::new(),
                created: Vec::new(),
                create_calls: 0,
                refused: 0,
            })),
            outputs,
            sources,
            tree: tree.to_owned(),
            hook: Arc::new(Mutex::new(None)),
            hold: tokio::sync::watch::Sender::new(false),
        };
        let router = axum::Router::new()
            .route("/2017-08-29/jobs", axum::routing::post(create).get(list))
            .route(
                "/2017-08-29/jobs/{id}",
                axum::routing::get(get_job).delete(cancel),
            )
            .with_state(ctx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        StandIn { url, ctx }
    }

    /// Where events go: playgate's hook and its shared secret.
    pub fn send_events_to(&self, hook_url: &str, secret: &str) {
        *self.ctx.hook.lock().unwrap() = Some((hook_url.to_owned(), secret.to_owned()));
    }

    /// While `down`, CreateJob fails as an overloaded MediaConvert does.
    pub fn unavailable(&self, down: bool) {
        self.ctx.inner.lock().unwrap().unavailable = down;
    }

    /// While `held`, finished jobs keep their COMPLETE event to themselves.
    pub fn hold_reports(&self, held: bool) {
        self.ctx.hold.send_replace(held);
    }

    /// Event deliveries the hook refused or did not answer, each tried
    /// again later.
    pub fn refused_deliveries(&self) -> usize {
        self.ctx.inner.lock().unwrap().refused
    }

    pub fn behave(&self, b: Behaviour) {
        self.ctx.inner.lock().unwrap().behaviour = b;
    }

    /// Moves the stand-in's clock forward (the idempotency window).
    pub fn advance(&self, secs: u64) {
        self.ctx.inner.lock().unwrap().offset += secs;
    }

    /// The next `n` CreateJob answers are lost: the job is made, the
    /// caller sees a 500 (and the SDK's retries within the minute get the
    /// same job, and lose that answer too).
    pub fn lose_answers(&self, n: usize) {
        self.ctx.inner.lock().unwrap().lose = n;
    }

    /// While set, ListJobs shows no job.
    pub fn hide_from_list(&self, hidden: bool) {
        self.ctx.inner.lock().unwrap().hidden = hidden;
    }

    /// Output keys written more than once (a second encode overwriting a
    /// first one's objects, which CloudFront caches for a year).
    pub fn overwritten(&self) -> Vec<String> {
        let inner = self.ctx.inner.lock().unwrap();
        let mut keys: Vec<String> = inner
            .writes
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The accepted CreateJob bodies, oldest first.
    pub fn created(&self) -> Vec<Value> {
        self.ctx.inner.lock().unwrap().created.clone()
    }

    /// CreateJob calls, including repeats of a known token.
    pub fn create_calls(&self) -> usize {
        self.ctx.inner.lock().unwrap().create_calls
    }

    /// Runs a CreateJob `body`'s encode at once, as a created job would
    /// (a stand-in made with `start_encoding`): for settings playgate does
    /// not send itself.
    pub async fn encode_body(&self, body: &Value) {
        let sources = self.ctx.sources.clone().expect("made with start_encoding");
        encode(&self.ctx, sources.as_ref(), body).await;
    }

    pub fn job(&self, id: &str) -> Option<Value> {
        self.ctx.inner.lock().unwrap().jobs.get(id).cloned()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", kind)],
        axum::Json(json!({ "message": message })),
    )
        .into_response()
}

/// What a CreateJob body lacks, if anything.
fn missing(body: &Value) -> Option<&'static str> {
    let s = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap_or("");
    if !s("/role").starts_with("arn:aws:iam::") {
        return Some("role must be an IAM role ARN");
    }
    if s("/clientRequestToken").is_empty() || s("/clientRequestToken").len() > 64 {
        return Some("clientRequestToken is required (at most 64 characters)");
    }
    for k in ["app", "asset_id", "job_id"] {
        if body.pointer(&format!("/userMetadata/{k}")).is_none() {
            return Some("userMetadata must carry app, asset_id and job_id");
        }
    }
    if !s("/settings/inputs/0/fileInput").starts_with("s3://") {
        return Some("settings.inputs[0].fileInput must be an s3:// URI");
    }
    if hls_destination(body).is_none() {
        return Some("an HLS output group with an s3:// destination is required");
    }
    None
}

/// `tests/contract/aws_model.py`: the wire body checked against
/// botocore's MediaConvert model (member names, required members, types,
/// enums, ranges); its problems, one per line.
pub async fn against_the_model(operation: &str, body: &Value) -> Result<(), String> {
    against_the_model_of("mediaconvert", operation, body).await
}

/// `against_the_model` for any service botocore publishes (`kms`, …).
pub async fn against_the_model_of(
    service: &str,
    operation: &str,
    body: &Value,
) -> Result<(), String> {
    let (service, operation, body) = (service.to_owned(), operation.to_owned(), body.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/contract/aws_model.py"
            ))
            .args([&service, &operation])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with botocore (scripts/ensure-deps.sh installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "the model check failed to run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(said)
        }
    })
    .await
    .unwrap()
}

fn hls_destination(body: &Value) -> Option<String> {
    body.pointer("/settings/outputGroups")?
        .as_array()?
        .iter()
        .find_map(|g| {
            g.pointer("/outputGroupSettings/hlsGroupSettings/destination")?
                .as_str()
                .map(str::to_owned)
        })
        .filter(|d| d.starts_with("s3://"))
}

async fn create(State(ctx): State<Ctx>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 ") || !auth.contains("/mediaconvert/aws4_request") {
        return error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "requests must be SigV4-signed for mediaconvert",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "malformed JSON",
        );
    };
    if let Some(why) = missing(&body) {
        return error(StatusCode::BAD_REQUEST, "BadRequestException", why);
    }
    // As strict as the service: the body must fit MediaConvert's published
    // model (botocore's, the one the SDKs are generated from).
    if let Err(why) = against_the_model("CreateJob", &body).await {
        return error(StatusCode::BAD_REQUEST, "BadRequestException", &why);
    }
    let token = body["clientRequestToken"].as_str().unwrap_or("").to_owned();
    let (job, behaviour) = {
        let mut inner = ctx.inner.lock().unwrap();
        inner.create_calls += 1;
        if inner.unavailable {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                "The service is unavailable; try again.",
            );
        }
        let now = playgate::clock::Clock::now_epoch(&playgate::clock::SystemClock) + inner.offset;
        let lose = inner.lose > 0;
        inner.lose = inner.lose.saturating_sub(1);
        let lost = || {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                "The answer was lost.",
            )
        };
        if let Some((id, at)) = inner.tokens.get(&token)
            && now < at + 60
        {
            if lose {
                return lost();
            }
            let job = inner.jobs[id].clone();
            return (StatusCode::CREATED, axum::Json(json!({ "job": job }))).into_response();
        }
        let id = format!("1700000000000-{:06}", inner.jobs.len() + 1);
        let job = json!({
            "id": id,
            "arn": format!("arn:aws:mediaconvert:us-east-1:123456789012:jobs/{id}"),
            "status": "SUBMITTED",
            "role": body["role"],
            "userMetadata": body["userMetadata"],
            "jobPercentComplete": 0,
            "createdAt": now,
        });
        inner.tokens.insert(token, (id.clone(), now));
        inner.jobs.insert(id, job.clone());
        inner.created.push(body.clone());
        if lose {
            let behaviour = inner.behaviour;
            drop(inner);
            tokio::spawn(run(ctx.clone(), job, body, behaviour));
            return lost();
        }
        (job, inner.behaviour)
    };
    tokio::spawn(run(ctx, job.clone(), body, behaviour));
    (StatusCode::CREATED, axum::Json(json!({ "job": job }))).into_response()
}

/// Edits a running job; a finished one (canceled meanwhile, say) stays
/// as it is, as MediaConvert's would.
fn set(ctx: &Ctx, id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut inner = ctx.inner.lock().unwrap();
    let job = inner.jobs.get_mut(id).unwrap();
    if !finished(job) {
        edit(job);
    }
    job.clone()
}

fn finished(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("COMPLETE" | "ERROR" | "CANCELED")
    )
}

/// The job's "encode": copy the tree, then tell (or not).
async fn run(ctx: Ctx, job: Value, body: Value, behaviour: Behaviour) {
    let id = job["id"].as_str().unwrap_or("").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let progressing = set(&ctx, &id, |j| j["status"] = json!("PROGRESSING"));
    if finished(&progressing) {
        return; // canceled before it started
    }
    if behaviour == Behaviour::Events {
        event(&ctx, &progressing, "PROGRESSING", json!({})).await;
    }
    if behaviour == Behaviour::Hang {
        return;
    }
    if behaviour == Behaviour::Fail {
        let failed = set(&ctx, &id, |j| {
            j["status"] = json!("ERROR");
            j["errorCode"] = json!(1010);
            j["errorMessage"] = json!("Unsupported input container");
        });
        event(
            &ctx,
            &failed,
            "ERROR",
            json!({"errorCode": 1010, "errorMessage": "Unsupported input container"}),
        )
        .await;
        return;
    }
    let destination = hls_destination(&body).unwrap_or_default();
    // s3://bucket/assets/{id}/v{n}/hls/master → assets/{id}/v{n}
    let key = destination
        .trim_start_matches("s3://")
        .split_once('/')
        .map(|(_, k)| k)
        .unwrap_or("");
    if let Some(sources) = &ctx.sources {
        encode(&ctx, sources.as_ref(), &body).await;
    } else {
        let prefix = key.trim_end_matches("/hls/master");
        crate::tree::put_tree(ctx.outputs.as_ref(), &ctx.tree, "hls", prefix).await;
    }
    if behaviour == Behaviour::Events {
        let half = set(&ctx, &id, |j| j["jobPercentComplete"] = json!(50));
        event(
            &ctx,
            &half,
            "STATUS_UPDATE",
            json!({"jobProgress": {"jobPercentComplete": 50, "currentPhase": "TRANSCODING"}}),
        )
        .await;
    }
    let done = set(&ctx, &id, |j| {
        j["status"] = json!("COMPLETE");
        j["jobPercentComplete"] = json!(100);
    });
    let _ = ctx.hold.subscribe().wait_for(|held| !held).await;
    if behaviour == Behaviour::Events {
        let details = json!({"outputGroupDetails": [{
            "type": "HLS_GROUP",
            "playlistFilePaths": [format!("{destination}.m3u8")],
            "outputDetails": [{"durationInMs": 2000, "videoDetails": {"widthInPx": 1280, "heightInPx": 720}}]
        }]});
        event(&ctx, &done, "COMPLETE", details.clone()).await;
        // EventBridge delivers at least once, in no promised order.
        event(&ctx, &done, "COMPLETE", details).await;
        event(&ctx, &done, "PROGRESSING", json!({})).await;
    }
}

/// The key of an `s3://bucket/key` URI.
fn s3_key(uri: &str) -> String {
    uri.trim_start_matches("s3://")
        .split_once('/')
        .map(|(_, k)| k.to_owned())
        .unwrap_or_default()
}

/// What ffmpeg writes for one HLS output: `index.m3u8` and `seg_NNNNN.ts`.
fn ffmpeg_hls(source: &std::path::Path, out: &std::path::Path, o: &Value, segment: u64) {
    std::fs::create_dir_all(out).unwrap();
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(source);
    if let Some(v) = o.get("videoDescription") {
        let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
        let c = &v["codecSettings"];
        let (settings, codec) = match c["codec"].as_str() {
            Some("H_265") => (&c["h265Settings"], "libx265"),
            _ => (&c["h264Settings"], "libx264"),
        };
        let rate = format!(
            "{}/{}",
            settings["framerateNumerator"], settings["framerateDenominator"]
        );
        let gop = settings["gopSize"].as_f64().unwrap_or(60.0) as u64;
        let bitrate = settings["maxBitrate"].as_u64().unwrap_or(1_000_000);
        cmd.args(["-vf", &format!("scale={w}:{h},fps={rate}")])
            .args(["-c:v", codec, "-preset", "ultrafast"])
            .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
            .args(["-sc_threshold", "0", "-b:v", &bitrate.to_string(), "-an"]);
    } else {
        let bitrate = o
            .pointer("/audioDescriptions/0/codecSettings/aacSettings/bitrate")
            .and_then(Value::as_u64)
            .unwrap_or(96_000);
        cmd.args(["-vn", "-c:a", "aac", "-b:a", &bitrate.to_string()]);
    }
    let run = cmd
        .args(["-f", "hls", "-hls_time", &segment.to_string()])
        .args(["-hls_playlist_type", "vod", "-hls_segment_type", "mpegts"])
        .args(["-start_number", "1", "-hls_segment_filename"])
        .arg(out.join("seg_%05d.ts"))
        .arg(out.join("index.m3u8"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the stand-in's ffmpeg: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Encodes the job's source as its settings say and writes the output
/// with MediaConvert's names (see the module doc).
async fn encode(ctx: &Ctx, sources: &dyn playgate::backends::storage::ObjectStore, body: &Value) {
    use playgate::backends::storage::ObjectKey;
    let input = s3_key(body["settings"]["inputs"][0]["fileInput"].as_str().unwrap());
    let bytes = sources
        .get(&ObjectKey::parse(&input).unwrap())
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    std::fs::write(&source, &bytes).unwrap();
    let groups = body["settings"]["outputGroups"].as_array().unwrap().clone();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for g in &groups {
        let settings = &g["outputGroupSettings"];
        if let Some(hls) = settings.get("hlsGroupSettings") {
            let destination = s3_key(hls["destination"].as_str().unwrap());
            let (dir, base) = destination.rsplit_once('/').unwrap();
            let per_stream = hls["directoryStructure"] == "SUBDIRECTORY_PER_STREAM";
            let segment = hls["segmentLength"].as_u64().unwrap_or(6);
            let key = hls.pointer("/encryption/staticKeyProvider").map(|p| {
                assert_eq!(hls["encryption"]["type"], "STATIC_KEY");
                assert_eq!(hls["encryption"]["encryptionMethod"], "AES128");
                let hex = p["staticKeyValue"].as_str().unwrap();
                let key: Vec<u8> = (0..32)
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                let mut line = format!(
                    "#EXT-X-KEY:METHOD=AES-128,URI=\"{}\"",
                    p["url"].as_str().unwrap()
                );
                if let Some(f) = p["keyFormat"].as_str() {
                    line.push_str(&format!(",KEYFORMAT=\"{f}\""));
                }
                if let Some(v) = p["keyFormatVersions"].as_str() {
                    line.push_str(&format!(",KEYFORMATVERSIONS=\"{v}\""));
                }
                (key, line)
            });
            let mut media = Vec::new();
            let mut variants = Vec::new();
            for (i, o) in g["outputs"].as_array().unwrap().iter().enumerate() {
                let modifier = o["nameModifier"].as_str().unwrap();
                let stream = format!("{base}{modifier}");
                let out = work.path().join(format!("o{i}"));
                let (source, o2) = (source.clone(), o.clone());
                let out2 = out.clone();
                tokio::task::spawn_blocking(move || ffmpeg_hls(&source, &out2, &o2, segment))
                    .await
                    .unwrap();
                let playlist = std::fs::read_to_string(out.join("index.m3u8")).unwrap();
                let mut child = String::new();
                let mut keyed = false;
                for line in playlist.lines() {
                    if let Some((_, key_line)) = &key
                        && line.starts_with("#EXTINF")
                        && !keyed
                    {
                        child.push_str(key_line);
                        child.push('\n');
                        keyed = true;
                    }
                    if let Some(n) = line
                        .strip_prefix("seg_")
                        .and_then(|l| l.strip_suffix(".ts"))
                    {
                        let name = format!("{stream}_{n}.ts");
                        let rel = if per_stream {
                            format!("{stream}/{name}")
                        } else {
                            name
                        };
                        let mut bytes = std::fs::read(out.join(format!("seg_{n}.ts"))).unwrap();
                        if let Some((k, _)) = &key {
                            let mut iv = [0u8; 16];
                            iv[8..].copy_from_slice(&n.parse::<u64>().unwrap().to_be_bytes());
                            bytes = openssl::symm::encrypt(
                                openssl::symm::Cipher::aes_128_cbc(),
                                k,
                                Some(&iv),
                                &bytes,
                            )
                            .unwrap();
                        }
                        files.push((format!("{dir}/{rel}"), bytes));
                        child.push_str(&rel);
                    } else {
                        child.push_str(line);
                    }
                    child.push('\n');
                }
                files.push((format!("{dir}/{stream}.m3u8"), child.into_bytes()));
                let hs = o
                    .pointer("/outputSettings/hlsSettings")
                    .cloned()
                    .unwrap_or_default();
                if o.get("videoDescription").is_none()
                    && hs["audioTrackType"] == "AUDIO_ONLY_VARIANT_STREAM"
                {
                    let rate = o
                        .pointer("/audioDescriptions/0/codecSettings/aacSettings/bitrate")
                        .and_then(Value::as_u64)
                        .unwrap_or(96_000);
                    variants.push(format!(
                        "#EXT-X-STREAM-INF:BANDWIDTH={rate},CODECS=\"mp4a.40.2\"\n{stream}.m3u8\n"
                    ));
                } else if let Some(group) = hs["audioGroupId"].as_str() {
                    media.push(format!(
                        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group}\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{stream}.m3u8\"\n"
                    ));
                } else if let Some(v) = o.get("videoDescription") {
                    let c = &v["codecSettings"];
                    let settings = if c["codec"] == "H_265" {
                        &c["h265Settings"]
                    } else {
                        &c["h264Settings"]
                    };
                    let fps = settings["framerateNumerator"].as_f64().unwrap()
                        / settings["framerateDenominator"].as_f64().unwrap();
                    let audio = hs["audioRenditionSets"].as_str();
                    let video_codec = if c["codec"] == "H_265" {
                        "hvc1.1.6.L120.90"
                    } else {
                        "avc1.64001f"
                    };
                    variants.push(format!(
                        "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE={fps:.3},CODECS=\"{video_codec}{}\"{}\n{stream}.m3u8\n",
                        settings["maxBitrate"].as_u64().unwrap_or(1) + if audio.is_some() { 160_000 } else { 0 },
                        v["width"],
                        v["height"],
                        if audio.is_some() { ",mp4a.40.2" } else { "" },
                        audio.map(|a| format!(",AUDIO=\"{a}\"")).unwrap_or_default()
                    ));
                }
            }
            let master = format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n{}{}",
                media.concat(),
                variants.concat()
            );
            files.push((format!("{destination}.m3u8"), master.into_bytes()));
        } else if let Some(file) = settings.get("fileGroupSettings") {
            let destination = s3_key(file["destination"].as_str().unwrap());
            // "Frame capture will encode the first frame of the output
            // stream, then one frame every framerateDenominator /
            // framerateNumerator seconds" (FrameCaptureSettings).
            let capture = g
                .pointer("/outputs/0/videoDescription/codecSettings/frameCaptureSettings")
                .cloned()
                .unwrap_or_default();
            let every = capture["framerateDenominator"].as_f64().unwrap_or(1.0)
                / capture["framerateNumerator"].as_f64().unwrap_or(1.0);
            let out = work.path().join("thumbs");
            std::fs::create_dir_all(&out).unwrap();
            let select =
                format!("select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{every})'");
            let made = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
                .arg(&source)
                .args([
                    "-vf",
                    &select,
                    "-fps_mode",
                    "vfr",
                    "-start_number",
                    "0",
                    "-f",
                    "image2",
                ])
                .arg(out.join("t.%07d.jpg"))
                .output()
                .unwrap();
            assert!(
                made.status.success(),
                "{}",
                String::from_utf8_lossy(&made.stderr)
            );
            for e in std::fs::read_dir(&out).unwrap() {
                let p = e.unwrap().path();
                let n = p
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim_start_matches("t.")
                    .to_owned();
                files.push((format!("{destination}.{n}"), std::fs::read(&p).unwrap()));
            }
        }
    }
    for (key, bytes) in files {
        *ctx.inner
            .lock()
            .unwrap()
            .writes
            .entry(key.clone())
            .or_default() += 1;
        ctx.outputs
            .put(&ObjectKey::parse(&key).unwrap(), bytes.into())
            .await
            .unwrap();
    }
}

/// Posts an EventBridge "MediaConvert Job State Change" event for `job`.
async fn event(ctx: &Ctx, job: &Value, status: &str, extra: Value) {
    let Some((url, secret)) = ctx.hook.lock().unwrap().clone() else {
        return;
    };
    let mut detail = json!({
        "timestamp": 1_700_000_000_000u64,
        "accountId": "123456789012",
        "queue": "arn:aws:mediaconvert:us-east-1:123456789012:queues/Default",
        "jobId": job["id"],
        "status": status,
        "userMetadata": job["userMetadata"],
    });
    if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    let body = json!({
        "version": "0",
        "id": format!("evt-{}-{status}", job["id"].as_str().unwrap_or("")),
        "detail-type": "MediaConvert Job State Change",
        "source": "aws.mediaconvert",
        "account": "123456789012",
        "time": "2026-11-24T09:00:00Z",
        "region": "us-east-1",
        "resources": [job["arn"]],
        "detail": detail,
    });
    let client = reqwest::Client::new();
    let mut wait = std::time::Duration::from_millis(100);
    for _ in 0..60 {
        let answer = client
            .post(&url)
            .header("x-playgate-hook-secret", &secret)
            .timeout(std::time::Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .map(|r| r.status());
        match answer {
            Ok(s) if !s.is_server_error() && s != StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(s, 200, "the hook took the {status} event");
                return;
            }
            _ => ctx.inner.lock().unwrap().refused += 1,
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(2));
    }
    panic!("the hook never took the {status} event");
}

/// ListJobs: newest first (`order=DESCENDING`, the default), at most
/// `maxResults` (≤ 20) a page, `nextToken` the index to go on from.
async fn list(
    State(ctx): State<Ctx>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let inner = ctx.inner.lock().unwrap();
    let size: usize = q
        .get("maxResults")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=20).contains(n))
        .unwrap_or(20);
    let from: usize = q.get("nextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut jobs: Vec<&Value> = if inner.hidden {
        Vec::new()
    } else {
        inner.jobs.values().collect()
    };
    jobs.sort_by_key(|j| std::cmp::Reverse(j["id"].as_str().unwrap_or("").to_owned()));
    if q.get("order").map(String::as_str) == Some("ASCENDING") {
        jobs.reverse();
    }
    let page: Vec<&Value> = jobs.iter().skip(from).take(size).copied().collect();
    let mut body = json!({ "jobs": page });
    if from + size < jobs.len() {
        body["nextToken"] = (from + size).to_string().into();
    }
    axum::Json(body).into_response()
}

async fn get_job(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    match ctx.inner.lock().unwrap().jobs.get(&id) {
        Some(job) => axum::Json(json!({ "job": job })).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "The job was not found.",
        ),
    }
}

async fn cancel(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    let mut inner = ctx.inner.lock().unwrap();
    let Some(job) = inner.jobs.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "The job was not found.",
        );
    };
    if matches!(
        job["status"].as_str(),
        Some("COMPLETE" | "ERROR" | "CANCELED")
    ) {
        return error(
            StatusCode::CONFLICT,
            "ConflictException",
            "The job has already finished.",
        );
    }
    job["status"] = json!("CANCELED");
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}
