//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! store, object storage and signing keys all work; 503 naming the ones
//! that do not) and `/metrics` (Prometheus text).

use crate::http::problem::{Error, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Each check: `ok` or `failed`.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    checks: BTreeMap<&'static str, &'static str>,
}

/// The 503 problem names the failing checks, and carries them all.
#[derive(Serialize)]
struct NotReady {
    checks: BTreeMap<&'static str, &'static str>,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Health { status: "ok" }),
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

/// The store, object storage, the signing keys (and JWKS, when used) work;
/// a 503 problem naming the ones that do not.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Ready)))]
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
    let mut checks = BTreeMap::new();
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(()) => {
                checks.insert(name, "ok");
            }
            Err(why) => {
                tracing::warn!(check = name, reason = %why, "readiness check failed");
                checks.insert(name, "failed");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        return (
            [(header::CACHE_CONTROL, "no-store")],
            Json(Ready {
                status: "ready",
                checks,
            }),
        )
            .into_response();
    }
    let mut p: Problem = Error::Unavailable(failed.join(", ")).to_problem();
    p.title = "Not ready".into();
    p.detail = format!("Failing: {}.", failed.join(", "));
    p.into_response_with(serde_json::to_value(NotReady { checks }).ok())
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics", content_type = "text/plain", body = String)))]
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

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}
