//! `GET /v1/me`: what playgate makes of a viewer token — subject, issuer,
//! tier and country — so players and developers can check a token
//! without playing anything.

use crate::domain::TierName;
use crate::http::auth::ViewerClaims;
use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// What playgate makes of the caller's viewer token.
#[derive(Serialize, ToSchema)]
pub struct Me<'a> {
    subject: &'a str,
    issuer: &'a str,
    tier: &'a TierName,
    /// ISO 3166-1 alpha-2, when known.
    country: Option<&'a str>,
    /// Epoch seconds.
    expires_at: u64,
}

#[utoipa::path(get, path = "/v1/me", tag = "viewers", security(("viewer" = [])),
    responses((status = 200, description = "The token as playgate reads it", body = Me)))]
pub async fn me(v: ViewerClaims) -> Response {
    (
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(Me {
            subject: &v.token.subject,
            issuer: &v.token.issuer,
            tier: &v.tier,
            country: v.country.as_deref(),
            expires_at: v.token.exp,
        }),
    )
        .into_response()
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/v1/me", get(me))
}
