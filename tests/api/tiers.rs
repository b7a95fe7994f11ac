//! Tier admin API: ETag/If-Match, validation, replicas.

use crate::helpers::{TestApp, problem, spawn_app_edited, spawn_in, with_api_key};
use serde_json::json;

const KEY: &str = "pgk_tiers_test_key_abcdefghijkl";

fn with_admin_key(t: String) -> String {
    with_api_key(t, KEY, "playgate:admin")
}

async fn admin_app(server_extra: &str) -> TestApp {
    spawn_app_edited(server_extra, with_admin_key, axum::Router::new()).await
}

async fn put(
    app: &TestApp,
    name: &str,
    body: serde_json::Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .client
        .put(app.url(&format!("/v1/tiers/{name}")))
        .bearer_auth(KEY)
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn create_update_with_etags_and_delete() {
    let app = admin_app("").await;
    let list: serde_json::Value = app.get_bearer("/v1/tiers", KEY).await.json().await.unwrap();
    let names: Vec<&str> = list["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["free", "premium"]);

    let created = put(&app, "gold", json!({"rank": 30, "max_height": 1440}), &[]).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["etag"], "\"1\"");

    let (status, _) = problem(put(&app, "gold", json!({"max_height": 1080}), &[]).await).await;
    assert_eq!(status, 428, "update without If-Match");
    let (status, _) = problem(
        put(
            &app,
            "gold",
            json!({"max_height": 1080}),
            &[("if-match", "\"7\"")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 412, "stale If-Match");
    let updated = put(
        &app,
        "gold",
        json!({"max_height": 1080}),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.headers()["etag"], "\"2\"");
    let (status, _) = problem(put(&app, "gold", json!({}), &[("if-none-match", "*")]).await).await;
    assert_eq!(status, 409, "create over an existing tier");

    let got = app.get_bearer("/v1/tiers/gold", KEY).await;
    assert_eq!(got.headers()["etag"], "\"2\"");
    let body: serde_json::Value = got.json().await.unwrap();
    assert_eq!(body["rules"]["max_height"], 1080);
    assert!(
        body["rules"].get("rank").is_none() || body["rules"]["rank"] == 0,
        "PUT replaces the rules"
    );

    let del = app
        .client
        .delete(app.url("/v1/tiers/gold"))
        .bearer_auth(KEY)
        .header("if-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let (status, _) = problem(app.get_bearer("/v1/tiers/gold", KEY).await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn validation_lists_every_bad_field() {
    let app = admin_app("").await;
    let resp = put(
        &app,
        "broken",
        json!({"max_height": -5, "video_range": ["HDR10"], "delivery": "carrier-pigeon", "colour": "blue"}),
        &[],
    )
    .await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in [
        "body.max_height",
        "body.video_range",
        "body.delivery",
        "body.colour",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let (status, body) = problem(app.get_bearer("/v1/tiers/Bad%20Name", KEY).await).await;
    assert_eq!(status, 400, "{body}");
    // Nothing was written.
    let (status, _) = problem(app.get_bearer("/v1/tiers/broken", KEY).await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_the_other_within_its_cache_ttl() {
    let a = admin_app("tier_cache_ttl = \"1s\"").await;
    let text = with_admin_key(crate::helpers::config_text(
        std::path::Path::new(crate::helpers::DIR),
        "tier_cache_ttl = \"1s\"",
    ));
    let b = spawn_in(a.dir.clone(), text, axum::Router::new()).await;
    let free = playgate::domain::TierName::parse("free").unwrap();
    assert_eq!(
        b.state.tiers.get(&free).await.unwrap().unwrap().max_height,
        Some(480)
    );

    let current: serde_json::Value = a
        .get_bearer("/v1/tiers/free", KEY)
        .await
        .json()
        .await
        .unwrap();
    let etag = format!("\"{}\"", current["revision"]);
    let resp = put(
        &a,
        "free",
        json!({"max_height": 360}),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    // A sees its own write at once; B within its 1 s cache lifetime.
    assert_eq!(
        a.state.tiers.get(&free).await.unwrap().unwrap().max_height,
        Some(360)
    );
    let started = std::time::Instant::now();
    loop {
        if b.state.tiers.get(&free).await.unwrap().unwrap().max_height == Some(360) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "replica B never saw the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

/// `fallback` is URL delivery for a cookie tier, nothing else; a valid
/// one is stored and read back.
#[tokio::test]
async fn a_fallback_is_urls_for_a_cookie_tier_only() {
    let app = admin_app("").await;
    for body in [
        json!({"delivery": "urls", "fallback": "urls"}),
        json!({"fallback": "cookies"}),
    ] {
        let (status, problem_body) = problem(put(&app, "odd", body.clone(), &[]).await).await;
        assert_eq!(status, 400, "{body}: {problem_body}");
        let fields: Vec<&str> = problem_body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["body.fallback"], "{body}");
    }
    let resp = put(
        &app,
        "sd",
        json!({"max_height": 360, "fallback": "urls"}),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 201);
    let back: serde_json::Value = app
        .get_bearer("/v1/tiers/sd", KEY)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["rules"]["fallback"], "urls", "{back}");
}
