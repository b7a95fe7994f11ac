//! Tier rules admin API (`playgate:admin`). Reads and writes go to the
//! store with compare-and-set on the revision, exposed as a strong ETag:
//! `PUT` creates with no precondition (or `If-None-Match: *`) and updates
//! only with a matching `If-Match` (428 without one, 412 when stale).
//! Every change writes one audit log line: who, what, old → new.

use crate::backends::store::{Expect, StoreExt};
use crate::domain::TierName;
use crate::engine::tiers::TierRules;
use crate::http::auth::AdminClaims;
use crate::http::extract::Path;
use crate::http::problem::{Error, Result};
use crate::http::versioned::{expectation, json_with_etag, put_expectation};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Tier rules from a JSON body: every field checked as in the config, and
/// every lifetime within `signing.max_ttl` (`max`).
fn rules_from_body(body: &[u8], max: std::time::Duration) -> Result<TierRules> {
    let json: serde_json::Value = crate::http::extract::parse_json(body)?;
    let serde_json::Value::Object(_) = &json else {
        return Err(Error::bad_request(
            "body",
            "The body must be a JSON object of tier rules.",
        ));
    };
    let table = toml::Table::try_from(&json)
        .map_err(|_| Error::bad_request("body", "Tier rules take no null values."))?;
    let as_problem = |list: Vec<(String, String)>| {
        Error::Invalid(
            list.into_iter()
                .map(|(f, r)| (format!("body.{f}"), r))
                .collect(),
        )
    };
    let rules = crate::config::read_tier_rules(table).map_err(as_problem)?;
    let too_long: Vec<(String, String)> = rules
        .lifetime_problems(max)
        .into_iter()
        .map(|(f, r)| (f.to_owned(), r))
        .collect();
    if too_long.is_empty() {
        Ok(rules)
    } else {
        Err(as_problem(too_long))
    }
}

/// A tier and its rules; `revision` is also the `ETag`.
#[derive(Serialize, ToSchema)]
pub struct Tier<'a> {
    #[schema(example = "premium")]
    name: &'a TierName,
    revision: u64,
    rules: &'a TierRules,
}

#[derive(Serialize, ToSchema)]
pub struct TierList<'a> {
    tiers: Vec<Tier<'a>>,
}

fn one(name: &TierName, rules: &TierRules, revision: u64) -> Response {
    json_with_etag(
        Tier {
            name,
            revision,
            rules,
        },
        revision,
    )
}

/// Every tier.
#[utoipa::path(get, path = "/v1/tiers", tag = "tiers", security(("admin" = [])),
    responses((status = 200, description = "The tiers", body = TierList)))]
pub async fn list(State(state): State<AppState>, _admin: AdminClaims) -> Result<Response> {
    let tiers = state.store.list_tiers().await?;
    let items: Vec<_> = tiers
        .iter()
        .map(|(n, v)| Tier {
            name: n,
            revision: v.revision,
            rules: &v.value,
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(TierList { tiers: items }),
    )
        .into_response())
}

/// One tier.
#[utoipa::path(get, path = "/v1/tiers/{name}", tag = "tiers", security(("admin" = [])),
    params(("name" = String, Path, description = "The tier")),
    responses((status = 200, description = "The tier; `ETag` is its revision", body = Tier)))]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminClaims,
    Path(name): Path<TierName>,
) -> Result<Response> {
    let v = state.store.get_tier(&name).await?.ok_or(Error::NotFound)?;
    Ok(one(&name, &v.value, v.revision))
}

/// Creates a tier (no precondition, or `If-None-Match: *`) or replaces its
/// rules (`If-Match` with the current revision: 428 without, 412 when stale).
#[utoipa::path(put, path = "/v1/tiers/{name}", tag = "tiers", security(("admin" = [])),
    params(("name" = String, Path, description = "The tier")),
    request_body = TierRules,
    responses((status = 200, description = "Updated", body = Tier),
        (status = 201, description = "Created", body = Tier)))]
pub async fn put(
    State(state): State<AppState>,
    AdminClaims(who): AdminClaims,
    Path(name): Path<TierName>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let rules = rules_from_body(&body, state.config.signing.max_ttl)?;
    let old = state.store.get_tier(&name).await?;
    let expect = put_expectation(&headers, old.is_some(), "tier")?;
    let revision = state.store.put_tier(&name, &rules, expect).await?;
    state.tiers.invalidate(&name).await;
    tracing::info!(
        target: "playgate::audit",
        who = %who.who(),
        action = if old.is_some() { "tier.update" } else { "tier.create" },
        tier = %name,
        old = %old.as_ref().map(|o| serde_json::to_string(&o.value).unwrap_or_default()).unwrap_or_else(|| "-".into()),
        new = %serde_json::to_string(&rules).unwrap_or_default(),
        revision,
        "tier changed"
    );
    let mut resp = one(&name, &rules, revision);
    if old.is_none() {
        *resp.status_mut() = StatusCode::CREATED;
    }
    Ok(resp)
}

/// Deletes a tier (`If-Match` optional).
#[utoipa::path(delete, path = "/v1/tiers/{name}", tag = "tiers", security(("admin" = [])),
    params(("name" = String, Path, description = "The tier")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    AdminClaims(who): AdminClaims,
    Path(name): Path<TierName>,
    headers: HeaderMap,
) -> Result<Response> {
    let old = state.store.get_tier(&name).await?.ok_or(Error::NotFound)?;
    let expect = expectation(&headers)?.unwrap_or(Expect::Revision(old.revision));
    state
        .store
        .delete(crate::backends::store::Kind::Tier, name.as_str(), expect)
        .await?;
    state.tiers.invalidate(&name).await;
    tracing::info!(
        target: "playgate::audit",
        who = %who.who(),
        action = "tier.delete",
        tier = %name,
        old = %serde_json::to_string(&old.value).unwrap_or_default(),
        new = "-",
        "tier changed"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    axum::Router::new()
        .route("/v1/tiers", axum::routing::get(list))
        .route(
            "/v1/tiers/{name}",
            axum::routing::get(get).put(put).delete(delete),
        )
}
