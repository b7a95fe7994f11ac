//! Extractors whose rejections are problem+json naming the field at fault.
//! axum's default rejection text never reaches a client.

use crate::http::problem::Error;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `Json<T>`: a JSON body; errors name the offending field path.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(Error::PayloadTooLarge(
                    "The request body is over the limit.".into(),
                ));
            }
            Err(_) => return Err(Error::bad_request("body", "The body could not be read.")),
        };
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, reporting the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." {
            "body".to_owned()
        } else {
            format!("body.{path}")
        };
        let detail = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!(
                    "The body is not valid JSON (line {}, column {}).",
                    inner.line(),
                    inner.column()
                )
            }
            _ => format!("{field}: {}", strip_position(&inner.to_string())),
        };
        Error::bad_request(field, detail)
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// `Path<T>`: path parameters; a bad one is a 400 naming it.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let kind = e.into_kind();
                let (field, detail) = path_error(&kind);
                Err(Error::bad_request(field, detail))
            }
            Err(_) => Err(Error::NotFound),
        }
    }
}

fn path_error(kind: &axum::extract::path::ErrorKind) -> (String, String) {
    use axum::extract::path::ErrorKind as K;
    match kind {
        K::ParseErrorAtKey {
            key, expected_type, ..
        } => (
            format!("path.{key}"),
            format!("path parameter {key} must be a {expected_type}"),
        ),
        K::Message(m) => ("path".into(), m.clone()),
        K::InvalidUtf8InPathParam { key } => (
            format!("path.{key}"),
            format!("path parameter {key} is not valid UTF-8"),
        ),
        other => ("path".into(), other.to_string()),
    }
}

/// `Query<T>`: query parameters; a bad one is a 400 naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                Error::bad_request(
                    format!("query.{path}"),
                    format!("query.{path}: {}", e.inner()),
                )
            })
    }
}
