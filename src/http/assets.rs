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
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A page of the asset list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The last id of the previous page.
    after: Option<AssetId>,
    /// 1 to 500 (default 50).
    limit: Option<usize>,
}

/// What an operator sets on an asset (`status` is the pipeline's).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetEdit {
    #[serde(default)]
    title: Option<String>,
    /// The lowest tier (by rank) that may play it.
    #[serde(default)]
    min_tier: Option<TierName>,
}

/// An asset as the API shows it: the stored record without its wrapped
/// keys; `encryption` names the current version's protected renditions.
#[derive(Serialize, ToSchema)]
pub struct AssetView<'a> {
    id: &'a AssetId,
    title: Option<&'a str>,
    min_tier: Option<&'a TierName>,
    status: AssetStatus,
    /// The published version playback reads.
    current_version: Option<u32>,
    renditions: &'a [String],
    /// The current version's frame captures under `thumbs/`.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    thumbnails: &'a [String],
    failure: Option<&'a str>,
    /// Which tiers can play the current version, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    playability: Option<&'a crate::engine::playability::Playability>,
    source: Option<&'a crate::backends::store::SourceObject>,
    encryption: Option<Encryption<'a>>,
    /// Epoch seconds.
    created_at: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Encryption<'a> {
    #[schema(example = "AES-128")]
    method: &'static str,
    renditions: Vec<&'a str>,
}

fn view(asset: &Asset) -> AssetView<'_> {
    let current: Vec<&str> = asset
        .content_keys
        .iter()
        .filter(|k| Some(k.version) == asset.current_version)
        .map(|k| k.rendition.as_str())
        .collect();
    AssetView {
        id: &asset.id,
        title: asset.title.as_deref(),
        min_tier: asset.min_tier.as_ref(),
        status: asset.status,
        current_version: asset.current_version,
        renditions: &asset.renditions,
        thumbnails: &asset.thumbnails,
        failure: asset.failure.as_deref(),
        playability: asset.playability.as_ref(),
        source: asset.source.as_ref(),
        encryption: (!current.is_empty()).then_some(Encryption {
            method: "AES-128",
            renditions: current,
        }),
        created_at: asset.created_at,
    }
}

/// One asset; `revision` is also the `ETag`; `thumbnails` signed for
/// `signing.default_ttl`.
#[derive(Serialize, ToSchema)]
pub struct AssetOne<'a> {
    asset: AssetView<'a>,
    revision: u64,
    thumbnails: Option<crate::playback::Thumbnails>,
}

#[derive(Serialize, ToSchema)]
pub struct AssetItem<'a> {
    asset: AssetView<'a>,
    revision: u64,
}

/// A page of assets in id order; `next` is the `after` of the next page.
#[derive(Serialize, ToSchema)]
pub struct AssetPage<'a> {
    assets: Vec<AssetItem<'a>>,
    next: Option<AssetId>,
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
        AssetOne {
            asset: view(asset),
            revision,
            thumbnails,
        },
        revision,
    )
}

/// Assets in id order, a page at a time.
#[utoipa::path(get, path = "/v1/assets", tag = "assets", security(("admin" = [])),
    params(Page),
    responses((status = 200, description = "A page", body = AssetPage)))]
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
        .map(|v| AssetItem {
            asset: view(&v.value),
            revision: v.revision,
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(AssetPage {
            assets: items,
            next,
        }),
    )
        .into_response())
}

/// One asset.
#[utoipa::path(get, path = "/v1/assets/{id}", tag = "assets", security(("admin" = [])),
    params(("id" = String, Path, description = "The asset")),
    responses((status = 200, description = "The asset; `ETag` is its revision", body = AssetOne)))]
pub async fn get(
    State(state): State<AppState>,
    _a: AdminClaims,
    Path(id): Path<AssetId>,
) -> Result<Response> {
    let v = state.store.get_asset(&id).await?.ok_or(Error::NotFound)?;
    Ok(one(&state, &v.value, v.revision))
}

/// Creates an asset or sets its title and `min_tier` (`If-Match` to update).
#[utoipa::path(put, path = "/v1/assets/{id}", tag = "assets", security(("admin" = [])),
    params(("id" = String, Path, description = "The asset")),
    request_body = AssetEdit,
    responses((status = 200, description = "Updated", body = AssetOne),
        (status = 201, description = "Created", body = AssetOne)))]
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

/// Marks the asset deleted, shreds its content keys and invalidates it at
/// the CDN (503: repeat the DELETE).
#[utoipa::path(delete, path = "/v1/assets/{id}", tag = "assets", security(("admin" = [])),
    params(("id" = String, Path, description = "The asset")),
    responses((status = 204, description = "Deleted")))]
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

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    axum::Router::new()
        .route("/v1/assets", axum::routing::get(list))
        .route(
            "/v1/assets/{id}",
            axum::routing::get(get).put(put).delete(delete),
        )
}
