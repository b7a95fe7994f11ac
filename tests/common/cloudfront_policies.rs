//! The moto server has CloudFront distributions, public keys and key
//! groups, but no cache or origin-request policies. This loopback proxy
//! answers those two APIs itself, in CloudFront's REST XML (create with
//! the SDK's own request body, get by id), and passes every other request
//! to the moto server unchanged. Tests point the SDK's endpoint at it.
//! It can also make requests under a path fail with S3's 503 SlowDown.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Ctx {
    moto: String,
    /// (kind, id) → the stored `…Config` element.
    policies: Arc<Mutex<HashMap<(String, String), String>>>,
    client: reqwest::Client,
    /// Requests under this path answer 503 SlowDown, as S3 does when
    /// overloaded.
    failing: Arc<Mutex<Option<String>>>,
}

pub struct PolicyProxy {
    pub url: String,
    failing: Arc<Mutex<Option<String>>>,
}

impl PolicyProxy {
    pub async fn start(moto: &str) -> PolicyProxy {
        let ctx = Ctx {
            moto: moto.trim_end_matches('/').to_owned(),
            policies: Arc::new(Mutex::new(HashMap::new())),
            client: reqwest::Client::new(),
            failing: Arc::new(Mutex::new(None)),
        };
        let failing = ctx.failing.clone();
        let router = axum::Router::new().fallback(handle).with_state(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        PolicyProxy { url, failing }
    }

    /// Makes every request under `prefix` (e.g. `/bucket/`) fail with 503
    /// SlowDown until called again with `None`.
    pub fn fail_under(&self, prefix: Option<&str>) {
        *self.failing.lock().unwrap() = prefix.map(str::to_owned);
    }
}

/// `cache-policy` → `CachePolicy`; `origin-request-policy` → `OriginRequestPolicy`.
fn element(kind: &str) -> &'static str {
    if kind == "cache-policy" {
        "CachePolicy"
    } else {
        "OriginRequestPolicy"
    }
}

fn policy_xml(kind: &str, id: &str, config: &str) -> Response {
    let root = element(kind);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Id>{id}</Id><LastModifiedTime>2026-11-24T09:00:00Z</LastModifiedTime>{config}</{root}>"
    );
    ([("content-type", "text/xml"), ("etag", "E2POLICY")], body).into_response()
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let failing = ctx.failing.lock().unwrap().clone();
    if failing.is_some_and(|p| path.starts_with(&p)) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        )
            .into_response();
    }
    for kind in ["cache-policy", "origin-request-policy"] {
        let Some(rest) = path.strip_prefix(&format!("/2020-05-31/{kind}")) else {
            continue;
        };
        if method == Method::POST && rest.is_empty() {
            let text = String::from_utf8_lossy(&body).into_owned();
            let config = match text.find("?>") {
                Some(i) if text.starts_with("<?xml") => text[i + 2..].trim().to_owned(),
                _ => text.trim().to_owned(),
            };
            let mut policies = ctx.policies.lock().unwrap();
            let id = format!("{kind}-{}", policies.len() + 1);
            policies.insert((kind.to_owned(), id.clone()), config.clone());
            let mut r = policy_xml(kind, &id, &config);
            *r.status_mut() = StatusCode::CREATED;
            return r;
        }
        if method == Method::GET {
            let id = rest.trim_start_matches('/');
            let found = ctx
                .policies
                .lock()
                .unwrap()
                .get(&(kind.to_owned(), id.to_owned()))
                .cloned();
            return match found {
                Some(config) => policy_xml(kind, id, &config),
                None => (
                    StatusCode::NOT_FOUND,
                    [("content-type", "text/xml")],
                    format!("<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type><Code>NoSuch{}</Code><Message>The {} does not exist.</Message></Error></ErrorResponse>", element(kind), kind),
                )
                    .into_response(),
            };
        }
    }
    let target = format!(
        "{}{}",
        ctx.moto,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let head = method == Method::HEAD;
    let mut req = ctx.client.request(method, target).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let mut out = HeaderMap::new();
    for (k, v) in r.headers() {
        // A HEAD's length is the object's, not the (empty) body's.
        let length_of_body = k == "content-length" && !head;
        if k != "transfer-encoding" && k != "connection" && !length_of_body {
            out.insert(k, v.clone());
        }
    }
    let bytes = r.bytes().await.unwrap();
    (status, out, bytes).into_response()
}
