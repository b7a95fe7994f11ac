//! Assets admin API.

use crate::helpers::{TestApp, problem, spawn_app_edited, with_api_key};
use serde_json::json;

const KEY: &str = "pgk_assets_test_key_abcdefghijk";

async fn app() -> TestApp {
    spawn_app_edited(
        "",
        |t| with_api_key(t, KEY, "playgate:admin"),
        axum::Router::new(),
    )
    .await
}

async fn put(
    app: &TestApp,
    id: &str,
    body: serde_json::Value,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut r = app
        .client
        .put(app.url(&format!("/v1/assets/{id}")))
        .bearer_auth(KEY)
        .json(&body);
    if let Some(m) = if_match {
        r = r.header("if-match", m);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn create_edit_list_and_delete_assets() {
    let app = app().await;
    for id in ["c", "a", "b"] {
        assert_eq!(
            put(&app, id, json!({"title": id}), None).await.status(),
            201
        );
    }
    let (status, body) = problem(put(&app, "a", json!({"title": "x"}), None).await).await;
    assert_eq!(status, 428, "{body}");
    let resp = put(
        &app,
        "a",
        json!({"title": "A", "min_tier": "premium"}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["asset"]["min_tier"], "premium");
    assert_eq!(body["asset"]["status"], "created");

    let (status, body) =
        problem(put(&app, "a", json!({"status": "ready"}), Some("\"2\"")).await).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("body.status")));
    let (status, _) =
        problem(put(&app, "a", json!({"min_tier": "gold"}), Some("\"2\"")).await).await;
    assert_eq!(status, 400, "unknown tier");
    let (status, _) = problem(put(&app, "../etc", json!({}), None).await).await;
    assert!(status == 400 || status == 404, "bad id: {status}");
    let (status, _) = problem(put(&app, "bad.id", json!({}), None).await).await;
    assert_eq!(status, 400);

    let page: serde_json::Value = app
        .get_bearer("/v1/assets?limit=2", KEY)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = page["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asset"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(page["next"], "b");
    let page2: serde_json::Value = app
        .get_bearer("/v1/assets?limit=2&after=b", KEY)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["assets"][0]["asset"]["id"], "c");
    assert_eq!(page2["next"], serde_json::Value::Null);
    let (status, _) = problem(app.get_bearer("/v1/assets?limit=0", KEY).await).await;
    assert_eq!(status, 400);

    let del = app
        .client
        .delete(app.url("/v1/assets/b"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let got: serde_json::Value = app
        .get_bearer("/v1/assets/b", KEY)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["asset"]["status"], "deleted");
    let (status, _) = problem(app.get_bearer("/v1/assets/zzz", KEY).await).await;
    assert_eq!(status, 404);
}
