//! The operator (`playgate:admin`) and the backend (`playgate:sign`) cannot
//! stretch a signature's life past `signing.max_ttl`, and a panic anywhere
//! is an opaque 500 problem, never a dropped connection.

use crate::helpers::{TestApp, now, problem, spawn_app_edited, with_api_key};
use playgate::backends::store::{Expect, StoreExt};
use serde_json::{Value, json};

const ADMIN: &str = "admin-key-for-lifetimes";
const SIGNER: &str = "signer-key";

async fn app() -> TestApp {
    let app = spawn_app_edited(
        "",
        |t| {
            with_api_key(
                with_api_key(t, ADMIN, "playgate:admin"),
                SIGNER,
                "playgate:sign",
            )
        },
        axum::Router::new().route(
            "/test/panic",
            axum::routing::get(|| async {
                if now() > 0 {
                    panic!("a handler bug");
                }
                "unreachable"
            }),
        ),
    )
    .await;
    crate::clip::publish(&app, "clip").await;
    app
}

/// `signature_ttl` and `playlist_ttl` above `signing.max_ttl` (24h) are a
/// 400 naming the field, through the admin API and in the config file.
#[tokio::test]
async fn tier_lifetimes_above_the_signing_limit_are_refused() {
    let app = app().await;
    for (field, value) in [
        ("signature_ttl", "5000y"),
        ("signature_ttl", "9000y"),
        ("signature_ttl", "25h"),
        ("playlist_ttl", "2d"),
    ] {
        let resp = app
            .client
            .put(app.url("/v1/tiers/long"))
            .bearer_auth(ADMIN)
            .json(&json!({ field: value }))
            .send()
            .await
            .unwrap();
        let (status, body) = problem(resp).await;
        assert_eq!(status, 400, "{field} = {value}: {body}");
        let named = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["field"] == format!("body.{field}"));
        assert!(named, "{field} = {value}: {body}");
    }
    let ok = app
        .client
        .put(app.url("/v1/tiers/long"))
        .bearer_auth(ADMIN)
        .json(&json!({"signature_ttl": "24h", "playlist_ttl": "1m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201, "at the limit is fine");

    let dir = tempfile::tempdir().unwrap();
    let text = crate::helpers::config_text(dir.path(), "").replace("@ADDR@", "127.0.0.1:8080")
        + "\n[tiers.long]\nsignature_ttl = \"5000y\"\nplaylist_ttl = \"48h\"\n";
    crate::helpers::write_keys(dir.path());
    let errors = match playgate::config::Config::from_toml(
        &text,
        std::path::Path::new("t.toml"),
        Vec::new(),
    ) {
        Ok(_) => panic!("a 5000-year signature_ttl was accepted"),
        Err(e) => e.0,
    };
    let paths: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    for key in ["tiers.long.signature_ttl", "tiers.long.playlist_ttl"] {
        assert!(
            paths.iter().any(|p| p.starts_with(key)),
            "{key} named: {paths:?}"
        );
    }
}

/// Rules already in the store from before the check (written straight to
/// it here) are still capped when used: the master's cookies and the sign
/// API's grants expire within `signing.max_ttl`, and `9000y` (past year
/// 9999) no longer panics while rendering `Expires`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_lifetimes_are_capped_when_signing() {
    let app = app().await;
    let mut rules = playgate::engine::tiers::TierRules {
        rank: 1,
        ..Default::default()
    };
    rules.signature_ttl = Some(playgate::config::HumanDuration(
        std::time::Duration::from_secs(9000 * 365 * 86_400),
    ));
    let tier: playgate::domain::TierName = "eternal".parse().unwrap();
    app.state
        .store
        .put_tier(&tier, &rules, Expect::Absent)
        .await
        .unwrap();
    let limit = now() + 24 * 3600 + 600;

    let master = app
        .get_bearer("/v1/play/clip/master.m3u8", &app.viewer_token("eternal"))
        .await;
    assert_eq!(master.status(), 200);
    for c in master.headers().get_all("set-cookie") {
        let c = c.to_str().unwrap();
        let age: u64 = c
            .split("; ")
            .find_map(|p| p.strip_prefix("Max-Age="))
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        assert!(age <= 24 * 3600 + 600, "{c}");
    }

    let resp = app
        .client
        .post(app.url("/v1/sign/cookies"))
        .bearer_auth(SIGNER)
        .json(&json!({"asset": "clip", "tier": "eternal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["expires_at"].as_u64().unwrap() <= limit,
        "the sign API without ttl: {body}"
    );
    let too_long = app
        .client
        .post(app.url("/v1/sign/cookies"))
        .bearer_auth(SIGNER)
        .json(&json!({"asset": "clip", "tier": "eternal", "ttl": "48h"}))
        .send()
        .await
        .unwrap();
    let (status, p) = problem(too_long).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (400, Some("body.ttl")),
        "{p}"
    );
}

/// A panic in a handler is a 500 problem with the request id; the
/// connection answers, and the next request on it works.
#[tokio::test]
async fn a_panicking_handler_is_an_opaque_500_problem() {
    let app = app().await;
    let resp = app
        .get_with("/test/panic", &[("x-request-id", "panic-req-1")])
        .await;
    let (status, body) = problem(resp).await;
    assert_eq!(status, 500);
    assert_eq!(body["request_id"], "panic-req-1");
    assert!(
        !body.to_string().contains("handler bug"),
        "no internals: {body}"
    );
    assert_eq!(app.healthz().await.status(), 200);
}
