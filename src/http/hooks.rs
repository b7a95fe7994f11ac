//! `POST /hooks/mediaconvert`: EventBridge "MediaConvert Job State Change"
//! events through an API destination. The request must carry
//! `x-playgate-hook-secret` equal to `notify.mediaconvert_hook_secret`
//! (compared in constant time; 401 otherwise; without a configured secret
//! the route is 404). Events that are not MediaConvert's, or not for one of
//! our jobs, are answered 200 `{"applied": false}` so EventBridge does not
//! retry them; duplicates and stale events change nothing.

use crate::error::{Error, Result};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

pub const SECRET_HEADER: &str = "x-playgate-hook-secret";

pub async fn mediaconvert(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>> {
    let Some(secret) = &state.config.notify.mediaconvert_hook_secret else {
        return Err(Error::NotFound);
    };
    let presented = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(presented.ct_eq(secret.expose().as_bytes())) {
        return Err(Error::Unauthorized(
            "The hook secret is missing or wrong.".into(),
        ));
    }
    let event: crate::pipeline::events::Event = crate::http::extract::parse_json(&body)?;
    if !event.is_mediaconvert() {
        return Ok(Json(json!({"applied": false})));
    }
    let applied = state.pipeline.on_backend_event(&event).await?;
    Ok(Json(json!({"applied": applied})))
}
