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
    let state = |c: reqwest::Client, base: String| async move {
        c.get(format!("{base}/v1/jobs/clip2-a1"))
            .bearer_auth("ingest-key")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["job"]["state"]
            .clone()
    };

    proxy.fail_under(Some("/pgtest-out/"));
    let first = crate::complete_by_hook(&c, &g.base, &job).await;
    assert_eq!(
        first,
        (503, false),
        "EventBridge must deliver again\n{}",
        g.log()
    );
    assert_eq!(
        state(c.clone(), g.base.clone()).await,
        "SUBMITTED",
        "not failed"
    );

    proxy.fail_under(None);
    let again = crate::complete_by_hook(&c, &g.base, &job).await;
    assert_eq!(again, (200, true), "{}", g.log());
    assert_eq!(state(c.clone(), g.base.clone()).await, "COMPLETE");
    let master = c
        .get(format!("{}/v1/play/clip2/master.m3u8", g.base))
        .bearer_auth(g.viewer_token("free"))
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
}
