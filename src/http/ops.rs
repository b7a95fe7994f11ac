//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! store, object storage and signing keys all work; 503 naming the ones
//! that do not) and `/metrics` (Prometheus text).

use crate::http::problem::{Error, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"status": "ok"})),
    )
}

/// Signs and verifies a fixed message with the active key.
fn keys_work(state: &AppState) -> Result<(), String> {
    use crate::engine::cloudfront::verifier::{Credentials, verify};
    let key = state.keys.active();
    let probe = "https://readyz.invalid/probe";
    let opts = crate::engine::cloudfront::signer::SignOptions {
        expires: u64::MAX / 2,
        hash: state.config.signing.hash,
        ..Default::default()
    };
    let sig = crate::engine::cloudfront::signer::Signature::for_url(key, probe, &opts)
        .map_err(|e| e.to_string())?;
    let creds = Credentials::from(&sig);
    verify(
        state.keys.public_keys(),
        probe,
        &creds,
        None,
        state.clock.now_epoch(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let (store, objects) = tokio::join!(state.store.check(), state.objects.check());
    let keys = keys_work(&state);
    let jwks = state.auth.issuers.jwks();
    let mut results = vec![
        ("store", store.map_err(|e| e.to_string())),
        ("storage", objects.map_err(|e| e.to_string())),
        ("keys", keys),
    ];
    if !jwks.is_empty() {
        let down: Vec<&str> = jwks
            .iter()
            .filter(|j| !j.healthy())
            .map(|j| j.issuer.as_str())
            .collect();
        let r = if down.is_empty() {
            Ok(())
        } else {
            Err(format!("JWKS unreachable: {}", down.join(", ")))
        };
        results.push(("jwks", r));
    }
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(()) => {
                checks.insert(name.into(), json!("ok"));
            }
            Err(why) => {
                tracing::warn!(check = name, reason = %why, "readiness check failed");
                checks.insert(name.into(), json!("failed"));
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        return (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"status": "ready", "checks": checks})),
        )
            .into_response();
    }
    let mut p: Problem = Error::Unavailable(failed.join(", ")).to_problem();
    p.title = "Not ready".into();
    p.detail = format!("Failing: {}.", failed.join(", "));
    p.into_response_with(Some(json!({ "checks": checks })))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        state.metrics.render(),
    )
        .into_response()
}
