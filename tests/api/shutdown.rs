use crate::helpers::spawn_app_with;
use axum::routing::get;
use std::time::Duration;

#[tokio::test]
async fn shutdown_finishes_the_in_flight_request() {
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let routes = axum::Router::new().route(
        "/test/slow",
        get(move || {
            let s = s2.clone();
            async move {
                s.notify_one();
                tokio::time::sleep(Duration::from_millis(700)).await;
                "finished"
            }
        }),
    );
    let mut app = spawn_app_with("", routes).await;
    let url = app.url("/test/slow");
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    started.notified().await;
    app.trigger_shutdown();
    let resp = in_flight
        .await
        .unwrap()
        .expect("in-flight request must complete");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "finished");
    // The server has stopped: the task ends cleanly and new connections fail.
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after draining")
        .unwrap()
        .unwrap();
    assert!(reqwest::get(app.url("/healthz")).await.is_err());
}
