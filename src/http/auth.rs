//! Who may call what: extractors that authenticate the caller and check
//! what the route needs. Rejections are problem+json: 401 (with
//! `WWW-Authenticate: Bearer error="invalid_token"`) for missing or bad
//! credentials, 403 for a valid caller without the right scope or tier.
//! Why a token failed is logged (never the token); the client is told only
//! that it failed.

use crate::auth::jwt::Verified;
use crate::auth::{AuthFailure, Principal, SCOPE_ADMIN, SCOPE_INGEST, SCOPE_SIGN};
use crate::domain::TierName;
use crate::engine::tiers::TierRules;
use crate::http::problem::Error;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

const BAD_CREDENTIALS: &str = "The credentials are missing, invalid or expired.";

/// The bearer credential, and whether `?token=` may carry it instead.
fn credential(parts: &Parts, allow_query: bool) -> Result<String, Error> {
    if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
        if h.len() > crate::auth::jwt::MAX_TOKEN_BYTES + 16 {
            return Err(Error::Unauthorized("The credential is too large.".into()));
        }
        let value = h
            .to_str()
            .map_err(|_| Error::Unauthorized(BAD_CREDENTIALS.into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Error::Unauthorized("Use the Bearer scheme.".into()))?;
        return Ok(token.trim().to_owned());
    }
    let query_token = parts.uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    match query_token {
        Some(t) if allow_query => Ok(t),
        Some(_) => Err(Error::Unauthorized(
            "Tokens in the query string are accepted only on master playlist requests; send Authorization: Bearer."
                .into(),
        )),
        None => Err(Error::Unauthorized("Send Authorization: Bearer <token>.".into())),
    }
}

async fn authenticate(
    parts: &Parts,
    state: &AppState,
    allow_query: bool,
) -> Result<Principal, Error> {
    let cred = credential(parts, allow_query)?;
    state
        .auth
        .authenticate(&cred, state.clock.now_epoch())
        .await
        .map_err(|e: AuthFailure| {
            tracing::info!(reason = %e, "authentication failed");
            Error::Unauthorized(BAD_CREDENTIALS.into())
        })
}

fn require(p: Principal, scope: &str) -> Result<Principal, Error> {
    if p.has_scope(scope) {
        Ok(p)
    } else {
        Err(Error::Forbidden(format!("This needs the {scope} scope.")))
    }
}

macro_rules! scoped {
    ($(#[$m:meta])* $name:ident, $scope:expr) => {
        $(#[$m])*
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Error;
            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
                let p = authenticate(parts, state, false).await?;
                require(p, $scope).map($name)
            }
        }
    };
}

scoped!(
    /// Operators: `playgate:admin`.
    AdminClaims, SCOPE_ADMIN
);
scoped!(
    /// Backends that sign: `playgate:sign`.
    ServiceClaims, SCOPE_SIGN
);
scoped!(
    /// Backends that upload: `playgate:ingest`.
    IngestClaims, SCOPE_INGEST
);

/// A viewer with a known tier, allowed in their country.
pub struct ViewerClaims {
    pub token: Arc<Verified>,
    pub tier: TierName,
    pub rules: Arc<TierRules>,
    pub country: Option<String>,
}

/// The same as `ViewerClaims`, but also accepts `?token=` (master
/// playlist requests from players that cannot set headers).
pub struct MasterViewerClaims(pub ViewerClaims);

/// The viewer's country, believed only from a trusted proxy.
pub fn viewer_country(parts: &Parts, state: &AppState) -> Option<String> {
    let server = &state.config.server;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let peer = match peer {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
    };
    if !server.trusted_proxies.iter().any(|c| c.contains(peer)) {
        return None;
    }
    let v = parts
        .headers
        .get(server.country_header.as_str())?
        .to_str()
        .ok()?
        .trim();
    (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic())).then(|| v.to_ascii_uppercase())
}

async fn viewer(parts: &Parts, state: &AppState, allow_query: bool) -> Result<ViewerClaims, Error> {
    let token = match authenticate(parts, state, allow_query).await? {
        Principal::Token(v) => v,
        Principal::ApiKey { .. } => {
            return Err(Error::Forbidden(
                "Viewer requests need a viewer token.".into(),
            ));
        }
    };
    let tier = match (&token.tier, token.bad_tier) {
        (Some(t), _) => t.clone(),
        (None, true) => return Err(Error::Forbidden("The token names an unknown tier.".into())),
        (None, false) => {
            return Err(Error::Forbidden(
                "The token carries no tier and its issuer has no default tier.".into(),
            ));
        }
    };
    let rules = state
        .tiers
        .get(&tier)
        .await?
        .ok_or_else(|| Error::Forbidden("The token names an unknown tier.".into()))?;
    let country = viewer_country(parts, state);
    if !rules.allows_country(country.as_deref()) {
        return Err(Error::Forbidden(
            "This tier is not available in your country.".into(),
        ));
    }
    Ok(ViewerClaims {
        token,
        tier,
        rules,
        country,
    })
}

impl FromRequestParts<AppState> for ViewerClaims {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        viewer(parts, state, false).await
    }
}

impl FromRequestParts<AppState> for MasterViewerClaims {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        viewer(parts, state, true).await.map(MasterViewerClaims)
    }
}
