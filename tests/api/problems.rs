use crate::helpers::{problem, spawn_app, spawn_app_with};
use axum::routing::{get, post};
use playgate::http::extract::Json;
use playgate::state::AppState;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Probe {
    name: String,
    count: u32,
}

fn probe_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/test/json",
            post(|Json(p): Json<Probe>| async move { format!("{}:{}", p.name, p.count) }),
        )
        .route(
            "/test/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(800)).await;
                "slow done"
            }),
        )
}

#[tokio::test]
async fn unknown_route_is_a_problem_with_request_id() {
    let app = spawn_app().await;
    let resp = app.get("/no/such/route").await;
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (status, body) = problem(resp).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "urn:playgate:problem:not-found");
    assert_eq!(body["request_id"], rid);
}

#[tokio::test]
async fn wrong_method_is_a_problem() {
    let app = spawn_app().await;
    let resp = app.client.delete(app.url("/healthz")).send().await.unwrap();
    let (status, _) = problem(resp).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn malformed_body_names_the_field() {
    let app = spawn_app_with("", probe_routes()).await;
    let ok = app
        .post_json("/test/json", r#"{"name":"a","count":3}"#)
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "a:3");

    let (status, body) = problem(
        app.post_json("/test/json", r#"{"name":"a","count":"three"}"#)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "body.count");
    assert!(
        body["detail"].as_str().unwrap().contains("body.count"),
        "{body}"
    );

    let (status, body) = problem(app.post_json("/test/json", r#"{"name":"a""#).await).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );

    let (status, body) = problem(app.post_json("/test/json", r#"{"name":"a"}"#).await).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("count"), "{body}");
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let app = spawn_app_with("max_body = \"1KiB\"", probe_routes()).await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(4096));
    let (status, _) = problem(app.post_json("/test/json", &big).await).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn request_id_is_echoed_and_generated() {
    let app = spawn_app().await;
    let resp = app
        .get_with("/no/such", &[("x-request-id", "client-id-42")])
        .await;
    assert_eq!(resp.headers()["x-request-id"], "client-id-42");
    let (_, body) = problem(resp).await;
    assert_eq!(body["request_id"], "client-id-42");

    let resp = app
        .get_with("/healthz", &[("x-request-id", "has spaces and\ttabs")])
        .await;
    let generated = resp.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(generated, "has spaces and\ttabs");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
}

#[tokio::test]
async fn saturation_is_503_with_retry_after() {
    let app = spawn_app_with("max_concurrency = 1", probe_routes()).await;
    let slow = app.client.get(app.url("/test/slow")).send();
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.get("/healthz").await
    };
    let (first, second) = tokio::join!(slow, second);
    assert_eq!(first.unwrap().status(), 200);
    assert_eq!(second.headers()["retry-after"], "1");
    let (status, body) = problem(second).await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:playgate:problem:overloaded");
}

#[tokio::test]
async fn slow_requests_time_out_as_problems() {
    let app = spawn_app_with("request_timeout = \"200ms\"", probe_routes()).await;
    let (status, body) = problem(app.get("/test/slow").await).await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:playgate:problem:timeout");
}
