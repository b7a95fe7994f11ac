//! The MediaConvert backend with the real aws-sdk-mediaconvert client
//! against the loopback stand-in (`tests/common/mediaconvert.rs`), and the
//! whole aws-mode pipeline through a running gateway.

use crate::mediaconvert::{Behaviour, StandIn};
use playgate::backends::store::{Job, JobState};
use playgate::engine::ladder::{LadderConfig, Source, plan};
use playgate::pipeline::mediaconvert::MediaConvert;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn aws_config(endpoint: &str) -> playgate::config::AwsConfig {
    playgate::config::AwsConfig {
        region: "us-east-1".into(),
        endpoint_url: None,
        source_bucket: "src-bucket".into(),
        output_bucket: "out-bucket".into(),
        dynamodb_table_prefix: "pg".into(),
        mediaconvert_endpoint: endpoint.into(),
        mediaconvert_role_arn: "arn:aws:iam::123456789012:role/playgate-mediaconvert".into(),
        mediaconvert_queue_arn: Some(
            "arn:aws:mediaconvert:us-east-1:123456789012:queues/Default".into(),
        ),
        cloudfront_distribution_id: "E1".into(),
        sns_topic_arn: None,
    }
}

/// CreateJob's body as the SDK sends it for a 1080p29.97 source with
/// audio (snapshot), the idempotency token, GetJob as an event, and
/// CancelJob's errors.
#[tokio::test]
async fn mediaconvert_client_speaks_the_wire_protocol() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("hls/360p")).unwrap();
    std::fs::write(dir.path().join("hls/master.m3u8"), "#EXTM3U\n").unwrap();
    let outputs: Arc<dyn playgate::backends::storage::ObjectStore> = Arc::new(
        playgate::backends::storage::local::LocalStore::open(&dir.path().join("out")).unwrap(),
    );
    let stand_in = StandIn::start(outputs.clone(), dir.path()).await;
    stand_in.behave(Behaviour::Silent);
    let sdk = crate::moto::moto_sdk(&stand_in.url).await;
    let mc = MediaConvert::new(&sdk, &aws_config(&stand_in.url));
    let source = Source {
        width: 1920,
        height: 1080,
        frame_rate: 30_000.0 / 1001.0,
        bit_rate: Some(8_000_000),
        has_audio: true,
        duration: 60.0,
    };
    let p = plan(&source, &LadderConfig::default()).unwrap();
    let job = Job {
        id: "clip-a2".parse().unwrap(),
        asset_id: "clip".parse().unwrap(),
        attempt: 2,
        version: 3,
        state: JobState::Submitted,
        progress: 0,
        backend_job_id: None,
        error: None,
        created_at: 0,
        submissions: 0,
    };
    let (id, version) = mc
        .submit(&job, "sources/clip/in.mp4", &p, &[])
        .await
        .unwrap();
    assert_eq!(
        version, 3,
        "the version the job writes, from its userMetadata"
    );
    let again = mc
        .submit(&job, "sources/clip/in.mp4", &p, &[])
        .await
        .unwrap();
    assert_eq!(
        (id.clone(), version),
        again,
        "the same request token returns the same job"
    );
    assert_eq!(stand_in.create_calls(), 2);
    let created = stand_in.created();
    assert_eq!(created.len(), 1, "one job was created");
    insta::assert_snapshot!(
        "mediaconvert_create_job_1080p",
        serde_json::to_string_pretty(&created[0]).unwrap()
    );

    // GetJob, as the reconciler sees it, once the job has run.
    let mut event = mc.status(&id).await.unwrap();
    for _ in 0..50 {
        if event.detail.status == "COMPLETE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        event = mc.status(&id).await.unwrap();
    }
    assert_eq!(event.detail.status, "COMPLETE");
    assert_eq!(event.detail.job_id, id);
    assert_eq!(event.detail.user_metadata["job_id"], "clip-a2");
    assert_eq!(event.detail.user_metadata["asset_id"], "clip");
    assert_eq!(
        event.action(),
        playgate::pipeline::events::Action::Complete { playlists: vec![] }
    );
    assert!(
        outputs
            .get(
                &playgate::backends::storage::ObjectKey::parse("assets/clip/v3/hls/master.m3u8")
                    .unwrap()
            )
            .await
            .is_ok(),
        "the stand-in wrote the output under the job's version"
    );
    let finished = mc.cancel(&id).await.unwrap_err();
    assert!(finished.contains("ConflictException"), "{finished}");
    let unknown = mc.status("1700000000000-nope").await.unwrap_err();
    assert!(unknown.contains("NotFoundException"), "{unknown}");
}

/// `GET /v1/jobs/{id}`: the job.
pub(crate) async fn get_job(client: &reqwest::Client, base: &str, id: &str) -> Value {
    client
        .get(format!("{base}/v1/jobs/{id}"))
        .bearer_auth("ingest-key")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["job"]
        .clone()
}

/// Polls `GET /v1/jobs/{id}` until the job ends (or 30 s pass).
pub async fn wait_for_job(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = get_job(client, base, id).await;
        if matches!(
            last["state"].as_str(),
            Some("COMPLETE" | "ERROR" | "CANCELED")
        ) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not end: {last}");
}

pub(crate) async fn asset(client: &reqwest::Client, base: &str, id: &str) -> Value {
    client
        .get(format!("{base}/v1/assets/{id}"))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["asset"]
        .clone()
}

pub(crate) async fn transcode(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let r = client
        .post(format!("{base}/v1/assets/{id}/transcode"))
        .bearer_auth("ingest-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["job"].clone()
}

/// Uploads `file` through a presigned PUT and completes it; the asset id.
pub(crate) async fn upload(client: &reqwest::Client, base: &str, file: &std::path::Path) -> String {
    let bytes = std::fs::read(file).unwrap();
    let plan: Value = client
        .post(format!("{base}/v1/uploads"))
        .bearer_auth("ingest-key")
        .json(&serde_json::json!({"filename": "source.mp4", "content_type": "video/mp4", "size": bytes.len()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = plan["asset_id"].as_str().unwrap().to_owned();
    let up = &plan["upload"];
    let mut put = client.put(up["url"].as_str().unwrap()).body(bytes);
    for (k, v) in up["headers"].as_object().unwrap() {
        if k != "content-length" {
            put = put.header(k, v.as_str().unwrap());
        }
    }
    assert!(put.send().await.unwrap().status().is_success());
    let done = client
        .post(format!("{base}/v1/uploads/{id}/complete"))
        .bearer_auth("ingest-key")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    id
}

/// Everything a gateway in mode aws does with MediaConvert, against the
/// moto server (S3, DynamoDB) and the stand-in: a source that is not
/// video fails before MediaConvert; a real one is planned, created (the
/// body checked), completed by events (duplicates and a late event
/// ignored) and plays; a re-encode whose events are lost is completed by
/// the reconciler; an ERROR keeps the earlier version playing; a cancel
/// stops the MediaConvert job.
pub async fn run_jobs(
    client: &reqwest::Client,
    base: &str,
    stand_in: &StandIn,
    source: &std::path::Path,
    viewer_token: &str,
) -> Result<(), String> {
    let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };

    // SSRF: a playlist whose segments are on a loopback server. The source
    // is read over HTTP(S) here, so an HLS demuxer left to guess would
    // fetch them from the gateway host. It is refused by its first bytes,
    // and the server sees no connection at all.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let knocks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = knocks.clone();
    let listener = tokio::spawn(async move {
        while let Ok((sock, _)) = target.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(sock);
        }
    });
    let ssrf_file = source.with_file_name("ssrf.mp4");
    let padding = format!("#{}\n", "x".repeat(400_000));
    std::fs::write(
        &ssrf_file,
        format!(
            "#EXTM3U\n{padding}#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\nhttp://{target_addr}/latest/meta-data/seg.ts\n#EXT-X-ENDLIST\n"
        ),
    )
    .unwrap();
    let ssrf = upload(client, base, &ssrf_file).await;
    let job = transcode(client, base, &ssrf).await;
    let job = wait_for_job(client, base, job["id"].as_str().unwrap()).await;
    let seen = knocks.load(std::sync::atomic::Ordering::SeqCst);
    listener.abort();
    check(
        seen == 0,
        format!("the SSRF target saw {seen} connection(s)"),
    )?;
    check(
        job["state"] == "ERROR"
            && job["error"]
                .as_str()
                .is_some_and(|e| e.contains("source is not a supported media container")),
        format!("an HLS playlist as the source: {job}"),
    )?;
    check(
        stand_in.created().is_empty(),
        "no MediaConvert job for a playlist".into(),
    )?;

    // Not a media container (its first bytes, read from S3, say so);
    // ffprobe and MediaConvert are never asked.
    let junk_file = source.with_file_name("junk.mp4");
    std::fs::write(&junk_file, vec![7u8; 4096]).unwrap();
    let junk = upload(client, base, &junk_file).await;
    let job = transcode(client, base, &junk).await;
    check(job["state"] == "SUBMITTED", format!("new job: {job}"))?;
    let job = wait_for_job(client, base, job["id"].as_str().unwrap()).await;
    check(job["state"] == "ERROR", format!("junk source: {job}"))?;
    let a = asset(client, base, &junk).await;
    check(
        a["status"] == "failed"
            && a["failure"]
                .as_str()
                .is_some_and(|f| f.contains("source is not a supported media container")),
        format!("the asset says why: {a}"),
    )?;
    check(
        stand_in.created().is_empty(),
        "no MediaConvert job for junk".into(),
    )?;

    // A real source: planned from ffprobe, created, completed by events.
    let id = upload(client, base, source).await;
    let job = transcode(client, base, &id).await;
    let job = wait_for_job(client, base, job["id"].as_str().unwrap()).await;
    check(
        job["state"] == "COMPLETE" && job["progress"] == 100,
        format!("completed by events: {job}"),
    )?;
    let created = stand_in.created();
    let body = created.last().cloned().unwrap_or_default();
    check(
        body["clientRequestToken"] == format!("{id}-a1")
            && body["userMetadata"]["asset_id"] == id.as_str()
            && body["userMetadata"]["app"] == "playgate"
            && job["backend_job_id"].is_string(),
        format!("token and metadata: {body} {job}"),
    )?;
    let input = body
        .pointer("/settings/inputs/0/fileInput")
        .and_then(Value::as_str)
        .unwrap_or("");
    check(
        input.starts_with("s3://pgtest-src/") && input.contains(&id),
        format!("the source: {input}"),
    )?;
    let hls = body
        .pointer("/settings/outputGroups/0/outputGroupSettings/hlsGroupSettings/destination")
        .and_then(Value::as_str)
        .unwrap_or("");
    check(
        hls == format!("s3://pgtest-out/assets/{id}/v1/hls/master"),
        format!("the destination: {hls}"),
    )?;
    let names: Vec<&str> = body
        .pointer("/settings/outputGroups/0/outputs")
        .and_then(Value::as_array)
        .map(|o| {
            o.iter()
                .filter_map(|o| o["nameModifier"].as_str())
                .collect()
        })
        .unwrap_or_default();
    check(
        names == ["_270p", "_360p", "_audio"],
        format!("a 640×360 source is never upscaled: {names:?}"),
    )?;
    let a = asset(client, base, &id).await;
    check(
        a["status"] == "ready" && a["current_version"] == 1,
        format!("ready at v1: {a}"),
    )?;
    let master = client
        .get(format!("{base}/v1/play/{id}/master.m3u8"))
        .bearer_auth(viewer_token)
        .send()
        .await
        .unwrap();
    check(
        master.status() == 200,
        format!("plays: {}", master.status()),
    )?;

    // A re-encode whose events are all lost: the reconciler finds it.
    stand_in.behave(Behaviour::Silent);
    let job = transcode(client, base, &id).await;
    check(job["version"] == 2, format!("the next version: {job}"))?;
    let job = wait_for_job(client, base, job["id"].as_str().unwrap()).await;
    check(job["state"] == "COMPLETE", format!("reconciled: {job}"))?;
    let a = asset(client, base, &id).await;
    check(a["current_version"] == 2, format!("now v2: {a}"))?;

    // MediaConvert fails the next: the asset keeps playing v2 and says why.
    stand_in.behave(Behaviour::Fail);
    let job = transcode(client, base, &id).await;
    let job = wait_for_job(client, base, job["id"].as_str().unwrap()).await;
    check(
        job["state"] == "ERROR" && job["error"].as_str().is_some_and(|e| e.contains("1010")),
        format!("error code kept: {job}"),
    )?;
    let a = asset(client, base, &id).await;
    check(
        a["status"] == "ready" && a["current_version"] == 2 && a["failure"].is_string(),
        format!("still v2: {a}"),
    )?;

    // A cancel reaches MediaConvert.
    stand_in.behave(Behaviour::Hang);
    let job = transcode(client, base, &id).await;
    let jid = job["id"].as_str().unwrap().to_owned();
    let mut backend = Value::Null;
    for _ in 0..100 {
        backend = get_job(client, base, &jid).await["backend_job_id"].clone();
        if backend.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let canceled = client
        .delete(format!("{base}/v1/jobs/{jid}"))
        .bearer_auth("ingest-key")
        .send()
        .await
        .unwrap();
    check(
        canceled.status() == 200,
        format!("cancel: {}", canceled.status()),
    )?;
    let job = wait_for_job(client, base, &jid).await;
    let at_mediaconvert = stand_in
        .job(backend.as_str().unwrap_or(""))
        .map(|j| j["status"].clone());
    check(
        job["state"] == "CANCELED" && at_mediaconvert == Some(Value::from("CANCELED")),
        format!("canceled here and there: {job} {at_mediaconvert:?}"),
    )?;
    let a = asset(client, base, &id).await;
    check(
        a["status"] == "ready" && a["current_version"] == 2,
        format!("back to ready: {a}"),
    )?;

    // MediaConvert unavailable when the job is created: the job waits,
    // SUBMITTED, and completes once MediaConvert is back (the reconciler
    // submits it again with the same token).
    stand_in.behave(Behaviour::Events);
    stand_in.unavailable(true);
    let calls = stand_in.create_calls();
    let job = transcode(client, base, &id).await;
    let jid = job["id"].as_str().unwrap_or_default().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let waiting = get_job(client, base, &jid).await;
    check(
        waiting["state"] == "SUBMITTED" && waiting["backend_job_id"].is_null(),
        format!("waiting for MediaConvert: {waiting}"),
    )?;
    check(
        stand_in.create_calls() > calls,
        "CreateJob was tried".into(),
    )?;
    stand_in.unavailable(false);
    let job = wait_for_job(client, base, &jid).await;
    check(
        job["state"] == "COMPLETE",
        format!("completed once back: {job}"),
    )?;
    // Each CreateJob that failed may have made a job (a lost answer), so
    // each resubmission writes a fresh version: above v2, and the job's.
    let a = asset(client, base, &id).await;
    check(
        a["current_version"].as_u64() > Some(2) && a["current_version"] == job["version"],
        format!("a fresh version above v2, the job's: {a} {job}"),
    )
}

/// A gateway in mode aws against moto and an encoding MediaConvert
/// stand-in (reconciler every second); the stand-in, the gateway, the
/// output store.
async fn encoding_pipeline(
    m: &crate::moto::Moto,
    dir: &std::path::Path,
) -> (
    StandIn,
    crate::gateway::Gateway,
    Arc<dyn playgate::backends::storage::ObjectStore>,
) {
    encoding_pipeline_with(m, dir, "", "", &[]).await
}

/// `encoding_pipeline` with extra `[pipeline]` keys, whole sections and
/// environment.
async fn encoding_pipeline_with(
    m: &crate::moto::Moto,
    dir: &std::path::Path,
    pipeline: &str,
    sections: &str,
    env: &[(&str, &str)],
) -> (
    StandIn,
    crate::gateway::Gateway,
    Arc<dyn playgate::backends::storage::ObjectStore>,
) {
    let sdk = crate::moto::moto_sdk(&m.url).await;
    let (_dynamo, s3) = crate::gateway::store_and_bucket(&sdk).await;
    let sources = playgate::backends::storage::s3::S3Store::new(&sdk, "pgtest-src", true);
    sources.create_bucket().await.unwrap();
    let outputs: Arc<dyn playgate::backends::storage::ObjectStore> = Arc::new(s3);
    let stand_in = StandIn::start_encoding(outputs.clone(), Arc::new(sources)).await;
    let hook = dir.join("hook");
    std::fs::write(&hook, "mediaconvert-hook-secret-123").unwrap();
    let g = crate::gateway::Gateway::start_with_env(
        dir,
        &m.url,
        &format!(
            "[notify]\nmediaconvert_hook_secret_file = \"{}\"\n[pipeline]\nreconcile_after = \"1s\"\nreconcile_every = \"1s\"\n{pipeline}{sections}",
            hook.display()
        ),
        &format!("mediaconvert_endpoint = \"{}\"", stand_in.url),
        env,
    )
    .await;
    stand_in.send_events_to(
        &format!("{}/hooks/mediaconvert", g.base),
        "mediaconvert-hook-secret-123",
    );
    (stand_in, g, outputs)
}

/// MediaConvert honours a reused `ClientRequestToken` "within one minute
/// of a successful request" only. A CreateJob whose answers are all lost,
/// then resubmitted after the minute, must not encode twice into the same
/// keys (CloudFront keeps segments a year): the gateway finds the job with
/// ListJobs and adopts it; when ListJobs cannot show it, the resubmission
/// writes a fresh version, so no object is ever written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_job_answer_never_encodes_twice_into_the_same_keys() {
    let Some(m) = crate::moto::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (stand_in, g, _outputs) = encoding_pipeline(&m, dir.path()).await;
    let client = reqwest::Client::new();
    let source = crate::media::small_source(dir.path(), 2);
    let id = upload(&client, &g.base, &source).await;

    // 1. Found again: one MediaConvert job, adopted, published as v1.
    stand_in.behave(Behaviour::Silent);
    stand_in.lose_answers(10);
    let job = transcode(&client, &g.base, &id).await;
    let jid = job["id"].as_str().unwrap().to_owned();
    // The SDK's retries are over (each lost too); then the minute passes.
    let gave_up = |n: usize| {
        let log = g.log();
        async move { log.matches("MediaConvert unavailable").count() >= n }
    };
    for _ in 0..200 {
        if gave_up(1).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stand_in.advance(61);
    let done = wait_for_job(&client, &g.base, &jid).await;
    assert_eq!(done["state"], "COMPLETE", "{done}\n{}", g.log());
    assert_eq!(
        stand_in.created().len(),
        1,
        "one MediaConvert job\n{}",
        g.log()
    );
    assert_eq!(done["backend_job_id"], "1700000000000-000001", "{done}");
    assert_eq!(done["version"], 1);
    assert!(g.log().contains("adopting it"), "{}", g.log());
    assert_eq!(asset(&client, &g.base, &id).await["current_version"], 1);

    // 2. Not found again: the resubmission writes a fresh version.
    stand_in.lose_answers(10);
    stand_in.hide_from_list(true);
    let job = transcode(&client, &g.base, &id).await;
    let jid = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["version"], 2);
    for _ in 0..200 {
        if gave_up(2).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stand_in.advance(61);
    let done = wait_for_job(&client, &g.base, &jid).await;
    stand_in.hide_from_list(false);
    assert_eq!(done["state"], "COMPLETE", "{done}\n{}", g.log());
    assert_eq!(
        stand_in.created().len(),
        3,
        "the unfound job and the resubmission"
    );
    let version = done["version"].as_u64().unwrap();
    assert!(
        version >= 3,
        "a fresh version, above the unfound job's v2: {done}"
    );
    assert_eq!(
        asset(&client, &g.base, &id).await["current_version"],
        version
    );
    assert_eq!(
        stand_in.overwritten(),
        Vec::<String>::new(),
        "no object written twice"
    );
}

/// A new symmetric KMS key's id.
async fn new_kms_key(sdk: &aws_config::SdkConfig) -> String {
    aws_sdk_kms::Client::new(sdk)
        .create_key()
        .description("playgate content keys")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

/// A `[protection]` section whose content keys are data keys of a new KMS
/// key in moto (its id returned too), with a key-token secret in `dir`.
pub(crate) async fn kms_protection(
    sdk: &aws_config::SdkConfig,
    dir: &std::path::Path,
) -> (String, String) {
    let key = new_kms_key(sdk).await;
    let secret = dir.join("key-token-secret");
    std::fs::write(&secret, "key-token-secret-0123456789abcdef0123").unwrap();
    let section = format!(
        "[protection]\nkms_key_id = \"{key}\"\ntoken_secret_file = \"{}\"\n",
        secret.display()
    );
    (section, key)
}

/// An encrypted job in mode aws (`pipeline.encrypt`, keys as KMS data
/// keys from moto's KMS): CreateJob has a group per rendition, each with
/// its own `StaticKeyProvider` naming the gateway's key URL (the body
/// passes botocore's model, patterns included: the stand-in checks it);
/// the asset keeps only KMS blobs; the master is composed on COMPLETE; the
/// key endpoint releases each key to a tier that has the rendition and
/// refuses a lower tier; the key opens the segments MediaConvert wrote;
/// nothing of a key reaches the gateway's log at trace level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_job_keys_each_rendition_and_plays_through_the_key_endpoint() {
    let Some(m) = crate::moto::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sdk = crate::moto::moto_sdk(&m.url).await;
    let (protection, kms_key) = kms_protection(&sdk, dir.path()).await;
    let (stand_in, g, outputs) = encoding_pipeline_with(
        &m,
        dir.path(),
        "encrypt = true\n",
        &format!("{protection}[tiers.tiny]\nmax_height = 300\n"),
        &[("RUST_LOG", "trace")],
    )
    .await;
    let client = reqwest::Client::new();
    let source = crate::media::small_source(dir.path(), 2);
    let id = upload(&client, &g.base, &source).await;
    let job = transcode(&client, &g.base, &id).await;
    let job = wait_for_job(&client, &g.base, job["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "COMPLETE", "{job}\n{}", g.log());

    // The request: a keyed group per rendition, distinct keys.
    let body = stand_in.created().last().cloned().unwrap();
    let mut static_keys: HashMap<String, (String, String)> = HashMap::new();
    for group in body["settings"]["outputGroups"].as_array().unwrap() {
        let Some(hls) = group.pointer("/outputGroupSettings/hlsGroupSettings") else {
            continue;
        };
        let outputs = group["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 1, "one rendition per group: {group}");
        let rendition = outputs[0]["nameModifier"]
            .as_str()
            .unwrap()
            .trim_start_matches('_');
        assert_eq!(
            hls["destination"],
            format!("s3://pgtest-out/assets/{id}/v1/hls/{rendition}/master").as_str()
        );
        let p = &hls["encryption"]["staticKeyProvider"];
        let url = p["url"].as_str().unwrap().to_owned();
        assert!(
            url.starts_with(&format!("https://play.example.com/v1/keys/{id}/")),
            "{url}"
        );
        static_keys.insert(
            rendition.to_owned(),
            (url, p["staticKeyValue"].as_str().unwrap().to_owned()),
        );
    }
    let mut names: Vec<&str> = static_keys.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["270p", "360p", "audio"]);
    let mut values: Vec<&str> = static_keys.values().map(|(_, k)| k.as_str()).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 3, "a key per rendition");

    // The record holds KMS blobs only; the API names the protected renditions.
    let a = asset(&client, &g.base, &id).await;
    assert_eq!(a["encryption"]["method"], "AES-128", "{a}");
    let dynamo = playgate::backends::store::dynamodb::DynamoStore::new(&sdk, "pgtest-records");
    let record = playgate::backends::store::StoreExt::get_asset(&dynamo, &id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .value;
    let stored = serde_json::to_string(&record).unwrap();
    assert!(
        record
            .content_keys
            .iter()
            .all(|k| k.wrapper == format!("kms:{kms_key}"))
    );
    for (_, hex) in static_keys.values() {
        assert!(
            !stored.to_lowercase().contains(&hex.to_lowercase()),
            "a clear key is stored"
        );
    }

    // The composed master: the audio rendition and both rungs.
    let master = outputs
        .get(
            &playgate::backends::storage::ObjectKey::parse(&format!(
                "assets/{id}/v1/hls/master.m3u8"
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let master = String::from_utf8(master.to_vec()).unwrap();
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"program_audio\"")
            && master.contains("URI=\"audio/master_audio.m3u8\"")
            && master.contains("\n270p/master_270p.m3u8\n")
            && master.contains("\n360p/master_360p.m3u8\n")
            && master.matches("AUDIO=\"program_audio\"").count() == 2,
        "{master}"
    );

    // The key endpoint: the cookie of a free master opens all three; the
    // tiny tier (270p) is refused 360p's.
    let cookie = |tier: &str| {
        let (client, base, token) = (client.clone(), g.base.clone(), g.viewer_token(tier));
        let id = id.clone();
        async move {
            let r = client
                .get(format!("{base}/v1/play/{id}/master.m3u8"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("playgate-keys="))
                .expect("a key cookie")
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        }
    };
    let (free, tiny) = (cookie("free").await, cookie("tiny").await);
    let fetch = |url: &str, cookie: &str| {
        let path = url
            .strip_prefix("https://play.example.com")
            .unwrap()
            .to_owned();
        client
            .get(format!("{}{path}", g.base))
            .header("cookie", cookie.to_owned())
            .send()
    };
    for (rendition, (url, hex)) in &static_keys {
        let r = fetch(url, &free).await.unwrap();
        assert_eq!(r.status(), 200, "{rendition}");
        let got: String = r
            .bytes()
            .await
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            &got,
            &hex.to_lowercase(),
            "{rendition}: the key MediaConvert used"
        );
    }
    let (url_360, hex_360) = &static_keys["360p"];
    assert_eq!(fetch(url_360, &tiny).await.unwrap().status(), 403);
    assert_eq!(
        fetch(&static_keys["270p"].0, &tiny).await.unwrap().status(),
        200
    );

    // The key opens what MediaConvert wrote: the first segment is TS.
    let seg = outputs
        .get(
            &playgate::backends::storage::ObjectKey::parse(&format!(
                "assets/{id}/v1/hls/360p/master_360p_00001.ts"
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let key: Vec<u8> = (0..32)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_360[i..i + 2], 16).unwrap())
        .collect();
    assert_ne!(seg.first(), Some(&0x47), "stored encrypted");
    let mut iv = [0u8; 16];
    iv[15] = 1;
    let clear =
        playgate::protect::encrypt::decrypt_segment(&key.try_into().unwrap(), &iv, &seg).unwrap();
    assert_eq!(clear.first(), Some(&0x47), "MPEG-TS sync byte");

    // Trace logging was on; no key in any spelling reached the log.
    let log = g.log();
    assert!(log.contains("TRACE"), "trace logging was on");
    for (_, hex) in static_keys.values() {
        use base64::Engine;
        let raw: Vec<u8> = (0..32)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        for spelled in [
            hex.to_lowercase(),
            hex.to_uppercase(),
            base64::engine::general_purpose::STANDARD.encode(&raw),
        ] {
            assert!(
                !log.contains(&spelled),
                "a content key is in the gateway's log"
            );
        }
    }
}

/// The KMS calls `protect::kms::Kms` makes, as the real aws-sdk-kms client
/// sends them, held to KMS's model as botocore publishes it (member names,
/// required members, `NumberOfBytes` in 1–1024, …) by a loopback proxy in
/// front of moto's KMS; and KMS as its guide says: "The encryption context
/// is cryptographically bound to the ciphertext so that the same
/// encryption context is required to decrypt the data" (KMS Developer
/// Guide, "Encryption context") — moto refuses another context too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_calls_fit_the_service_model_and_bind_their_context() {
    use playgate::protect::{KeyContext, KeyProvider};
    let Some(m) = crate::moto::moto() else { return };
    type Verdicts = Vec<(String, Result<(), String>)>;
    let seen: Arc<std::sync::Mutex<Verdicts>> = Default::default();
    let (moto, log) = (m.url.clone(), seen.clone());
    let proxy = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (moto, log) = (moto.clone(), log.clone());
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let op = target.rsplit('.').next().unwrap_or("").to_owned();
                let json: Value = serde_json::from_slice(&body).unwrap_or_default();
                let verdict = crate::mediaconvert::against_the_model_of("kms", &op, &json).await;
                log.lock().unwrap().push((op, verdict));
                let mut req = reqwest::Client::new().post(&moto).body(body);
                for (k, v) in &headers {
                    if !matches!(k.as_str(), "host" | "content-length") {
                        req = req.header(k, v);
                    }
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let mut out = axum::http::HeaderMap::new();
                for (k, v) in resp.headers() {
                    if !matches!(
                        k.as_str(),
                        "content-length" | "transfer-encoding" | "connection"
                    ) {
                        out.insert(k, v.clone());
                    }
                }
                (status, out, resp.bytes().await.unwrap())
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    let sdk = crate::moto::moto_sdk(&url).await;
    let kms = playgate::protect::kms::Kms::new(&sdk, new_kms_key(&sdk).await);
    let asset = playgate::domain::AssetId::parse("a").unwrap();
    let cx = KeyContext {
        asset: &asset,
        key_id: "0123456789abcdef0123456789abcdef",
        rendition: "720p",
    };
    let (clear, wrapped) = kms.generate(cx).await.unwrap();
    assert!(!wrapped.windows(16).any(|w| w == clear.expose()));
    let back = kms.unwrap(&wrapped, cx).await.unwrap();
    assert_eq!(back.expose(), clear.expose());
    let other = KeyContext {
        rendition: "360p",
        ..cx
    };
    assert!(
        kms.unwrap(&wrapped, other).await.is_err(),
        "another rendition's context does not decrypt"
    );
    let seen = seen.lock().unwrap().clone();
    let ops: Vec<&str> = seen.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(ops, ["CreateKey", "GenerateDataKey", "Decrypt", "Decrypt"]);
    for (op, verdict) in &seen {
        assert!(
            verdict.is_ok(),
            "{op} does not fit the KMS model: {verdict:?}"
        );
    }
}
