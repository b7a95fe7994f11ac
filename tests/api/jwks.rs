//! JWKS issuers against a JWKS server on loopback: rotation, one refetch
//! for an unknown kid, a flood of unknown kids rate-limited, and an
//! unreachable JWKS keeping the last good keys while `/readyz` says so.

use crate::helpers::{now, problem, spawn_app_edited};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Idp {
    keys: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

fn rsa() -> (Vec<u8>, openssl::rsa::Rsa<openssl::pkey::Private>) {
    let r = openssl::rsa::Rsa::generate(2048).unwrap();
    (r.private_key_to_pem().unwrap(), r)
}

fn jwk(kid: &str, r: &openssl::rsa::Rsa<openssl::pkey::Private>) -> Value {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
           "n": b.encode(r.n().to_vec()), "e": b.encode(r.e().to_vec())})
}

fn token(kid: &str, pem: &[u8]) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    let claims = json!({"iss": "https://idp.test/", "aud": "playgate", "sub": "u", "exp": now() + 600, "tier": "free"});
    jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap(),
    )
    .unwrap()
}

async fn start_idp(idp: Arc<Idp>) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/jwks.json",
        get(move || {
            let idp = idp.clone();
            async move {
                idp.fetches.fetch_add(1, Ordering::SeqCst);
                if idp.down.load(Ordering::SeqCst) {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                }
                let keys = idp.keys.lock().unwrap().clone();
                (
                    axum::http::StatusCode::OK,
                    json!({ "keys": keys }).to_string(),
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn jwks_rotation_refetch_limits_and_outage() {
    let (pem1, k1) = rsa();
    let (pem2, k2) = rsa();
    let idp = Arc::new(Idp {
        keys: Mutex::new(vec![jwk("k1", &k1)]),
        fetches: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let addr = start_idp(idp.clone()).await;
    let app = spawn_app_edited(
        "",
        |t| format!("{t}\n[[auth.issuers]]\nname = \"idp\"\nissuer = \"https://idp.test/\"\naudience = \"playgate\"\njwks_url = \"http://{addr}/jwks.json\"\njwks_min_refetch = \"2s\"\n"),
        axum::Router::new(),
    )
    .await;
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        1,
        "fetched once at start"
    );
    assert_eq!(
        app.get_bearer("/v1/me", &token("k1", &pem1)).await.status(),
        200
    );
    assert_eq!(app.readyz().await.status(), 200);

    // Rotation: the IdP starts signing with k2; the first k2 token causes one refetch.
    idp.keys.lock().unwrap().push(jwk("k2", &k2));
    assert_eq!(
        app.get_bearer("/v1/me", &token("k2", &pem2)).await.status(),
        200
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);

    // A flood of unknown kids right after: no further refetch within the interval.
    let mut flood = Vec::new();
    for i in 0..20 {
        let t = token(&format!("nope-{i}"), &pem2);
        let (client, url) = (app.client.clone(), app.url("/v1/me"));
        flood.push(tokio::spawn(async move {
            client.get(url).bearer_auth(t).send().await.unwrap()
        }));
    }
    for r in flood {
        let (status, _) = problem(r.await.unwrap()).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        2,
        "unknown kids are rate-limited"
    );

    // The IdP goes down: the next allowed refetch fails, the last good keys stay.
    idp.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = problem(app.get_bearer("/v1/me", &token("k3", &pem2)).await).await;
    assert_eq!(status, 401);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
    assert_eq!(
        app.get_bearer("/v1/me", &token("k1", &pem1)).await.status(),
        200,
        "last good keys kept"
    );
    let (status, body) = problem(app.readyz().await).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["jwks"], "failed");
}
