//! Optimistic concurrency over HTTP, shared by the admin resources: a
//! record's store revision is its strong ETag; `If-Match` and
//! `If-None-Match: *` become the store's `Expect`.

use crate::backends::store::Expect;
use crate::http::problem::{Error, Result};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The expectation a write carries, if the client sent one.
pub fn expectation(headers: &HeaderMap) -> Result<Option<Expect>> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let rev = v
            .to_str()
            .unwrap_or("")
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse::<u64>()
            .map_err(|_| {
                Error::bad_request(
                    "header.if-match",
                    "If-Match must be an ETag this API returned.",
                )
            })?;
        return Ok(Some(Expect::Revision(rev)));
    }
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*") {
        return Ok(Some(Expect::Absent));
    }
    Ok(None)
}

/// What a `PUT` expects: its precondition, or `Absent` when creating;
/// updating an existing record without one is a 428.
pub fn put_expectation(headers: &HeaderMap, exists: bool, what: &str) -> Result<Expect> {
    match (expectation(headers)?, exists) {
        (Some(e), _) => Ok(e),
        (None, false) => Ok(Expect::Absent),
        (None, true) => Err(Error::PreconditionRequired(format!(
            "This {what} exists: send If-Match with the ETag you read."
        ))),
    }
}

/// A JSON body with the revision as `ETag`, never cached.
pub fn json_with_etag(body: impl serde::Serialize, revision: u64) -> Response {
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
