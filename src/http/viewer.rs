//! `GET /v1/me`: what playgate makes of a viewer token — subject, issuer,
//! tier and country — so players and developers can check a token
//! without playing anything.

use crate::http::auth::ViewerClaims;
use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// What playgate makes of the caller's viewer token.
#[derive(Serialize, ToSchema)]
pub struct Me {
    subject: String,
    issuer: String,
    tier: String,
    /// ISO 3166-1 alpha-2, when known.
    country: Option<String>,
    /// Epoch seconds.
    expires_at: u64,
}

#[utoipa::path(get, path = "/v1/me", tag = "viewers", security(("viewer" = [])),
    responses((status = 200, description = "The token as playgate reads it", body = Me)))]
pub async fn me(v: ViewerClaims) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(Me {
            subject: v.token.subject.clone(),
            issuer: v.token.issuer.clone(),
            tier: v.tier.to_string(),
            country: v.country.clone(),
            expires_at: v.token.exp,
        }),
    )
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/v1/me", get(me))
}
