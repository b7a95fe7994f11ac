//! A CloudFront stand-in for mode aws tests, and a forward proxy beside it.
//!
//! Requests for the CDN host are checked as CloudFront checks them — a
//! signed URL (`Policy`/`Signature`/`Key-Pair-Id` or canned `Expires`) or
//! signed cookies, verified with the distribution's public keys by
//! playgate's verifier (the one `tests/conformance` holds to AWS's and
//! botocore's vectors) against the URL as sent — then served from the
//! output bucket (moto's S3). Anything refused is 403 `AccessDenied`, as a
//! trusted key group answers. Requests for any other host are forwarded
//! (the gateway), so a client pointed at this one proxy (ffmpeg's
//! `-http_proxy`) reaches both by the names the config gives them.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Clone)]
struct Ctx {
    /// `cdn.example.com:PORT`: the host this edge answers for.
    cdn_host: String,
    keys: Arc<playgate::engine::cloudfront::keys::PublicKeys>,
    objects: Arc<dyn playgate::backends::storage::ObjectStore>,
    /// Where other hosts' requests go: `host:port` → `http://127.0.0.1:PORT`.
    forward: Arc<Vec<(String, String)>>,
    client: reqwest::Client,
}

pub struct Edge {
    /// `http://127.0.0.1:PORT`: the proxy address.
    pub proxy: String,
    pub port: u16,
}

impl Edge {
    /// Listens on a free loopback port; returns at once (bind first, then
    /// make the hosts that name this port).
    pub async fn bind() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    /// Serves `cdn_host` from `objects` with `keys`, and forwards the hosts
    /// in `forward` (`host:port`, `http://127.0.0.1:PORT`).
    pub fn serve(
        listener: tokio::net::TcpListener,
        cdn_host: &str,
        keys: playgate::engine::cloudfront::keys::PublicKeys,
        objects: Arc<dyn playgate::backends::storage::ObjectStore>,
        forward: Vec<(String, String)>,
    ) -> Edge {
        let port = listener.local_addr().unwrap().port();
        let ctx = Ctx {
            cdn_host: cdn_host.to_owned(),
            keys: Arc::new(keys),
            objects,
            forward: Arc::new(forward),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let router = axum::Router::new().fallback(handle).with_state(ctx);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Edge {
            proxy: format!("http://127.0.0.1:{port}"),
            port,
        }
    }
}

fn denied() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>",
    )
        .into_response()
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if host != ctx.cdn_host {
        let Some((_, to)) = ctx.forward.iter().find(|(h, _)| *h == host) else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        let mut req = ctx
            .client
            .request(method, format!("{to}{path_and_query}"))
            .body(body);
        for (k, v) in &headers {
            if !matches!(k.as_str(), "host" | "proxy-connection" | "connection") {
                req = req.header(k, v);
            }
        }
        let Ok(resp) = req.send().await else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        let status = resp.status();
        let mut out = HeaderMap::new();
        for (k, v) in resp.headers() {
            if !matches!(
                k.as_str(),
                "transfer-encoding" | "connection" | "content-length"
            ) {
                out.append(k, v.clone());
            }
        }
        return (status, out, resp.bytes().await.unwrap_or_default()).into_response();
    }
    // CloudFront: the signature covers the URL as the viewer sent it.
    let url = format!("http://{host}{path_and_query}");
    let cookies = playgate::engine::cloudfront::cookies::CloudFrontCookies::parse(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let cookies = cookies
        .signature
        .is_some()
        .then(|| playgate::engine::cloudfront::verifier::Credentials::from(cookies));
    let now = playgate::clock::Clock::now_epoch(&playgate::clock::SystemClock);
    if playgate::engine::cloudfront::verifier::verify_request(&ctx.keys, &url, cookies, None, now)
        .is_err()
    {
        return denied();
    }
    let key = percent_encoding::percent_decode_str(uri.path().trim_start_matches('/'))
        .decode_utf8()
        .ok()
        .and_then(|k| playgate::backends::storage::ObjectKey::parse(&k).ok());
    let Some(key) = key else {
        return denied();
    };
    match ctx.objects.get(&key).await {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                playgate::backends::cdn::content_type(key.as_str()),
            )],
            bytes,
        )
            .into_response(),
        // S3 behind an OAC answers 403 for a missing key too.
        Err(_) => denied(),
    }
}
