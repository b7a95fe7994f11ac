//! Faults under a gateway in mode aws: the store (DynamoDB) and the
//! origin (S3) go away when the moto server is stopped.

use crate::gateway::Gateway;
use serde_json::Value;

/// DynamoDB and S3 stop answering. An asset that was being played keeps
/// playing from the caches (its record, the tier rules, the playlists)
/// for `cache.stale_if_error`; anything that needs the store answers a
/// 503 problem that names no internals; `/readyz` says the store failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_keeps_cached_playback_and_refuses_writes_cleanly() {
    let Some(m) = crate::moto::moto() else { return };
    let sdk = crate::moto::moto_sdk(&m.url).await;
    let (dynamo, s3) = crate::gateway::store_and_bucket(&sdk).await;
    let dir = tempfile::tempdir().unwrap();
    crate::gateway::publish_clip(&dynamo, &s3, dir.path()).await;
    let g = Gateway::start_with_env(
        dir.path(),
        &m.url,
        "[cache]\nasset_ttl = \"1s\"\norigin_fresh = \"1s\"\nstale_if_error = \"1m\"\n",
        "",
        &[("PLAYGATE__SERVER__TIER_CACHE_TTL", "1s")],
    )
    .await;
    let c = reqwest::Client::new();
    let token = g.viewer_token("free");
    let master = |c: &reqwest::Client| {
        c.get(format!("{}/v1/play/clip/master.m3u8", g.base))
            .bearer_auth(&token)
            .send()
    };
    let warm = master(&c).await.unwrap();
    assert_eq!(warm.status(), 200);
    let warm_cookies = warm.headers().get_all("set-cookie").iter().count();

    drop(m);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let t = std::time::Instant::now();
    let during = master(&c).await.unwrap();
    let first = t.elapsed();
    let status = during.status();
    let cookies = during.headers().get_all("set-cookie").iter().count();
    let body = during.text().await.unwrap();
    assert_eq!(status, 200, "cached playback goes on: {body}\n{}", g.log());
    assert_eq!(cookies, warm_cookies);
    assert!(
        body.contains("480p/index.m3u8") && !body.contains("720p"),
        "{body}"
    );
    // The first request waits for the store and origin to fail; the next
    // ones are served from what that left behind (they only wait when a
    // 1 s cache entry here has lapsed).
    let t = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(master(&c).await.unwrap().status(), 200);
    }
    let next = t.elapsed() / 5;
    eprintln!("during the outage: first master {first:?}, then {next:?} each");
    assert!(next < first, "first {first:?}, then {next:?}");

    let problem = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = r.json().await.unwrap();
        (status, ct, body)
    };
    let tier = c
        .put(format!("{}/v1/tiers/free", g.base))
        .bearer_auth("admin-key")
        .json(&serde_json::json!({"max_height": 720}))
        .send()
        .await
        .unwrap();
    let upload = c
        .post(format!("{}/v1/uploads", g.base))
        .bearer_auth("ingest-key")
        .json(&serde_json::json!({"filename": "a.mp4", "content_type": "video/mp4", "size": 10}))
        .send()
        .await
        .unwrap();
    let unknown = c
        .get(format!("{}/v1/play/never-seen/master.m3u8", g.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    for (what, r) in [
        ("tier write", tier),
        ("upload", upload),
        ("uncached asset", unknown),
    ] {
        let (status, ct, body) = problem(r).await;
        assert_eq!(status, 503, "{what}: {body}");
        assert_eq!(ct, "application/problem+json", "{what}");
        let text = body.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("pgtest"),
            "{what}: no internals in {text}"
        );
    }
    let (status, _, ready) =
        problem(c.get(format!("{}/readyz", g.base)).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(ready["checks"]["store"], "failed", "{ready}");
}

/// S3 fails (503 SlowDown) just when MediaConvert's COMPLETE arrives: the
/// hook answers 503 so EventBridge delivers again, and the job is not
/// failed; the next delivery, with S3 back, publishes the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_bucket_failing_at_complete_loses_no_job() {
    let Some(m) = crate::moto::moto() else { return };
    let proxy = crate::cloudfront_policies::PolicyProxy::start(&m.url).await;
    let sdk = crate::moto::moto_sdk(&m.url).await;
    let (dynamo, s3) = crate::gateway::store_and_bucket(&sdk).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip");
    crate::media::make_clip(&clip, 2);
    let job = crate::job_awaiting_mediaconvert(&dynamo, &s3, &clip).await;
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "mediaconvert-hook-secret-123").unwrap();
    let g = Gateway::start(
        dir.path(),
        &proxy.url,
        &format!(
            "[notify]\nmediaconvert_hook_secret_file = \"{}\"\n",
            secret.display()
        ),
        "",
    )
    .await;
    let c = reqwest::Client::new();

    proxy.fail_under(Some("/pgtest-out/"));
    let first = crate::complete_by_hook(&c, &g.base, &job).await;
    assert_eq!(
        first,
        (503, false),
        "EventBridge must deliver again\n{}",
        g.log()
    );
    assert_eq!(
        crate::jobs::get_job(&c, &g.base, "clip2-a1").await["state"],
        "SUBMITTED",
        "not failed"
    );

    proxy.fail_under(None);
    let again = crate::complete_by_hook(&c, &g.base, &job).await;
    assert_eq!(again, (200, true), "{}", g.log());
    assert_eq!(
        crate::jobs::get_job(&c, &g.base, "clip2-a1").await["state"],
        "COMPLETE"
    );
    let master = c
        .get(format!("{}/v1/play/clip2/master.m3u8", g.base))
        .bearer_auth(g.viewer_token("free"))
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
}

/// What a pipeline test in mode aws needs: the moto server's table and
/// buckets through `endpoint`, a MediaConvert stand-in whose jobs leave a
/// 2 s ladder in the output bucket and report to the gateway's hook, a
/// 640×360 source, and the gateway (reconciling after `reconcile_after`).
pub(crate) struct Pipeline {
    /// Keeps the keys, clip and config until the test ends.
    _dir: tempfile::TempDir,
    pub stand_in: crate::mediaconvert::StandIn,
    pub source: std::path::PathBuf,
    pub g: Gateway,
}

impl Pipeline {
    pub(crate) async fn start(
        dir: tempfile::TempDir,
        endpoint: &str,
        reconcile_after: &str,
    ) -> Pipeline {
        let sdk = crate::moto::moto_sdk(endpoint).await;
        crate::gateway::store_and_bucket(&sdk).await;
        playgate::backends::storage::s3::S3Uploads::new(&sdk, "pgtest-src", true)
            .create_bucket()
            .await
            .unwrap();
        let clip = dir.path().join("clip");
        crate::media::make_clip(&clip, 2);
        let outputs = playgate::backends::storage::s3::S3Store::new(&sdk, "pgtest-out", true);
        let stand_in =
            crate::mediaconvert::StandIn::start(std::sync::Arc::new(outputs), &clip).await;
        let source = crate::media::small_source(dir.path(), 2);
        let secret = dir.path().join("hook-secret");
        std::fs::write(&secret, "mediaconvert-hook-secret-123").unwrap();
        let g = Gateway::start(
            dir.path(),
            endpoint,
            &format!(
                "[notify]\nmediaconvert_hook_secret_file = \"{}\"\n[pipeline]\nreconcile_after = \"{reconcile_after}\"\nreconcile_every = \"1s\"\n",
                secret.display()
            ),
            &format!("mediaconvert_endpoint = \"{}\"", stand_in.url),
        )
        .await;
        stand_in.send_events_to(
            &format!("{}/hooks/mediaconvert", g.base),
            "mediaconvert-hook-secret-123",
        );
        Pipeline {
            _dir: dir,
            stand_in,
            source,
            g,
        }
    }

    /// The job's MediaConvert id, once it has one.
    pub(crate) async fn backend_id(&self, c: &reqwest::Client, job: &str) -> String {
        for _ in 0..100 {
            let j = crate::jobs::get_job(c, &self.g.base, job).await;
            if let Some(id) = j["backend_job_id"].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{job} never reached MediaConvert\n{}", self.g.log());
    }
}

/// Polls `what` every 50 ms for up to `secs` seconds.
pub(crate) async fn eventually(secs: u64, what: impl Fn() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if what() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// The moto server (S3 and DynamoDB) is killed twice while jobs are in
/// flight, and comes back as a new process with the same state (the front
/// the gateway reaches it through plays its record of writes into the new
/// one first; `tests/common/front.rs`).
///
/// 1. MediaConvert finishes while the store is away: the hook answers 503
///    to every COMPLETE delivery, MediaConvert's events are delivered again
///    with backoff, and the job completes and plays once the store is back.
/// 2. A job waits for MediaConvert (CreateJob failed) when the store goes:
///    the reconciler cannot list jobs, keeps going, and submits the job
///    once the store is back; it completes as the next version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_killed_mid_pipeline_jobs_complete_when_it_returns() {
    let Some(m) = crate::moto::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let front = crate::front::Front::start(&m.url).await;
    let p = Pipeline::start(dir, &front.url, "5s").await;
    let (g, stand_in) = (&p.g, &p.stand_in);
    let c = reqwest::Client::new();

    // 1. The output is written and MediaConvert says COMPLETE to GetJob;
    //    then moto dies before the event is delivered.
    stand_in.hold_reports(true);
    let id = crate::jobs::upload(&c, &g.base, &p.source).await;
    let job = crate::jobs::transcode(&c, &g.base, &id).await;
    let jid = job["id"].as_str().unwrap().to_owned();
    let backend = p.backend_id(&c, &jid).await;
    assert!(
        eventually(20, || stand_in
            .job(&backend)
            .is_some_and(|j| j["status"] == "COMPLETE"))
        .await,
        "MediaConvert finished"
    );
    drop(m);
    front.cut();
    stand_in.hold_reports(false);
    assert!(
        eventually(20, || stand_in.refused_deliveries() >= 3).await,
        "the hook refuses COMPLETE while the store is away, and it is delivered again\n{}",
        g.log()
    );
    let during = c
        .get(format!("{}/v1/jobs/{jid}", g.base))
        .bearer_auth("ingest-key")
        .send()
        .await
        .unwrap();
    assert_eq!(during.status(), 503);
    let m = crate::moto::moto().unwrap();
    front.restart(&m.url).await;
    let done = crate::jobs::wait_for_job(&c, &g.base, &jid).await;
    assert_eq!(done["state"], "COMPLETE", "{done}\n{}", g.log());
    let a = crate::jobs::asset(&c, &g.base, &id).await;
    assert_eq!(a["status"], "ready", "{a}");
    assert_eq!(a["current_version"], 1, "{a}");
    let master = c
        .get(format!("{}/v1/play/{id}/master.m3u8", g.base))
        .bearer_auth(g.viewer_token("free"))
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
    let body = master.text().await.unwrap();
    assert!(body.contains("/v1/hls/480p/index.m3u8"), "{body}");

    // 2. CreateJob fails, so the job waits SUBMITTED; then moto dies.
    stand_in.unavailable(true);
    let calls = stand_in.create_calls();
    let job = crate::jobs::transcode(&c, &g.base, &id).await;
    let jid = job["id"].as_str().unwrap().to_owned();
    assert!(
        eventually(10, || stand_in.create_calls() > calls).await,
        "CreateJob was tried"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    drop(m);
    front.cut();
    stand_in.unavailable(false);
    let log_before = g.log().matches("reconciler: could not list jobs").count();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let log_during = g.log().matches("reconciler: could not list jobs").count();
    assert!(
        log_during > log_before,
        "the reconciler met the outage and carried on\n{}",
        g.log()
    );
    let m = crate::moto::moto().unwrap();
    front.restart(&m.url).await;
    let done = crate::jobs::wait_for_job(&c, &g.base, &jid).await;
    assert_eq!(done["state"], "COMPLETE", "{done}\n{}", g.log());
    assert!(done["backend_job_id"].is_string(), "{done}");
    let a = crate::jobs::asset(&c, &g.base, &id).await;
    // The failed CreateJob may have made a job: the resubmission writes a
    // fresh version (above v1, the job's).
    assert!(
        a["current_version"].as_u64() > Some(1) && a["current_version"] == done["version"],
        "a fresh version: {a} {done}"
    );
    drop(m);
}

/// S3 answers 503 to the source bucket just when the job reads its
/// source (its first bytes, to tell the container, then ffprobe): that is
/// no verdict on the file, so the job waits SUBMITTED
/// (MediaConvert not asked) and the reconciler submits it again once S3
/// answers; it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_bucket_failing_at_probe_time_fails_no_job() {
    let Some(m) = crate::moto::moto() else { return };
    let proxy = crate::cloudfront_policies::PolicyProxy::start(&m.url).await;
    let p = Pipeline::start(tempfile::tempdir().unwrap(), &proxy.url, "1s").await;
    let (g, stand_in) = (&p.g, &p.stand_in);
    let c = reqwest::Client::new();
    let id = crate::jobs::upload(&c, &g.base, &p.source).await;

    proxy.fail_under(Some("/pgtest-src/"));
    let job = crate::jobs::transcode(&c, &g.base, &id).await;
    let jid = job["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let waiting = crate::jobs::get_job(&c, &g.base, &jid).await;
    assert_eq!(waiting["state"], "SUBMITTED", "not failed: {waiting}");
    assert!(waiting["error"].is_null(), "{waiting}");
    assert!(stand_in.created().is_empty(), "MediaConvert not asked");
    assert!(
        g.log().contains("the source bucket did not answer") && g.log().contains("SlowDown"),
        "reading the source's first bytes met S3's 503\n{}",
        g.log()
    );

    proxy.fail_under(None);
    let done = crate::jobs::wait_for_job(&c, &g.base, &jid).await;
    assert_eq!(done["state"], "COMPLETE", "{done}\n{}", g.log());
}
