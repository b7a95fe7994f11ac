//! `POST /hooks/mediaconvert` with EventBridge-shaped events: the secret,
//! the state machine through HTTP (duplicates, late and out-of-order
//! events change nothing), and COMPLETE publishing what MediaConvert wrote.

use crate::helpers::{TestApp, problem, spawn_app_edited};
use playgate::backends::store::{Asset, AssetStatus, Expect, Job, JobState, StoreExt};

pub(crate) const SECRET: &str = "hook-secret-0123456789";

/// A gateway with the hook on (`SECRET`).
pub(crate) async fn app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hook");
    std::fs::write(&file, SECRET).unwrap();
    let extra = format!(
        "\n[notify]\nmediaconvert_hook_secret_file = \"{}\"\n",
        file.display()
    );
    // The file is read while the config loads; the dir may go after.
    let app = spawn_app_edited("", move |t| format!("{t}{extra}"), axum::Router::new()).await;
    drop(dir);
    app
}

/// An asset being encoded by "MediaConvert" as job `{asset}-a1`, v1.
async fn job_in_flight(app: &TestApp, asset: &str) -> Job {
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
        created_at: crate::helpers::now(),
    };
    app.state.store.put_asset(&a, Expect::Absent).await.unwrap();
    let job = Job {
        id: format!("{asset}-a1").parse().unwrap(),
        asset_id: id,
        attempt: 1,
        version: 1,
        state: JobState::Submitted,
        progress: 0,
        backend_job_id: Some(format!("1700000000000-{asset}")),
        error: None,
        created_at: crate::helpers::now(),
        submissions: 0,
    };
    app.state.store.put_job(&job, Expect::Absent).await.unwrap();
    job
}

/// What MediaConvert would have written under `assets/{asset}/v1/`.
async fn write_output(app: &TestApp, asset: &str) {
    crate::tree::put_tree(
        app.state.objects.as_ref(),
        crate::clip::clip(),
        "hls",
        &format!("assets/{asset}/v1"),
    )
    .await;
}

fn event(job: &Job, status: &str, extra: &str) -> serde_json::Value {
    serde_json::from_str(&format!(
        r#"{{"version":"0","id":"e","detail-type":"MediaConvert Job State Change","source":"aws.mediaconvert",
        "account":"111122223333","time":"2026-11-24T07:00:00Z","region":"us-east-1","resources":[],
        "detail":{{"timestamp":1,"accountId":"111122223333","queue":"q","jobId":"{}","status":"{status}",
        "userMetadata":{{"job_id":"{}","asset_id":"{}","app":"playgate"}}{extra}}}}}"#,
        job.backend_job_id.as_deref().unwrap(),
        job.id,
        job.asset_id
    ))
    .unwrap()
}

async fn send(app: &TestApp, body: &serde_json::Value, secret: Option<&str>) -> reqwest::Response {
    let mut req = app.client.post(app.url("/hooks/mediaconvert")).json(body);
    if let Some(s) = secret {
        req = req.header("x-playgate-hook-secret", s);
    }
    req.send().await.unwrap()
}

async fn applied(app: &TestApp, body: &serde_json::Value) -> bool {
    let resp = send(app, body, Some(SECRET)).await;
    assert_eq!(resp.status(), 200);
    resp.json::<serde_json::Value>().await.unwrap()["applied"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn events_drive_the_job_and_complete_publishes_the_output() {
    let app = app().await;
    let job = job_in_flight(&app, "mc1").await;
    let progressing = event(&job, "PROGRESSING", "");
    assert_eq!(problem(send(&app, &progressing, None).await).await.0, 401);
    assert_eq!(
        problem(send(&app, &progressing, Some("hook-secret-wrong-value")).await)
            .await
            .0,
        401
    );
    assert!(applied(&app, &progressing).await);
    assert!(!applied(&app, &progressing).await, "a duplicate");
    let at = |p: u8| {
        event(
            &job,
            "STATUS_UPDATE",
            &format!(r#","jobProgress":{{"jobPercentComplete":{p}}}"#),
        )
    };
    assert!(applied(&app, &at(40)).await);
    assert!(!applied(&app, &at(30)).await, "out of order");
    assert!(
        !applied(
            &app,
            &event(&job, "NEW_WARNING", r#","warningCode":230001"#)
        )
        .await
    );

    write_output(&app, "mc1").await;
    let complete = event(
        &job,
        "COMPLETE",
        r#","outputGroupDetails":[{"playlistFilePaths":["s3://out/assets/mc1/v1/hls/master.m3u8"],"type":"HLS_GROUP"}]"#,
    );
    assert!(applied(&app, &complete).await);
    assert!(!applied(&app, &complete).await, "COMPLETE twice");
    assert!(
        !applied(&app, &at(90)).await,
        "late progress after COMPLETE"
    );
    assert!(!applied(&app, &event(&job, "ERROR", r#","errorCode":1010"#)).await);
    let j = app.state.pipeline.job(&job.id).await.unwrap();
    assert_eq!((j.state, j.progress), (JobState::Complete, 100));
    let a = app
        .state
        .store
        .get_asset(&job.asset_id)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(a.status, AssetStatus::Ready);
    assert_eq!(a.current_version, Some(1));
    assert_eq!(a.renditions, ["360p", "480p", "720p", "audio"]);
    let master = app
        .get_bearer("/v1/play/mc1/master.m3u8", &app.viewer_token("free"))
        .await;
    assert_eq!(master.status(), 200);
}

#[tokio::test]
async fn errors_missing_outputs_and_strangers() {
    let app = app().await;
    let failing = job_in_flight(&app, "mc2").await;
    assert!(
        applied(
            &app,
            &event(
                &failing,
                "ERROR",
                r#","errorCode":1010,"errorMessage":"Input file is unsupported""#
            )
        )
        .await
    );
    let j = app.state.pipeline.job(&failing.id).await.unwrap();
    assert_eq!(j.state, JobState::Error);
    assert_eq!(
        j.error.as_deref(),
        Some("MediaConvert error 1010: Input file is unsupported")
    );
    let a = app
        .state
        .store
        .get_asset(&failing.asset_id)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(a.status, AssetStatus::Failed);

    let empty = job_in_flight(&app, "mc3").await;
    assert!(applied(&app, &event(&empty, "COMPLETE", "")).await);
    let j = app.state.pipeline.job(&empty.id).await.unwrap();
    assert_eq!(
        j.state,
        JobState::Error,
        "COMPLETE with no master is not success"
    );
    assert!(j.error.unwrap().contains("assets/mc3/v1/hls/master.m3u8"));

    // Not ours: unknown job, another application's job, another source.
    let mut stranger = event(&empty, "PROGRESSING", "");
    stranger["detail"]["userMetadata"] = serde_json::json!({"app": "other"});
    assert!(!applied(&app, &stranger).await);
    let mut unknown = event(&empty, "PROGRESSING", "");
    unknown["detail"]["userMetadata"]["job_id"] = "nope-a1".into();
    assert!(!applied(&app, &unknown).await);
    let mut other = event(&empty, "PROGRESSING", "");
    other["source"] = "aws.s3".into();
    assert!(!applied(&app, &other).await);
    let mut wrong_backend = event(&failing, "CANCELED", "");
    wrong_backend["detail"]["jobId"] = "1700000000000-someone-else".into();
    assert!(!applied(&app, &wrong_backend).await);
    let bad = app
        .client
        .post(app.url("/hooks/mediaconvert"))
        .header("x-playgate-hook-secret", SECRET)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad).await.0, 400);
}

#[tokio::test]
async fn without_a_configured_secret_the_hook_does_not_exist() {
    let app = crate::helpers::spawn_app().await;
    let resp = app
        .client
        .post(app.url("/hooks/mediaconvert"))
        .header("x-playgate-hook-secret", SECRET)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 404);
}
