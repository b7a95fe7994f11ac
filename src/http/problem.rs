//! One error type for the HTTP surface, rendered in one place as
//! `application/problem+json` (RFC 9457). Client errors say what was wrong
//! with the request; server errors say only that something failed and give
//! the request id — the real cause goes to the log, never to the body.

use crate::backends::storage::StorageError;
use crate::backends::store::{Expect, StoreError};
use crate::pipeline::runner::PipelineError;
use crate::playback::PlayError;
use crate::playback::origin::OriginError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware for the
    /// whole life of the request so any error can carry it.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        /// The path/query/body field at fault, when there is one.
        field: Option<String>,
    },
    /// Several bad fields at once (validation): each `(field, reason)`.
    #[error("invalid: {0:?}")]
    Invalid(Vec<(String, String)>),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The asset's layout cannot carry the delivery asked for (409); the
    /// detail names the reason and the delivery that would work.
    #[error("delivery unavailable: {0}")]
    DeliveryUnavailable(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("precondition required: {0}")]
    PreconditionRequired(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("overloaded")]
    Overloaded,
    #[error("request timed out")]
    Timeout,
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected. The source is logged, never shown.
    #[error("internal: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn bad_request(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::BadRequest {
            detail: detail.into(),
            field: Some(field.into()),
        }
    }
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } | Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) | Error::DeliveryUnavailable(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Overloaded | Error::Timeout | Error::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Error::BadRequest { .. } => ("bad-request", "The request is not valid"),
            Error::Invalid(_) => ("invalid", "Some fields are not valid"),
            Error::Unauthorized(_) => ("unauthorized", "Authentication is required"),
            Error::Forbidden(_) => ("forbidden", "Access is not allowed"),
            Error::NotFound => ("not-found", "No such resource"),
            Error::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            Error::Conflict(_) => ("conflict", "The request conflicts with current state"),
            Error::DeliveryUnavailable(_) => (
                "delivery-unavailable",
                "This asset cannot be delivered this way",
            ),
            Error::PreconditionFailed(_) => ("precondition-failed", "Precondition failed"),
            Error::PreconditionRequired(_) => ("precondition-required", "Precondition required"),
            Error::PayloadTooLarge(_) => ("payload-too-large", "The request body is too large"),
            Error::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported content type")
            }
            Error::Overloaded => ("overloaded", "The server is busy"),
            Error::Timeout => ("timeout", "The request took too long"),
            Error::Unavailable(_) => ("unavailable", "A dependency is unavailable"),
            Error::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// What the client may read. Server-side failures give nothing away.
    fn public_detail(&self) -> String {
        match self {
            Error::BadRequest { detail, .. } => detail.clone(),
            Error::Invalid(list) => list
                .iter()
                .map(|(f, r)| format!("{f}: {r}"))
                .collect::<Vec<_>>()
                .join("; "),
            Error::Unauthorized(d)
            | Error::Forbidden(d)
            | Error::Conflict(d)
            | Error::DeliveryUnavailable(d)
            | Error::PreconditionFailed(d)
            | Error::PreconditionRequired(d)
            | Error::PayloadTooLarge(d)
            | Error::UnsupportedMediaType(d) => d.clone(),
            Error::NotFound => "The requested resource does not exist.".into(),
            Error::MethodNotAllowed => "This method is not supported here.".into(),
            Error::Overloaded => "Too many requests in flight; retry shortly.".into(),
            Error::Timeout => "The request did not complete in time; retry shortly.".into(),
            Error::Unavailable(_) | Error::Internal(_) => {
                "The request failed on the server; quote the request id when reporting it.".into()
            }
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        Problem {
            kind: format!("urn:playgate:problem:{slug}"),
            title: title.into(),
            status: self.status().as_u16(),
            detail: self.public_detail(),
            field: match self {
                Error::BadRequest { field, .. } => field.clone(),
                _ => None,
            },
            request_id: current_request_id(),
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl Problem {
    /// Render with any extra members (e.g. readiness check results).
    pub fn into_response_with(self, extra: Option<serde_json::Value>) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::to_value(&self).unwrap_or_default();
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(map)) =
            (extra, &mut body)
        {
            map.extend(extra);
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (status, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::Internal(source) => {
                tracing::error!(error = %source, "request failed");
            }
            Error::Unavailable(why) => tracing::warn!(reason = %why, "dependency unavailable"),
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        let problem = self.to_problem();
        let extra = match &self {
            Error::Invalid(list) => Some(serde_json::json!({
                "errors": list
                    .iter()
                    .map(|(f, r)| serde_json::json!({"field": f, "reason": r}))
                    .collect::<Vec<_>>()
            })),
            _ => None,
        };
        let mut resp = problem.into_response_with(extra);
        let h = resp.headers_mut();
        match self {
            Error::Unauthorized(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Error::Overloaded | Error::Timeout => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// Every domain error's problem type, in one place: the modules that
// raise them do not choose HTTP statuses.

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::UnknownAsset | PipelineError::UnknownJob | PipelineError::Deleted => {
                Error::NotFound
            }
            PipelineError::NoSource => {
                Error::Conflict("The asset has no uploaded source yet; upload it first.".into())
            }
            PipelineError::Store(s) => s.into(),
            PipelineError::Backend(why) => Error::Unavailable(why),
        }
    }
}

impl From<&PlayError> for Error {
    fn from(e: &PlayError) -> Self {
        match e {
            PlayError::UnknownAsset | PlayError::NoSuchPlaylist => Error::NotFound,
            PlayError::NotReady(status) => Error::Conflict(format!(
                "The asset is not ready to play yet (status: {status})."
            )),
            PlayError::TierTooLow(t) => {
                Error::Forbidden(format!("This asset needs the {t} tier or higher."))
            }
            PlayError::NothingPlayable => {
                Error::Forbidden("Your tier may not play any rendition of this asset.".into())
            }
            PlayError::Refused(_) => {
                Error::Forbidden("The signature is missing, invalid or expired.".into())
            }
            PlayError::KeyRefused(r @ crate::protect::token::Refusal::Missing) => {
                Error::Unauthorized(format!("{}.", capitalised(&r.to_string())))
            }
            PlayError::KeyRefused(r) => {
                Error::Forbidden(format!("{}.", capitalised(&r.to_string())))
            }
            PlayError::Key(crate::protect::KeyError::Unavailable(why)) => {
                Error::Unavailable(why.clone())
            }
            PlayError::Key(other) => Error::internal(other.to_string()),
            PlayError::Origin(OriginError::NotFound(_)) => Error::NotFound,
            PlayError::Origin(OriginError::Unavailable(why)) => Error::Unavailable(why.clone()),
            PlayError::Store(StoreError::Unavailable(why)) => Error::Unavailable(why.clone()),
            PlayError::Store(other) => Error::internal(other.to_string()),
            PlayError::Content(why) => Error::internal(why.clone()),
            PlayError::DeliveryUnavailable {
                asked,
                reason,
                works,
            } => Error::DeliveryUnavailable(match works {
                Some(w) => format!(
                    "This asset cannot be played with {asked}: {reason}. {} works for it.",
                    capitalised(w)
                ),
                None => format!("This asset cannot be played with {asked}: {reason}."),
            }),
        }
    }
}

impl From<PlayError> for Error {
    fn from(e: PlayError) -> Self {
        Error::from(&e)
    }
}

impl From<OriginError> for Error {
    fn from(e: OriginError) -> Self {
        match e {
            OriginError::NotFound(_) => Error::NotFound,
            OriginError::Unavailable(why) => Error::Unavailable(why),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                expected: Expect::Revision(_),
            } => Error::PreconditionFailed(
                "The resource changed since you read it; fetch it again and retry.".into(),
            ),
            StoreError::Conflict { .. } => Error::Conflict("The resource already exists.".into()),
            StoreError::Unavailable(why) => Error::Unavailable(why),
            StoreError::Corrupt(why) => Error::internal(why),
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) => Error::NotFound,
            StorageError::Unavailable(why) => Error::Unavailable(why),
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_is_opaque() {
        let e = Error::internal(std::io::Error::other("disk /secret/path exploded"));
        let p = e.to_problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("secret"));
        assert!(!p.title.contains("secret"));
    }

    #[tokio::test]
    async fn problem_carries_request_id() {
        let p = REQUEST_ID
            .scope("rid-1".into(), async { Error::NotFound.to_problem() })
            .await;
        assert_eq!(p.request_id.as_deref(), Some("rid-1"));
    }
}
