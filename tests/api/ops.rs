use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn healthz_answers() {
    let app = spawn_app().await;
    let resp = app.healthz().await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_is_ready_with_working_dependencies() {
    let app = spawn_app().await;
    let resp = app.readyz().await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["storage"], "ok");
    assert_eq!(body["checks"]["keys"], "ok");
}

#[tokio::test]
async fn readyz_is_503_when_the_sqlite_file_is_unwritable() {
    let app = spawn_app().await;
    assert_eq!(app.readyz().await.status(), 200);
    // The database file disappears and something unwritable takes its
    // place (as when a volume is swapped or unmounted). Root ignores
    // permission bits, so make it a directory.
    let db = app.sqlite_path();
    std::fs::remove_file(&db).unwrap();
    std::fs::create_dir(&db).unwrap();
    let (status, body) = problem(app.readyz().await).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["store"], "failed");
    assert_eq!(body["checks"]["storage"], "ok");
    assert!(body["detail"].as_str().unwrap().contains("store"));
    assert!(
        !body.to_string().contains("playgate.db"),
        "no internals: {body}"
    );
}

#[tokio::test]
async fn readyz_is_503_when_object_storage_is_unwritable() {
    let app = spawn_app().await;
    let root = app.dir.path().join("data");
    // Replace the storage root by a file: nothing can be written under it.
    let moved = app.dir.path().join("data-moved");
    std::fs::rename(&root, &moved).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    let (status, body) = problem(app.readyz().await).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["storage"], "failed");
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app().await;
    app.healthz().await;
    app.get("/nope").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"playgate_http_requests_total{route="/healthz",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "{text}"
    );
    assert!(text.contains("playgate_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn config_tiers_are_seeded_without_overwriting_edits() {
    use playgate::backends::store::{Expect, StoreExt};
    let mut app = spawn_app().await;
    let store = app.state.store.clone();
    let tiers = store.list_tiers().await.unwrap();
    let names: Vec<&str> = tiers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["free", "premium"]);
    // An operator edits a tier; seeding again (a restart) leaves the edit.
    let (name, v) = &tiers[0];
    let mut edited = v.value.clone();
    edited.max_height = Some(360);
    store
        .put_tier(name, &edited, Expect::Revision(v.revision))
        .await
        .unwrap();
    let cfg = app.state.config.clone();
    let inserted = store.seed_tiers(cfg.tiers.iter()).await.unwrap();
    assert!(inserted.is_empty());
    let after = store.get_tier(name).await.unwrap().unwrap();
    assert_eq!(after.value.max_height, Some(360));
    app.shutdown().await;
}

#[tokio::test]
async fn text_responses_are_gzipped_when_asked() {
    let app = spawn_app().await;
    app.healthz().await;
    let resp = app
        .get_with("/metrics", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let plain = app.get("/metrics").await;
    assert!(plain.headers().get("content-encoding").is_none());
}
