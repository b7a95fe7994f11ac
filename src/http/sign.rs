//! Signing for backends (`playgate:sign`):
//! - `POST /v1/sign/cookies {asset, tier, viewer_ip?, ttl?}`: the cookies a
//!   viewer of that tier needs for that asset (the same grants the master
//!   endpoint sets), with ready `Set-Cookie` strings;
//! - `POST /v1/sign/urls {urls | resource, expires | ttl, ip?}`: signed
//!   URLs (canned policy unless an IP is bound), or one custom-policy
//!   signature for a wildcard resource.
//!
//! Only one asset's published output is signed,
//! `{cdn.base_url}/assets/{id}/v{n}/…` with `v{n}` published: playgate's key
//! is the CDN's key, so a grant across assets, of the uploaded originals
//! (`source/`), or with dot segments or encoded separators is refused
//! before anything is signed (`cdn::grant_target`).
//! Lifetimes are capped by the tier's `signature_ttl` (cookies) and by
//! `signing.max_ttl`; a batch by `signing.max_batch`.

use crate::config::HumanDuration;
use crate::domain::{AssetId, TierName};
use crate::engine::cloudfront::policy::Cidr;
use crate::engine::cloudfront::signer::{SignOptions, Signature, sign_url};
use crate::http::auth::ServiceClaims;
use crate::http::extract::Json;
use crate::http::problem::{Error, Result};
use crate::playback::CookieGrant;
use crate::playback::{Format, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;
use utoipa::ToSchema;

/// Which cookies to sign: a tier's grant for one asset.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieRequest {
    #[schema(example = "a1b2c3")]
    asset: AssetId,
    #[schema(example = "premium")]
    tier: TierName,
    /// Required when the tier binds signatures to the viewer's address.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "203.0.113.7")]
    viewer_ip: Option<IpAddr>,
    /// At most the tier's `signature_ttl` and `signing.max_ttl`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2h")]
    ttl: Option<HumanDuration>,
}

/// The cookies a viewer of the tier needs for the asset, with ready
/// `Set-Cookie` values.
#[derive(Serialize, ToSchema)]
pub struct SignedCookies<'a> {
    asset: AssetId,
    tier: TierName,
    /// Epoch seconds.
    expires_at: u64,
    /// The allowed renditions' playlist URLs.
    renditions: &'a [String],
    cookies: &'a [CookieGrant],
    set_cookie: Vec<&'a str>,
}

/// Signed URLs, or one custom-policy signature for a wildcard resource.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SignedUrls {
    Urls {
        /// Epoch seconds.
        expires_at: u64,
        urls: Vec<String>,
    },
    Resource {
        /// Epoch seconds.
        expires_at: u64,
        resource: String,
        /// Append to any URL the resource matches.
        query: String,
        /// The same grant as CloudFront cookies.
        cookies: BTreeMap<String, String>,
    },
}

fn no_store(body: impl Serialize) -> Response {
    (
        [(header::CACHE_CONTROL, "private, no-store")],
        axum::Json(body),
    )
        .into_response()
}

fn check_ttl(field: &str, ttl: Duration, max: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > max {
        return Err(Error::bad_request(
            field,
            format!(
                "{field} must be more than zero and at most {}",
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(())
}

/// The cookies a tier's viewer needs for an asset (the grants the master
/// endpoint sets).
#[utoipa::path(post, path = "/v1/sign/cookies", tag = "signing",
    security(("service" = [])), request_body = CookieRequest,
    responses((status = 200, description = "The cookies", body = SignedCookies)))]
pub async fn cookies(
    State(state): State<AppState>,
    ServiceClaims(who): ServiceClaims,
    Json(req): Json<CookieRequest>,
) -> Result<Response> {
    let rules =
        state.tiers.get(&req.tier).await?.ok_or_else(|| {
            Error::bad_request("body.tier", format!("no tier named {}", req.tier))
        })?;
    let max = rules
        .signature_ttl
        .map(|d| d.0)
        .unwrap_or(state.config.signing.default_ttl)
        .min(state.config.signing.max_ttl);
    if let Some(t) = req.ttl {
        check_ttl("body.ttl", t.0, max)?;
    }
    if rules.bind_ip && req.viewer_ip.is_none() {
        return Err(Error::bad_request(
            "body.viewer_ip",
            format!(
                "tier {} binds signatures to the viewer's IP; send viewer_ip",
                req.tier
            ),
        ));
    }
    let viewer = Viewer {
        tier: &req.tier,
        rules: &rules,
        ip: req.viewer_ip,
        ttl: req.ttl.map(|d| d.0),
    };
    let ent = state
        .play
        .authorise(
            &req.asset,
            &viewer,
            Format::Hls,
            crate::engine::tiers::Delivery::Cookies,
        )
        .await?;
    if ent.delivery != crate::engine::tiers::Delivery::Cookies {
        return Err(Error::DeliveryUnavailable(format!(
            "This asset cannot be played with cookie delivery: its layout has no directory per rendition. Tier {} falls back to URL delivery: send its viewers to the master URL.",
            req.tier
        )));
    }
    let cookies = &ent.cookies;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "sign.cookies", asset = %req.asset, tier = %req.tier, "signed cookies");
    Ok(no_store(SignedCookies {
        set_cookie: cookies.iter().map(|c| c.set_cookie.as_str()).collect(),
        cookies,
        asset: req.asset,
        tier: req.tier,
        expires_at: ent.expires,
        renditions: &ent.renditions,
    }))
}

/// What to sign: `urls` (one signed URL each) or `resource` (a wildcard
/// pattern, one custom-policy signature); `expires` or `ttl`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlRequest {
    #[serde(default)]
    urls: Option<Vec<String>>,
    /// A wildcard pattern (`https://cdn…/assets/a/v1/hls/720p/*`).
    #[serde(default)]
    resource: Option<String>,
    /// Epoch seconds.
    #[serde(default)]
    expires: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "1h")]
    ttl: Option<HumanDuration>,
    /// An IPv4 address or CIDR the signature is bound to.
    #[serde(default)]
    ip: Option<String>,
}

/// Checks grants against the store: each names a version that exists and
/// was published (an asset read once per batch).
#[derive(Default)]
struct Published(std::collections::HashMap<AssetId, Option<u32>>);

impl Published {
    async fn check(
        &mut self,
        state: &AppState,
        field: &str,
        text: &str,
        pattern: bool,
    ) -> Result<()> {
        let (id, version) =
            crate::backends::cdn::grant_target(&state.config.cdn.base_url, text, pattern)
                .map_err(|why| Error::bad_request(field, why))?;
        let current = match self.0.get(&id) {
            Some(c) => *c,
            None => {
                let asset = crate::backends::store::StoreExt::get_asset(state.store.as_ref(), &id)
                    .await?
                    .map(|v| v.value);
                let c = asset
                    .filter(|a| a.status != crate::backends::store::AssetStatus::Deleted)
                    .and_then(|a| a.current_version);
                self.0.insert(id.clone(), c);
                c
            }
        };
        if current.is_some_and(|c| version <= c) {
            Ok(())
        } else {
            Err(Error::bad_request(
                field,
                format!("asset {id} has no published version v{version}"),
            ))
        }
    }
}

/// Signed URLs, or a custom-policy signature for a wildcard resource, of
/// one asset's published output.
#[utoipa::path(post, path = "/v1/sign/urls", tag = "signing",
    security(("service" = [])), request_body = UrlRequest,
    responses((status = 200, description = "The signatures", body = SignedUrls)))]
pub async fn urls(
    State(state): State<AppState>,
    ServiceClaims(who): ServiceClaims,
    Json(req): Json<UrlRequest>,
) -> Result<Response> {
    let signing = &state.config.signing;
    let now = state.clock.now_epoch();
    let expires = match (req.expires, req.ttl) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request(
                "body.ttl",
                "send expires or ttl, not both",
            ));
        }
        (Some(e), None) => {
            check_ttl(
                "body.expires",
                Duration::from_secs(e.saturating_sub(now)),
                signing.max_ttl,
            )?;
            e
        }
        (None, ttl) => {
            let ttl = ttl.map(|d| d.0).unwrap_or(signing.default_ttl);
            check_ttl("body.ttl", ttl, signing.max_ttl)?;
            crate::engine::authorise::expiry(now, ttl, Duration::from_secs(1))
        }
    };
    let ip = match &req.ip {
        None => None,
        Some(s) => Some(Cidr::parse(s).map_err(|e| Error::bad_request("body.ip", e.to_string()))?),
    };
    let opts = SignOptions {
        expires,
        ip,
        hash: signing.hash,
        ..SignOptions::default()
    };
    let key = state.keys.active();
    let body = match (&req.urls, &req.resource) {
        (Some(urls), None) => {
            if urls.is_empty() || urls.len() > signing.max_batch {
                return Err(Error::bad_request(
                    "body.urls",
                    format!("send between 1 and {} URLs", signing.max_batch),
                ));
            }
            let mut signed = Vec::with_capacity(urls.len());
            let mut published = Published::default();
            for (i, u) in urls.iter().enumerate() {
                let field = format!("body.urls[{i}]");
                published.check(&state, &field, u, false).await?;
                signed.push(
                    sign_url(key, u, &opts)
                        .map_err(|e| Error::bad_request(field, e.to_string()))?,
                );
            }
            SignedUrls::Urls {
                expires_at: expires,
                urls: signed,
            }
        }
        (None, Some(pattern)) => {
            Published::default()
                .check(&state, "body.resource", pattern, true)
                .await?;
            let sig = Signature::for_resource(key, pattern, &opts)
                .map_err(|e| Error::bad_request("body.resource", e.to_string()))?;
            SignedUrls::Resource {
                expires_at: expires,
                resource: pattern.clone(),
                query: sig.query(),
                cookies: sig
                    .cookies()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            }
        }
        _ => {
            return Err(Error::bad_request(
                "body.urls",
                "send either urls or resource",
            ));
        }
    };
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "sign.urls", "signed URLs");
    Ok(no_store(body))
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/sign/cookies", post(cookies))
        .route("/v1/sign/urls", post(urls))
}
