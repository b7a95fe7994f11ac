//! Backend contract tests, written once. Each suite takes any `Store` or
//! `ObjectStore`; the local backends run it here, and the AWS backends
//! (DynamoDB, S3 against the moto server) call the same functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/cloudfront_policies.rs"]
mod cloudfront_policies;
mod deploy;
#[path = "../common/edge.rs"]
mod edge;
mod faults;
#[path = "../common/front.rs"]
mod front;
mod gateway;
mod jobs;
#[path = "../common/media.rs"]
mod media;
#[path = "../common/mediaconvert.rs"]
mod mediaconvert;
#[path = "../common/moto.rs"]
mod moto;
mod objects;
mod playback;
mod replicas;
mod store;
#[path = "../common/tools.rs"]
mod tools;
#[path = "../common/tree.rs"]
mod tree;
mod under_load;

use moto::{moto, moto_sdk};

use playgate::backends::storage::local::LocalStore;
use playgate::backends::store::sqlite::SqliteStore;
use std::sync::Arc;

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(&dir.path().join("db/playgate.db")).unwrap());
    store::run_all(s).await;
}

#[tokio::test]
async fn sqlite_store_survives_reopen_and_is_shared_between_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("playgate.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    store::two_handles_see_each_other(a.clone(), b).await;
    drop(a);
    let reopened = SqliteStore::open(&path).unwrap();
    use playgate::backends::store::Store;
    assert!(
        reopened
            .get(playgate::backends::store::Kind::Tier, "shared")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn local_object_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(LocalStore::open(dir.path()).unwrap());
    objects::run_all(s).await;
}

#[tokio::test]
async fn local_object_store_never_leaves_temporary_files() {
    use playgate::backends::storage::{ObjectKey, ObjectStore};
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(dir.path()).unwrap();
    let key = ObjectKey::parse("assets/a/v1/hls/master.m3u8").unwrap();
    for i in 0..20 {
        s.put(&key, bytes::Bytes::from(format!("#EXTM3U\n# {i}\n")))
            .await
            .unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("assets/a/v1/hls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["master.m3u8"]);
}

#[tokio::test]
async fn aws_backends_meet_the_contract_against_moto() {
    let Some(m) = moto() else { return };
    let sdk = moto_sdk(&m.url).await;
    let dynamo = playgate::backends::store::dynamodb::DynamoStore::new(&sdk, "playgate-contract");
    dynamo.create_table().await.unwrap();
    dynamo.create_table().await.unwrap();
    store::run_all(Arc::new(dynamo)).await;
    let s3 = playgate::backends::storage::s3::S3Store::new(&sdk, "playgate-contract", true);
    s3.create_bucket().await.unwrap();
    objects::run_all(Arc::new(s3)).await;
}

/// `playgate serve` in mode aws against the moto server: DynamoDB for
/// state, S3 for outputs, CloudFront cookies on a shared domain; uploads
/// say clearly that they are not there yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_mode_serves_playback_from_dynamodb_and_s3() {
    let Some(m) = moto() else { return };
    let sdk = moto_sdk(&m.url).await;
    let (dynamo, s3) = gateway::store_and_bucket(&sdk).await;
    let sources = playgate::backends::storage::s3::S3Uploads::new(&sdk, "pgtest-src", true);
    sources.create_bucket().await.unwrap();
    let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
    let distribution = make_distribution(&cloudfront).await;
    let sns = SnsInbox::start(&sdk).await;

    let dir = tempfile::tempdir().unwrap();
    let clip = gateway::publish_clip(&dynamo, &s3, dir.path()).await;
    let job = job_awaiting_mediaconvert(&dynamo, &s3, &clip).await;
    let stand_in = mediaconvert::StandIn::start_encoding(
        Arc::new(playgate::backends::storage::s3::S3Store::new(
            &sdk,
            "pgtest-out",
            true,
        )),
        Arc::new(playgate::backends::storage::s3::S3Store::new(
            &sdk,
            "pgtest-src",
            true,
        )),
    )
    .await;
    let source = media::small_source(dir.path(), 2);
    let hook_secret = dir.path().join("hook-secret");
    std::fs::write(&hook_secret, "mediaconvert-hook-secret-123").unwrap();

    let gateway = gateway::Gateway::start(
        dir.path(),
        &m.url,
        &format!(
            r#"[notify]
mediaconvert_hook_secret_file = "{hook_secret}"
[pipeline]
multipart_threshold = "6MiB"
part_size = "5MiB"
reconcile_after = "1s"
reconcile_every = "1s"
"#,
            hook_secret = hook_secret.display()
        ),
        &format!(
            "mediaconvert_endpoint = \"{}\"\ncloudfront_distribution_id = \"{distribution}\"\nsns_topic_arn = \"{}\"",
            stand_in.url, sns.topic
        ),
    )
    .await;
    let base = gateway.base.clone();
    let client = reqwest::Client::new();
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    let token = gateway.viewer_token("free");
    let master = client
        .get(format!("{base}/v1/play/clip/master.m3u8"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let uploads = direct_uploads(&client, &base).await;
    let hooked = complete_by_hook(&client, &base, &job).await;
    let note = sns.next(std::time::Duration::from_secs(10)).await;
    stand_in.send_events_to(
        &format!("{base}/hooks/mediaconvert"),
        "mediaconvert-hook-secret-123",
    );
    let jobs = jobs::run_jobs(&client, &base, &stand_in, &source, &token).await;
    let deleted = client
        .delete(format!("{base}/v1/assets/clip"))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap();
    let after_delete = client
        .get(format!("{base}/v1/play/clip/master.m3u8"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    assert_eq!(master.status(), 200);
    let cookies: Vec<String> = master
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 9, "360p, 480p and audio: {cookies:?}");
    assert!(cookies.iter().all(
        |c| c.contains("; Domain=example.com; Path=/assets/clip/v1/hls/")
            && c.contains("; Secure; HttpOnly; SameSite=None")
    ));
    let body = master.text().await.unwrap();
    assert!(
        body.contains("https://cdn.example.com/assets/clip/v1/hls/480p/index.m3u8"),
        "{body}"
    );
    assert!(!body.contains("720p"), "{body}");
    uploads.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hooked, (200, true), "the COMPLETE event applied");
    if let Err(e) = jobs {
        panic!("{e}\n--- gateway log ---\n{}", gateway.log());
    }
    assert_eq!(note["status"], "COMPLETE", "{note}");
    assert_eq!(note["asset_id"], "clip2");
    assert_eq!(note["job_id"], "clip2-a1");
    assert_eq!(note["playback_path"], "/v1/play/clip2/master.m3u8");
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        after_delete.status(),
        404,
        "a deleted asset stops playing at once"
    );
    let invalidations = cloudfront
        .list_invalidations()
        .distribution_id(&distribution)
        .send()
        .await
        .unwrap();
    let list = invalidations.invalidation_list.unwrap();
    assert_eq!(list.quantity, 1, "one invalidation for the delete");
    let inv = cloudfront
        .get_invalidation()
        .distribution_id(&distribution)
        .id(&list.items.unwrap()[0].id)
        .send()
        .await
        .unwrap()
        .invalidation
        .unwrap();
    let paths = inv
        .invalidation_batch
        .unwrap()
        .paths
        .unwrap()
        .items
        .unwrap();
    assert_eq!(paths, ["/assets/clip/*"], "one wildcard path");
}

/// Direct-to-S3 uploads through a gateway in mode aws: a presigned PUT and
/// a two-part multipart plan, each completed. Returns what went wrong, so
/// the caller can stop the server before failing.
async fn direct_uploads(client: &reqwest::Client, base: &str) -> Result<(), String> {
    let post = |path: String, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth("ingest-key")
            .json(&body)
            .send()
    };
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
    let send_part = |p: &serde_json::Value, bytes: Vec<u8>| {
        let mut req = client
            .put(p["url"].as_str().unwrap_or_default())
            .body(bytes);
        for (k, v) in p["headers"].as_object().into_iter().flatten() {
            if k != "content-length" {
                req = req.header(k, v.as_str().unwrap_or_default());
            }
        }
        req.send()
    };
    // One presigned PUT.
    let small = vec![7u8; 1000];
    let r = post(
        "/v1/uploads".into(),
        serde_json::json!({"filename": "s.mp4", "content_type": "video/mp4", "size": 1000}),
    )
    .await
    .map_err(|e| e.to_string())?;
    check(r.status() == 201, "create small upload")?;
    let plan: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let id = plan["asset_id"].as_str().unwrap_or_default().to_owned();
    let up = &plan["upload"];
    check(
        up["method"] == "PUT" && up["url"].as_str().unwrap_or("").contains("X-Amz-Signature"),
        "a presigned PUT",
    )?;
    // S3 refuses a body whose type or length differs from what is signed
    // (the moto server does not check signatures, so check what is signed).
    let url = up["url"].as_str().unwrap_or_default();
    let signed = url
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .unwrap_or_default()
        .replace("%3B", ";");
    check(
        signed.split(';').any(|h| h == "content-length")
            && signed.split(';').any(|h| h == "content-type"),
        &format!("type and length are signed: {signed}"),
    )?;
    let put = send_part(up, small).await.map_err(|e| e.to_string())?;
    check(
        put.status().is_success(),
        &format!("presigned PUT: {}", put.status()),
    )?;
    let done = post(format!("/v1/uploads/{id}/complete"), serde_json::json!({}))
        .await
        .map_err(|e| e.to_string())?;
    check(
        done.status() == 200,
        &format!("complete small: {}", done.status()),
    )?;
    let again = post(format!("/v1/uploads/{id}/complete"), serde_json::json!({}))
        .await
        .map_err(|e| e.to_string())?;
    check(again.status() == 409, "completing twice")?;

    // A multipart plan: 7 MiB in a 5 MiB and a 2 MiB part.
    let size = 7 << 20;
    let r = post(
        "/v1/uploads".into(),
        serde_json::json!({"filename": "big.mp4", "content_type": "video/mp4", "size": size}),
    )
    .await
    .map_err(|e| e.to_string())?;
    let plan: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let big = plan["asset_id"].as_str().unwrap_or_default().to_owned();
    let parts = plan["upload"]["parts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check(
        plan["upload"]["method"] == "MULTIPART" && parts.len() == 2,
        "a two-part plan",
    )?;
    let mut etags = Vec::new();
    for p in &parts {
        let n = p["size"].as_u64().unwrap_or(0) as usize;
        let r = send_part(p, vec![1u8; n])
            .await
            .map_err(|e| e.to_string())?;
        check(r.status().is_success(), &format!("part: {}", r.status()))?;
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        etags.push(serde_json::json!({"part_number": p["part_number"], "etag": etag}));
    }
    let done = post(
        format!("/v1/uploads/{big}/complete"),
        serde_json::json!({"parts": etags}),
    )
    .await
    .map_err(|e| e.to_string())?;
    if done.status() != 200 {
        let status = done.status();
        return Err(format!(
            "complete multipart: {status}: {}",
            done.text().await.unwrap_or_default()
        ));
    }
    let body: serde_json::Value = done.json().await.map_err(|e| e.to_string())?;
    check(body["size"] == size, "the whole object arrived")?;

    Ok(())
}

/// A CloudFront distribution in the moto server; its id.
async fn make_distribution(cf: &aws_sdk_cloudfront::Client) -> String {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("outputs")
        .domain_name("pgtest-out.s3.us-east-1.amazonaws.com")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference("playgate-contract")
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("outputs")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .comment("playgate contract test")
        .enabled(true)
        .build()
        .unwrap();
    cf.create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap()
        .distribution
        .unwrap()
        .id
}

/// An SNS topic in the moto server whose notifications arrive at a
/// loopback HTTP subscriber.
struct SnsInbox {
    topic: String,
    rx: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
}

impl SnsInbox {
    async fn start(sdk: &aws_config::SdkConfig) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let _ = tx.send(v);
                }
                "ok"
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client = aws_sdk_sns::Client::new(sdk);
        let topic = client
            .create_topic()
            .name("playgate-jobs")
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        client
            .subscribe()
            .topic_arn(&topic)
            .protocol("http")
            .endpoint(format!("http://{addr}/sns"))
            .send()
            .await
            .unwrap();
        SnsInbox { topic, rx }
    }

    /// The next notification's message, parsed.
    async fn next(mut self, wait: std::time::Duration) -> serde_json::Value {
        let envelope = tokio::time::timeout(wait, self.rx.recv())
            .await
            .expect("no SNS notification arrived")
            .unwrap();
        assert_eq!(envelope["Type"], "Notification", "{envelope}");
        serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
    }
}

/// Asset `clip2` encoding as job `clip2-a1` (v1), its output already in
/// the bucket as MediaConvert would leave it.
pub(crate) async fn job_awaiting_mediaconvert(
    dynamo: &playgate::backends::store::dynamodb::DynamoStore,
    s3: &playgate::backends::storage::s3::S3Store,
    clip: &std::path::Path,
) -> playgate::backends::store::Job {
    use playgate::backends::store::{Asset, AssetStatus, Expect, Job, JobState, StoreExt};
    let asset = Asset {
        id: "clip2".parse().unwrap(),
        title: None,
        min_tier: None,
        status: AssetStatus::Processing,
        current_version: None,
        renditions: vec![],
        thumbnails: Vec::new(),
        failure: None,
        playability: None,
        source: None,
        content_keys: Vec::new(),
        created_at: 0,
    };
    dynamo.put_asset(&asset, Expect::Absent).await.unwrap();
    let job = Job {
        id: "clip2-a1".parse().unwrap(),
        asset_id: asset.id.clone(),
        attempt: 1,
        version: 1,
        state: JobState::Submitted,
        progress: 0,
        backend_job_id: Some("1700000000000-mc".into()),
        error: None,
        created_at: 0,
        submissions: 0,
    };
    dynamo.put_job(&job, Expect::Absent).await.unwrap();
    tree::put_tree(s3, clip, "hls", "assets/clip2/v1").await;
    job
}

/// MediaConvert's COMPLETE event for `job` through the hook: the status
/// and whether it was applied.
pub(crate) async fn complete_by_hook(
    client: &reqwest::Client,
    base: &str,
    job: &playgate::backends::store::Job,
) -> (u16, bool) {
    let event = serde_json::json!({
        "version": "0", "id": "ev-1", "detail-type": "MediaConvert Job State Change",
        "source": "aws.mediaconvert", "account": "111122223333", "region": "us-east-1",
        "time": "2026-11-24T07:00:00Z", "resources": [],
        "detail": {
            "timestamp": 1, "accountId": "111122223333", "queue": "q",
            "jobId": job.backend_job_id, "status": "COMPLETE",
            "userMetadata": {"job_id": job.id, "asset_id": job.asset_id, "app": "playgate"},
            "outputGroupDetails": [{"type": "HLS_GROUP",
                "playlistFilePaths": ["s3://pgtest-out/assets/clip2/v1/hls/master.m3u8"]}]
        }
    });
    let r = client
        .post(format!("{base}/hooks/mediaconvert"))
        .header("x-playgate-hook-secret", "mediaconvert-hook-secret-123")
        .json(&event)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (status, body["applied"] == true)
}
