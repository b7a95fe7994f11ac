//! `POST /hooks/mediaconvert`: EventBridge "MediaConvert Job State Change"
//! events through an API destination. The request must carry
//! `x-playgate-hook-secret` equal to `notify.mediaconvert_hook_secret`
//! (SHA-256 digests compared in constant time, so neither the secret's
//! bytes nor its length leak; 401 otherwise; without a configured secret
//! the route is 404). Events that are not MediaConvert's, or not for one of
//! our jobs, are answered 200 `{"applied": false}` so EventBridge does not
//! retry them; duplicates and stale events change nothing.

use crate::http::problem::{Error, Result};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

/// Whether the event changed a job (`false`: not a MediaConvert job event,
/// or one about a job playgate does not know).
#[derive(Serialize, ToSchema)]
pub struct HookResult {
    applied: bool,
}
use subtle::ConstantTimeEq;

pub const SECRET_HEADER: &str = "x-playgate-hook-secret";

/// Compares fixed-size SHA-256 digests in constant time: comparing the
/// raw values would return early on a length mismatch, telling an
/// attacker the secret's length.
fn secret_matches(presented: &[u8], secret: &[u8]) -> bool {
    let (a, b) = (
        openssl::sha::sha256(presented),
        openssl::sha::sha256(secret),
    );
    bool::from(a.ct_eq(&b))
}

/// EventBridge MediaConvert job events (an API destination), authenticated
/// by the `x-playgate-hook-secret` header; 404 when no secret is configured.
#[utoipa::path(post, path = "/hooks/mediaconvert", tag = "pipeline",
    security(("hook" = [])),
    request_body(content = Object, description = "An EventBridge event", content_type = "application/json"),
    responses((status = 200, description = "Taken", body = HookResult)))]
pub async fn mediaconvert(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HookResult>> {
    let Some(secret) = &state.config.notify.mediaconvert_hook_secret else {
        return Err(Error::NotFound);
    };
    let presented = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !secret_matches(presented, secret.expose().as_bytes()) {
        return Err(Error::Unauthorized(
            "The hook secret is missing or wrong.".into(),
        ));
    }
    let event: crate::pipeline::events::Event = crate::http::extract::parse_json(&body)?;
    if !event.is_mediaconvert() {
        return Ok(Json(HookResult { applied: false }));
    }
    let applied = state.pipeline.on_backend_event(&event).await?;
    Ok(Json(HookResult { applied }))
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::post;
    axum::Router::new().route("/hooks/mediaconvert", post(mediaconvert))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fastest of many runs of `f`, in nanoseconds (the minimum is what
    /// the code costs; noise only adds).
    fn fastest(f: impl Fn() -> bool) -> u128 {
        (0..3000)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_nanos()
            })
            .min()
            .unwrap_or(0)
    }

    #[test]
    fn comparison_time_does_not_depend_on_the_length() {
        let secret = [b'k'; 48];
        assert!(secret_matches(&secret, &secret));
        assert!(!secret_matches(&secret[..47], &secret));
        assert!(!secret_matches(b"", &secret));
        // A wrong guess of the right length against one of another length:
        // with a plain comparison the second returns at the length check,
        // many times faster (seen: 976 ns against 37 ns, debug build).
        let same_len = [b'x'; 48];
        let short = [b'k'; 3];
        let a = fastest(|| secret_matches(&same_len, &secret));
        let b = fastest(|| secret_matches(&short, &secret));
        let ratio = a.max(b) as f64 / a.min(b).max(1) as f64;
        assert!(ratio < 3.0, "same length {a} ns, other length {b} ns");
    }
}
