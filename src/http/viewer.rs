//! `GET /v1/me`: what playgate makes of a viewer token — subject, issuer,
//! tier and country — so players and developers can check a token
//! without playing anything.

use crate::http::auth::ViewerClaims;
use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn me(v: ViewerClaims) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(json!({
            "subject": v.token.subject,
            "issuer": v.token.issuer,
            "tier": v.tier,
            "country": v.country,
            "expires_at": v.token.exp,
        })),
    )
}
