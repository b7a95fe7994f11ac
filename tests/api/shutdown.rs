use crate::helpers::spawn_app_with;
use axum::routing::get;
use std::time::Duration;

#[tokio::test]
async fn shutdown_finishes_the_in_flight_request() {
    finishes_the_in_flight_request("").await;
}

/// The same with connections served on the shared runtime
/// (`server.worker_threads = 0`) instead of one thread per core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_in_flight_request_on_the_shared_runtime() {
    finishes_the_in_flight_request("worker_threads = 0").await;
}

async fn finishes_the_in_flight_request(server: &str) {
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
    let mut app = spawn_app_with(server, routes).await;
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

/// Under load: 300 requests accepted and in progress when shutdown
/// starts; every one completes with its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_finishes_every_accepted_request() {
    const N: usize = 300;
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let all_in = std::sync::Arc::new(tokio::sync::Notify::new());
    let (s2, a2) = (started.clone(), all_in.clone());
    let routes = axum::Router::new().route(
        "/test/slow/{n}",
        get(move |axum::extract::Path(n): axum::extract::Path<usize>| {
            let (s, a) = (s2.clone(), a2.clone());
            async move {
                if s.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == N {
                    a.notify_one();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                format!("finished {n}")
            }
        }),
    );
    let mut app = spawn_app_with("", routes).await;
    let tasks: Vec<_> = (0..N)
        .map(|n| {
            let (client, url) = (app.client.clone(), app.url(&format!("/test/slow/{n}")));
            tokio::spawn(async move {
                let r = client.get(url).send().await?;
                Ok::<_, reqwest::Error>((r.status(), r.text().await?))
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(20), all_in.notified())
        .await
        .expect("every request reached the handler");
    app.trigger_shutdown();
    for (n, t) in tasks.into_iter().enumerate() {
        let (status, body) = t.await.unwrap().expect("an accepted request was dropped");
        assert_eq!(status, 200);
        assert_eq!(body, format!("finished {n}"));
    }
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after draining")
        .unwrap()
        .unwrap();
}
