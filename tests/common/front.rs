//! An HTTP front for the moto server that lets it die and come back with
//! its state. moto keeps everything in memory, so a killed server restarts
//! empty; AWS does not lose a bucket in an outage. Every request that can
//! change state (all but GET and HEAD) is passed on one at a time and
//! recorded in the order moto answered it; `restart` plays that record
//! into a fresh server before anyone else can reach it.
//!
//! `cut` makes the address dead, as a killed process's is: connections are
//! refused and open ones closed. `restart` listens on the same address
//! again. Shared through `#[path]`.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// A request that changed (or could have changed) the server's state.
struct Recorded {
    method: Method,
    path_and_query: String,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    body: Bytes,
}

#[derive(Clone)]
struct Ctx {
    upstream: Arc<Mutex<String>>,
    /// Held while a state-changing request is passed on, so the record's
    /// order is the order moto applied them.
    record: Arc<tokio::sync::Mutex<Vec<Recorded>>>,
    client: reqwest::Client,
}

pub struct Front {
    pub url: String,
    addr: SocketAddr,
    ctx: Ctx,
    /// The accept loop and every open connection.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.cut();
    }
}

impl Front {
    /// Serves on a free loopback port, passing requests to `upstream`
    /// (`http://host:port`).
    pub async fn start(upstream: &str) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let front = Front {
            url: format!("http://{addr}"),
            addr,
            ctx: Ctx {
                upstream: Arc::new(Mutex::new(upstream.to_owned())),
                record: Arc::new(tokio::sync::Mutex::new(Vec::new())),
                client: reqwest::Client::new(),
            },
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        front.serve(listener);
        front
    }

    /// The address goes dead: new connections are refused, open ones closed.
    pub fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Plays the record into the fresh server at `upstream`, then serves
    /// again on the same address, passing requests there.
    pub async fn restart(&self, upstream: &str) {
        self.cut();
        {
            let record = self.ctx.record.lock().await;
            for r in record.iter() {
                let mut req = self
                    .ctx
                    .client
                    .request(r.method.clone(), format!("{upstream}{}", r.path_and_query));
                for (k, v) in &r.headers {
                    req = req.header(k, v);
                }
                let answer = req.body(r.body.clone()).send().await.unwrap();
                assert!(
                    !answer.status().is_server_error(),
                    "replaying {} {}: {}",
                    r.method,
                    r.path_and_query,
                    answer.status()
                );
            }
        }
        *self.ctx.upstream.lock().unwrap() = upstream.to_owned();
        for _ in 0..100 {
            if let Ok(listener) = tokio::net::TcpListener::bind(self.addr).await {
                return self.serve(listener);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("could not listen on {} again", self.addr);
    }

    /// How many state-changing requests have been recorded.
    pub async fn recorded(&self) -> usize {
        self.ctx.record.lock().await.len()
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (ctx, tasks) = (self.ctx.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let ctx = ctx.clone();
                let service = hyper::service::service_fn(move |req| pass_on(ctx.clone(), req));
                let conn = tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
                let mut t = tasks.lock().unwrap();
                t.retain(|h| !h.is_finished());
                t.push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }
}

/// Passes one request on, recording it when it can change state.
async fn pass_on(
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reads_only = parts.method == Method::GET || parts.method == Method::HEAD;
    let mut record = if reads_only {
        None
    } else {
        Some(ctx.record.lock().await)
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<_> = parts
        .headers
        .iter()
        .filter(|(k, _)| *k != "host" && *k != "content-length")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let upstream = ctx.upstream.lock().unwrap().clone();
    let mut out = ctx
        .client
        .request(parts.method.clone(), format!("{upstream}{path_and_query}"));
    for (k, v) in &headers {
        out = out.header(k, v);
    }
    let Ok(answer) = out.body(body.clone()).send().await else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        return Ok(r);
    };
    let mut response = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        // hyper sets the length of the body passed on; a HEAD's is the
        // object's, and is kept.
        let length = k == "content-length" && parts.method != Method::HEAD;
        if k != "transfer-encoding" && k != "connection" && !length {
            response = response.header(k, v);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    if let Some(record) = record.as_mut() {
        record.push(Recorded {
            method: parts.method,
            path_and_query,
            headers,
            body,
        });
    }
    Ok(response.body(Full::new(bytes)).unwrap())
}
