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

/// CR/LF in path parameters and queries never reaches a response header;
/// path tricks on every path parameter are refused; oversized tokens and
/// query strings are refused with a 4xx and leave the server answering.
#[tokio::test]
async fn hostile_paths_headers_and_sizes_are_refused_cleanly() {
    let app = spawn_app().await;
    let token = app.viewer_token("free");
    for path in [
        "/v1/play/a%0d%0aSet-Cookie:%20evil=1/master.m3u8",
        "/v1/play/a%0aLocation:%20https:%2f%2fevil/master.m3u8",
        "/v1/play/..%2f..%2fetc/master.m3u8",
        "/v1/play/%2e%2e/master.m3u8",
        "/v1/play/a%00b/master.m3u8",
        "/v1/play/%c0%ae%c0%ae/master.m3u8",
        "/v1/play/a/hls/..%2f..%2f..%2fplaygate.db",
        "/v1/play/a/hls/360p/index.m3u8%0d%0aSet-Cookie:x=1",
        "/v1/assets/..%5c..%5cx",
        "/v1/jobs/a%0d%0ab",
        "/v1/tiers/free%0d%0aX:1",
        "/v1/uploads/a%0d%0ab/complete",
    ] {
        let r = app.get_bearer(path, &token).await;
        let status = r.status().as_u16();
        let injected = r.headers().iter().any(|(k, v)| {
            k.as_str().eq_ignore_ascii_case("location")
                || k.as_str() == "x"
                || v.to_str().unwrap_or("").contains("evil")
        });
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(!injected, "{path}: {:?}", r.headers());
    }
    let query = format!(
        "/v1/play/a/master.m3u8?token={}",
        "%0d%0aSet-Cookie:%20x=1".repeat(10)
    );
    let r = app.get(&query).await;
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|v| !v.to_str().unwrap().contains("x=1"))
    );

    // A 1 MB token, a 60 KB query string (URIs stop at 64 KB), a 1 MB
    // cookie: each refused (or the connection closed), never served.
    let big = "A".repeat(1 << 20);
    let send = |req: reqwest::RequestBuilder| async move {
        req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    let statuses = [
        send(app.client.get(app.url("/v1/me")).bearer_auth(&big)).await,
        send(
            app.client
                .get(app.url(&format!("/v1/me?token={}", &big[..60_000]))),
        )
        .await,
        send(
            app.client
                .get(app.url("/cdn/assets/a/v1/hls/master.m3u8"))
                .header("cookie", format!("CloudFront-Policy={big}")),
        )
        .await,
    ];
    for s in statuses {
        assert!(s == 0 || (400..500).contains(&s), "{statuses:?}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200, "still serving");
}

/// Slowloris: a client that trickles a request's headers a byte at a
/// time is cut off after `server.header_timeout`; a whole request on
/// another connection meanwhile is served.
#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with("header_timeout = \"1s\"", axum::Router::new()).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut closed_after = None;
    let mut buf = [0u8; 256];
    for _ in 0..100 {
        if slow.write_all(b"X").await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        match tokio::time::timeout(std::time::Duration::from_millis(100), slow.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => {
                // A 408 or the like, then the close.
            }
            Err(_) => {}
        }
        if started.elapsed() > std::time::Duration::from_millis(300)
            && started.elapsed() < std::time::Duration::from_millis(500)
        {
            assert_eq!(app.get("/healthz").await.status(), 200, "others are served");
        }
    }
    let closed_after = closed_after.expect("the trickling connection was never closed");
    assert!(
        closed_after >= std::time::Duration::from_millis(900)
            && closed_after < std::time::Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
}
