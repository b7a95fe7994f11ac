//! Ingest (`playgate:ingest`), local mode:
//! - `POST /v1/uploads {filename, content_type, size, title?}` creates an
//!   asset and says where to send the bytes;
//! - `PUT /v1/uploads/{asset}/source` streams them to disk: the declared
//!   content type and size must match, SHA-256 is computed on the way, the
//!   file appears only when complete (rename), and a second upload to the
//!   same asset is refused (409);
//! - `POST /v1/assets/{id}/transcode` starts the encode (idempotent: 202
//!   with a new job, 200 with the one already queued or running);
//! - `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}` (cancel).

use crate::domain::{AssetId, JobId};
use crate::error::{Error, Result};
use crate::http::auth::IngestClaims;
use crate::http::extract::{Json, Path};
use crate::state::AppState;
use crate::storage::ObjectKey;
use crate::store::{Asset, AssetStatus, Expect, SourceObject, StoreExt};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    filename: String,
    content_type: String,
    size: u64,
    #[serde(default)]
    title: Option<String>,
}

/// A plain file name: no directories, no leading dot, at most 128 bytes.
fn check_filename(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "body.filename",
            "filename must be a plain name of letters, digits, '.', '_' or '-' (at most 128)",
        ))
    }
}

/// Uploads and encodes need the local pipeline until the S3 and
/// MediaConvert halves land.
fn local_only(state: &AppState) -> Result<()> {
    if state.config.mode == crate::config::Mode::Local {
        Ok(())
    } else {
        Err(Error::NotImplemented(
            "Uploads and transcodes are not available in mode aws yet (S3 presigned uploads and MediaConvert are planned); publish outputs under assets/{id}/v{n}/ and send MediaConvert's events to /hooks/mediaconvert.".into(),
        ))
    }
}

pub async fn create_upload(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Json(req): Json<NewUpload>,
) -> Result<Response> {
    local_only(&state)?;
    check_filename(&req.filename)?;
    if !req.content_type.starts_with("video/") {
        return Err(Error::UnsupportedMediaType(
            "content_type must be a video type (video/…)".into(),
        ));
    }
    let max = state.config.pipeline.max_upload;
    if req.size == 0 || req.size > max {
        return Err(Error::PayloadTooLarge(format!(
            "size must be between 1 and {max} bytes"
        )));
    }
    let id = AssetId::parse(&format!(
        "a{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    ))
    .map_err(Error::internal)?;
    let now = state.clock.now_epoch();
    let asset = Asset {
        id: id.clone(),
        title: req.title,
        min_tier: None,
        status: AssetStatus::Created,
        current_version: None,
        renditions: Vec::new(),
        failure: None,
        source: Some(SourceObject {
            key: format!("assets/{id}/source/{}", req.filename),
            filename: req.filename,
            content_type: req.content_type.clone(),
            size: req.size,
            sha256: None,
        }),
        created_at: now,
    };
    state.store.put_asset(&asset, Expect::Absent).await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "upload.create", asset = %id, "upload created");
    let public = state.config.server.public_url.trim_end_matches('/');
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "asset_id": id,
            "upload": {
                "method": "PUT",
                "url": format!("{public}/v1/uploads/{id}/source"),
                "headers": {"content-type": req.content_type},
                "expires_at": now + state.config.pipeline.upload_timeout.as_secs(),
            },
        })),
    )
        .into_response())
}

pub async fn put_source(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<AssetId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    local_only(&state)?;
    let v = state.store.get_asset(&id).await?.ok_or(Error::NotFound)?;
    let declared = v.value.source.clone().ok_or(Error::NotFound)?;
    if v.value.status != AssetStatus::Created || declared.sha256.is_some() {
        return Err(Error::Conflict(
            "This asset's source was already uploaded; create a new upload.".into(),
        ));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if ct != declared.content_type {
        return Err(Error::UnsupportedMediaType(format!(
            "Content-Type must be {}, as declared",
            declared.content_type
        )));
    }
    let key = ObjectKey::parse(&declared.key).map_err(Error::internal)?;
    let tmp_dir = state.config.pipeline.work_dir.join("uploads");
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(|e| Error::Unavailable(format!("upload scratch: {e}")))?;
    let tmp = tmp_dir.join(format!("{id}-{}", uuid::Uuid::new_v4().simple()));
    let written = receive(body, &tmp, declared.size).await;
    let sha256 = match written {
        Ok(h) => h,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    if let Err(e) = state.objects.put_file(&key, &tmp).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e.into());
    }
    let mut asset = v.value;
    asset.status = AssetStatus::Uploaded;
    if let Some(s) = asset.source.as_mut() {
        s.sha256 = Some(sha256.clone());
    }
    // Another upload that raced this one and won leaves this one a 409.
    state
        .store
        .put_asset(&asset, Expect::Revision(v.revision))
        .await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "upload.complete", asset = %id, bytes = declared.size, "source uploaded");
    Ok(
        axum::Json(json!({"asset_id": id, "size": declared.size, "sha256": sha256}))
            .into_response(),
    )
}

/// Streams `body` into `path`: exactly `size` bytes, hashed on the way.
async fn receive(mut body: Body, path: &std::path::Path, size: u64) -> Result<String> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| Error::Unavailable(format!("upload scratch: {e}")))?;
    let mut hasher = openssl::sha::Sha256::new();
    let mut got: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Error::bad_request("body", "The upload was interrupted."))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        got += data.len() as u64;
        if got > size {
            return Err(Error::PayloadTooLarge(format!(
                "The upload is larger than the declared {size} bytes."
            )));
        }
        hasher.update(data);
        file.write_all(data)
            .await
            .map_err(|e| Error::Unavailable(format!("upload scratch: {e}")))?;
    }
    if got != size {
        return Err(Error::bad_request(
            "body",
            format!("The upload has {got} bytes; {size} were declared."),
        ));
    }
    file.sync_all()
        .await
        .map_err(|e| Error::Unavailable(format!("upload scratch: {e}")))?;
    Ok(hasher.finish().iter().map(|b| format!("{b:02x}")).collect())
}

pub async fn transcode(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<AssetId>,
) -> Result<Response> {
    local_only(&state)?;
    let (job, created) = state.pipeline.transcode(&id).await?;
    if created {
        tracing::info!(target: "playgate::audit", who = %who.who(), action = "transcode", asset = %id, job = %job.id, "encode queued");
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({"job": job}))).into_response())
}

pub async fn job(
    State(state): State<AppState>,
    _w: IngestClaims,
    Path(id): Path<JobId>,
) -> Result<Response> {
    let job = state.pipeline.job(&id).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"job": job})),
    )
        .into_response())
}

pub async fn cancel(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<JobId>,
) -> Result<Response> {
    let job = state.pipeline.cancel(&id).await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "job.cancel", job = %id, "cancel requested");
    Ok(axum::Json(json!({"job": job})).into_response())
}
