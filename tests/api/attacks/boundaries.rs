//! EventBridge (the MediaConvert hook) and the local demo's helpers: each
//! may do only its own small thing.

use crate::helpers::{TestApp, now, problem, spawn_app_edited};
use playgate::backends::store::{Asset, AssetStatus, Expect, Job, JobState, StoreExt};
use serde_json::{Value, json};

use crate::hooks::{SECRET, app as hook_app};

/// A job as the local runner records it: no backend job id, ever.
async fn local_job(app: &TestApp, asset: &str, backend: Option<&str>) -> Job {
    let id: playgate::domain::AssetId = asset.parse().unwrap();
    let a = Asset {
        id: id.clone(),
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
        created_at: now(),
    };
    app.state.store.put_asset(&a, Expect::Absent).await.unwrap();
    let job = Job {
        id: format!("{asset}-a1").parse().unwrap(),
        asset_id: id,
        attempt: 1,
        version: 1,
        state: JobState::Progressing,
        progress: 10,
        backend_job_id: backend.map(str::to_owned),
        error: None,
        created_at: now(),
        submissions: 0,
    };
    app.state.store.put_job(&job, Expect::Absent).await.unwrap();
    job
}

fn event(job_id: &str, backend: &str, status: &str, meta: Value) -> Value {
    let mut meta = meta;
    meta["job_id"] = job_id.into();
    json!({
        "version": "0", "id": "e", "detail-type": "MediaConvert Job State Change",
        "source": "aws.mediaconvert", "account": "111122223333", "time": "2026-11-24T07:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"timestamp": 1, "accountId": "111122223333", "queue": "q",
                   "jobId": backend, "status": status, "userMetadata": meta}
    })
}

async fn applied(app: &TestApp, body: &Value) -> bool {
    let resp = app
        .client
        .post(app.url("/hooks/mediaconvert"))
        .header("x-playgate-hook-secret", SECRET)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["applied"]
        .as_bool()
        .unwrap()
}

/// An event must name the job's asset, and once the MediaConvert job id is
/// recorded, that id; a job ffmpeg runs here takes no events at all.
#[tokio::test]
async fn hook_events_touch_only_the_mediaconvert_job_they_name() {
    let app = hook_app().await;
    let local = local_job(&app, "ffjob", None).await;
    for meta in [json!({}), json!({"asset_id": "ffjob"})] {
        let cancel = event(
            local.id.as_str(),
            "1700000000000-x",
            "CANCELED",
            meta.clone(),
        );
        assert!(!applied(&app, &cancel).await, "local job, meta {meta}");
    }
    let j = app.state.pipeline.job(&local.id).await.unwrap();
    assert_eq!(j.state, JobState::Progressing, "the local job runs on");

    let mc = local_job(&app, "mcjob", Some("1700000000000-mc")).await;
    let no_asset = event(mc.id.as_str(), "1700000000000-mc", "CANCELED", json!({}));
    assert!(!applied(&app, &no_asset).await, "no asset_id");
    let other_asset = event(
        mc.id.as_str(),
        "1700000000000-mc",
        "CANCELED",
        json!({"asset_id": "ffjob"}),
    );
    assert!(!applied(&app, &other_asset).await, "another asset");
    let other_job = event(
        mc.id.as_str(),
        "1700000000000-other",
        "CANCELED",
        json!({"asset_id": "mcjob"}),
    );
    assert!(!applied(&app, &other_job).await, "another MediaConvert job");
    let right = event(
        mc.id.as_str(),
        "1700000000000-mc",
        "CANCELED",
        json!({"asset_id": "mcjob"}),
    );
    assert!(applied(&app, &right).await, "the job's own event applies");
}

/// `/demo/token` mints viewer tokens, so it answers only a loopback peer of
/// a gateway that listens on loopback, never through a proxy.
#[tokio::test]
async fn the_demo_token_is_refused_through_a_proxy_and_off_loopback() {
    let app = crate::helpers::spawn_app().await;
    let ok = app.get("/demo/token?tier=premium").await;
    assert_eq!(ok.status(), 200, "loopback, no proxy headers");
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        let resp = app
            .get_with("/demo/token?tier=premium", &[(name, value)])
            .await;
        assert_eq!(problem(resp).await.0, 404, "{name}");
        let resp = app.get_with("/demo/assets", &[(name, value)]).await;
        assert_eq!(problem(resp).await.0, 404, "{name} on /demo/assets");
    }
    let public = spawn_app_edited(
        "",
        |t| t.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\""),
        axum::Router::new(),
    )
    .await;
    assert_eq!(
        problem(public.get("/demo/token?tier=premium").await)
            .await
            .0,
        404,
        "a gateway listening beyond loopback mints no demo tokens"
    );
}
