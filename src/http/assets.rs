//! Assets admin API (`playgate:admin`): list (paginated by id), read,
//! create or update title and `min_tier` (status is read-only, set by the
//! pipeline), and delete — which marks the asset deleted so playback
//! refuses it (on this replica at once, on others within
//! `cache.asset_ttl`), keeps the record for audit, and invalidates
//! `/assets/{id}/*` at the CDN (503 if that fails: repeat the DELETE).

use crate::backends::store::{Asset, AssetStatus, Expect, StoreExt};
use crate::domain::{AssetId, TierName};
use crate::http::auth::AdminClaims;
use crate::http::extract::{Path, Query};
use crate::http::problem::{Error, Result};
use crate::http::versioned::{json_with_etag, put_expectation};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct Page {
    after: Option<AssetId>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetEdit {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    min_tier: Option<TierName>,
}

/// An asset as the API shows it: the stored record without its wrapped
/// keys; `encryption` names the current version's protected renditions.
fn view(asset: &Asset) -> serde_json::Value {
    let mut v = serde_json::to_value(asset).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("content_keys");
        let current: Vec<&str> = asset
            .content_keys
            .iter()
            .filter(|k| Some(k.version) == asset.current_version)
            .map(|k| k.rendition.as_str())
            .collect();
        let encryption =
            (!current.is_empty()).then(|| json!({"method": "AES-128", "renditions": current}));
        o.insert("encryption".into(), encryption.unwrap_or_default());
    }
    v
}

fn one(state: &AppState, asset: &Asset, revision: u64) -> Response {
    // Signed for the default lifetime: what an operator or a CMS shows.
    let thumbnails = asset.current_version.and_then(|v| {
        let signing = &state.config.signing;
        let expires = crate::engine::authorise::expiry(
            state.clock.now_epoch(),
            signing.default_ttl,
            signing.expiry_bucket,
        );
        state.play.thumbnails(asset, v, expires)
    });
    json_with_etag(
        json!({"asset": view(asset), "revision": revision, "thumbnails": thumbnails}),
        revision,
    )
}

pub async fn list(
    State(state): State<AppState>,
    _a: AdminClaims,
    Query(p): Query<Page>,
) -> Result<Response> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::bad_request(
            "query.limit",
            "limit must be between 1 and 500",
        ));
    }
    let page = state
        .store
        .list_typed::<Asset>(
            crate::backends::store::Kind::Asset,
            p.after.as_ref().map(|a| a.as_str()),
            limit,
        )
        .await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|v| v.value.id.clone()))
        .flatten();
    let items: Vec<_> = page
        .iter()
        .map(|v| json!({"asset": view(&v.value), "revision": v.revision}))
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"assets": items, "next": next})),
    )
        .into_response())
}

pub async fn get(
    State(state): State<AppState>,
    _a: AdminClaims,
    Path(id): Path<AssetId>,
) -> Result<Response> {
    let v = state.store.get_asset(&id).await?.ok_or(Error::NotFound)?;
    Ok(one(&state, &v.value, v.revision))
}

pub async fn put(
    State(state): State<AppState>,
    AdminClaims(who): AdminClaims,
    Path(id): Path<AssetId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let raw: serde_json::Value = crate::http::extract::parse_json(&body)?;
    if raw.get("status").is_some() {
        return Err(Error::bad_request(
            "body.status",
            "status is read-only; the pipeline sets it",
        ));
    }
    let edit: AssetEdit = crate::http::extract::parse_json(&body)?;
    if let Some(t) = &edit.min_tier
        && state.store.get_tier(t).await?.is_none()
    {
        return Err(Error::bad_request(
            "body.min_tier",
            format!("no tier named {t}"),
        ));
    }
    let old = state.store.get_asset(&id).await?;
    let expect = put_expectation(&headers, old.is_some(), "asset")?;
    let asset = match &old {
        None => Asset {
            id: id.clone(),
            title: edit.title,
            min_tier: edit.min_tier,
            status: AssetStatus::Created,
            current_version: None,
            renditions: Vec::new(),
            thumbnails: Vec::new(),
            failure: None,
            playability: None,
            source: None,
            content_keys: Vec::new(),
            created_at: state.clock.now_epoch(),
        },
        Some(v) => Asset {
            title: edit.title,
            min_tier: edit.min_tier,
            ..v.value.clone()
        },
    };
    let revision = state.store.put_asset(&asset, expect).await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "asset.put", asset = %id, revision, "asset changed");
    let mut resp = one(&state, &asset, revision);
    if old.is_none() {
        *resp.status_mut() = StatusCode::CREATED;
    }
    Ok(resp)
}

pub async fn delete(
    State(state): State<AppState>,
    AdminClaims(who): AdminClaims,
    Path(id): Path<AssetId>,
) -> Result<Response> {
    let v = state.store.get_asset(&id).await?.ok_or(Error::NotFound)?;
    let mut asset = v.value;
    let mut revision = v.revision;
    // Crypto-shredding: the wrapped keys go with the delete, so segments
    // the CDN or anyone still holds can never be decrypted again.
    let shredded = std::mem::take(&mut asset.content_keys);
    if asset.status != AssetStatus::Deleted || !shredded.is_empty() {
        asset.status = AssetStatus::Deleted;
        revision = state
            .store
            .put_asset(&asset, Expect::Revision(v.revision))
            .await?;
        tracing::info!(target: "playgate::audit", who = %who.who(), action = "asset.delete", asset = %id, "asset changed");
    }
    state.play.forget(&id).await;
    if let Some(p) = &state.protection {
        p.forget(&id, &shredded);
    }
    // Every DELETE (a retry too) asks again, with the same reference, so a
    // failed invalidation is fixed by repeating the request.
    match state
        .cdn
        .invalidate_asset(&id, &format!("{id}-deleted-r{revision}"))
        .await
    {
        Ok(Some(inv)) => {
            tracing::info!(target: "playgate::audit", who = %who.who(), action = "asset.invalidate", asset = %id, invalidation = %inv, "CDN invalidation requested");
        }
        Ok(None) => {}
        Err(why) => {
            tracing::warn!(asset = %id, reason = %why, "CDN invalidation failed");
            return Err(Error::Unavailable(format!(
                "the asset is deleted, but the CDN invalidation failed ({why}); repeat the DELETE"
            )));
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
