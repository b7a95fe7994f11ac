//! Ingest (`playgate:ingest`):
//! - `POST /v1/uploads {filename, content_type, size, title?}` creates an
//!   asset and says where to send the bytes;
//!   In mode aws the answer is a presigned S3 `PUT` (type and length
//!   signed), or above `pipeline.multipart_threshold` a multipart plan of
//!   presigned `UploadPart`s; either ends with
//!   `POST /v1/uploads/{asset}/complete` (with the parts' ETags);
//! - `PUT /v1/uploads/{asset}/source` (local) streams them to disk: the declared
//!   content type and size must match, SHA-256 is computed on the way, the
//!   file appears only when complete (rename), and a second upload to the
//!   same asset is refused (409);
//! - `POST /v1/assets/{id}/transcode` starts the encode (idempotent: 202
//!   with a new job, 200 with the one already queued or running);
//! - `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}` (cancel).

use crate::backends::storage::ObjectKey;
use crate::backends::store::Job;
use crate::backends::store::{Asset, AssetStatus, Expect, SourceObject, StoreExt};
use crate::domain::{AssetId, JobId};
use crate::http::auth::IngestClaims;
use crate::http::extract::{Json, Path};
use crate::http::problem::{Error, Result};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

/// An upload to declare: the file's name, media type and exact size.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    #[schema(example = "clip.mp4")]
    filename: String,
    #[schema(example = "video/mp4")]
    content_type: String,
    /// Bytes, at most `pipeline.max_upload`.
    size: u64,
    #[serde(default)]
    title: Option<String>,
}

/// The declared asset and where to send its bytes.
#[derive(Serialize, ToSchema)]
pub struct UploadCreated {
    asset_id: AssetId,
    upload: UploadPlan,
}

/// How to send the bytes: `PUT` to `url` with `headers` (local, or a
/// presigned S3 PUT), or `MULTIPART`: each of `parts`, then `complete`.
#[derive(Serialize, ToSchema)]
pub struct UploadPlan {
    #[schema(example = "PUT")]
    method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<Vec<PartPlan>>,
    /// Mode aws: the request that ends the upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    complete: Option<Step>,
    /// Epoch seconds; the presigned requests expire then.
    expires_at: u64,
}

#[derive(Serialize, ToSchema)]
pub struct PartPlan {
    part_number: u64,
    size: u64,
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Step {
    method: &'static str,
    url: String,
}

/// The source as received.
#[derive(Serialize, ToSchema)]
pub struct Received {
    asset_id: AssetId,
    size: u64,
    /// Local uploads: the SHA-256 of the bytes, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// S3 uploads: S3's ETag.
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobBody {
    job: Job,
}

/// A plain file name with a media container's extension: no directories,
/// no leading dot, at most 128 bytes. (The extension does not decide how
/// the file is read — its first bytes do — but a playlist or a list by
/// name is refused here, before anything is stored.)
fn check_filename(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if plain && crate::pipeline::source::has_media_extension(name) {
        Ok(())
    } else {
        Err(Error::bad_request(
            "body.filename",
            format!(
                "filename must be a plain name of letters, digits, '.', '_' or '-' (at most 128) ending in .{}",
                crate::pipeline::source::EXTENSIONS.join(", .")
            ),
        ))
    }
}

/// A `Content-Type` that is one `video/…` media type (RFC 9110: a type,
/// a subtype and `;`-separated parameters), nothing else.
fn video_type(value: &str) -> Result<mime::Mime> {
    let parsed = value
        .parse::<mime::Mime>()
        .ok()
        .filter(|m| !value.contains(['\r', '\n', ',']) && !m.subtype().as_str().is_empty());
    match parsed {
        Some(m) if m.type_() == mime::VIDEO => Ok(m),
        Some(_) => Err(Error::UnsupportedMediaType(
            "content_type must be a video type (video/…)".into(),
        )),
        None => Err(Error::bad_request(
            "body.content_type",
            "content_type must be one media type such as video/mp4",
        )),
    }
}

/// The gateway receives sources itself only in mode local.
fn local_upload(state: &AppState) -> Result<()> {
    if state.config.mode == crate::config::Mode::Local {
        Ok(())
    } else {
        Err(Error::Conflict(
            "In mode aws sources go straight to S3: PUT to the presigned URL that POST /v1/uploads returned, then POST /v1/uploads/{asset}/complete.".into(),
        ))
    }
}

/// Declares an upload: creates the asset and says where to send the bytes.
#[utoipa::path(post, path = "/v1/uploads", tag = "pipeline", security(("ingest" = [])),
    request_body = NewUpload,
    responses((status = 201, description = "Declared", body = UploadCreated)))]
pub async fn create_upload(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Json(req): Json<NewUpload>,
) -> Result<Response> {
    check_filename(&req.filename)?;
    video_type(&req.content_type)?;
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
    let ttl = state.config.pipeline.upload_timeout;
    let key_text = format!("assets/{id}/source/{}", req.filename);
    let key = ObjectKey::parse(&key_text).map_err(Error::internal)?;
    let public = state.config.server.public_url.as_str();
    let complete = Step {
        method: "POST",
        url: format!("{public}/v1/uploads/{id}/complete"),
    };
    let expires_at = now + ttl.as_secs();
    let (upload, upload_id) = match &state.uploads {
        None => (
            UploadPlan {
                method: "PUT".into(),
                url: Some(format!("{public}/v1/uploads/{id}/source")),
                headers: Some(BTreeMap::from([(
                    "content-type".to_owned(),
                    req.content_type.clone(),
                )])),
                parts: None,
                complete: None,
                expires_at,
            },
            None,
        ),
        Some(s3) if req.size <= state.config.pipeline.multipart_threshold => {
            let p = s3
                .presign_put(&key, &req.content_type, req.size, ttl)
                .await?;
            (
                UploadPlan {
                    method: p.method,
                    url: Some(p.url),
                    headers: Some(p.headers),
                    parts: None,
                    complete: Some(complete),
                    expires_at,
                },
                None,
            )
        }
        Some(s3) => {
            let part = state.config.pipeline.part_size;
            let count = req.size.div_ceil(part);
            if count > 10_000 {
                return Err(Error::PayloadTooLarge(
                    "more than 10,000 parts; raise pipeline.part_size".into(),
                ));
            }
            let upload_id = s3.create_multipart(&key, &req.content_type).await?;
            let mut parts = Vec::new();
            for n in 1..=count {
                let size = part.min(req.size - (n - 1) * part);
                let number = i32::try_from(n).map_err(Error::internal)?;
                let p = s3.presign_part(&key, &upload_id, number, size, ttl).await?;
                parts.push(PartPlan {
                    part_number: n,
                    size,
                    method: p.method,
                    url: p.url,
                    headers: p.headers,
                });
            }
            (
                UploadPlan {
                    method: "MULTIPART".into(),
                    url: None,
                    headers: None,
                    parts: Some(parts),
                    complete: Some(complete),
                    expires_at,
                },
                Some(upload_id),
            )
        }
    };
    let asset = Asset {
        id: id.clone(),
        title: req.title,
        min_tier: None,
        status: AssetStatus::Created,
        current_version: None,
        renditions: Vec::new(),
        thumbnails: Vec::new(),
        failure: None,
        playability: None,
        source: Some(SourceObject {
            key: key_text,
            filename: req.filename,
            content_type: req.content_type.clone(),
            size: req.size,
            sha256: None,
            etag: None,
            upload_id,
        }),
        content_keys: Vec::new(),
        created_at: now,
    };
    state.store.put_asset(&asset, Expect::Absent).await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "upload.create", asset = %id, "upload created");
    Ok((
        StatusCode::CREATED,
        axum::Json(UploadCreated {
            asset_id: id,
            upload,
        }),
    )
        .into_response())
}

/// A multipart upload's parts (empty for a single PUT).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    #[serde(default)]
    parts: Vec<PartDone>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartDone {
    part_number: i32,
    etag: String,
}

/// `POST /v1/uploads/{asset}/complete` (mode aws): after the direct PUT,
/// or with the parts' ETags after a multipart upload. The object must be
/// there with the declared size.
#[utoipa::path(post, path = "/v1/uploads/{asset}/complete", tag = "pipeline", security(("ingest" = [])),
    params(("asset" = String, Path, description = "The asset")),
    request_body(content = Option<Completion>, description = "The parts' ETags (multipart only)"),
    responses((status = 200, description = "Complete", body = Received)))]
pub async fn complete_upload(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<AssetId>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let Some(s3) = &state.uploads else {
        return Err(Error::Conflict(
            "Local uploads complete with their PUT; there is nothing to complete.".into(),
        ));
    };
    let done: Completion = if body.is_empty() {
        Completion::default()
    } else {
        crate::http::extract::parse_json(&body)?
    };
    let v = state.store.get_asset(&id).await?.ok_or(Error::NotFound)?;
    let declared = v.value.source.clone().ok_or(Error::NotFound)?;
    if declared.is_complete() || v.value.status != AssetStatus::Created {
        return Err(Error::Conflict("This upload is already complete.".into()));
    }
    let key = ObjectKey::parse(&declared.key).map_err(Error::internal)?;
    if let Some(upload_id) = &declared.upload_id {
        if done.parts.is_empty() {
            return Err(Error::bad_request(
                "body.parts",
                "a multipart upload completes with its parts' ETags",
            ));
        }
        let parts: Vec<(i32, String)> = done
            .parts
            .into_iter()
            .map(|p| (p.part_number, p.etag))
            .collect();
        if let Err(why) = s3.complete_multipart(&key, upload_id, &parts).await {
            // A completion whose answer was lost (and the moto server, whose
            // answer the SDK cannot parse) leaves the object in place: the
            // object is what counts.
            let whole = s3.head(&key).await.is_ok_and(|m| m.size == declared.size);
            if !whole {
                return Err(Error::bad_request(
                    "body.parts",
                    format!("S3 refused the parts: {why}"),
                ));
            }
        }
    }
    let meta = match s3.head(&key).await {
        Ok(m) => m,
        Err(crate::backends::storage::StorageError::NotFound(_)) => {
            return Err(Error::Conflict("Nothing has been uploaded yet.".into()));
        }
        Err(e) => return Err(e.into()),
    };
    if meta.size != declared.size {
        return Err(Error::bad_request(
            "body",
            format!(
                "The upload has {} bytes; {} were declared.",
                meta.size, declared.size
            ),
        ));
    }
    let mut asset = v.value;
    asset.status = AssetStatus::Uploaded;
    if let Some(s) = asset.source.as_mut() {
        s.etag = Some(meta.etag.clone());
        s.upload_id = None;
    }
    state
        .store
        .put_asset(&asset, Expect::Revision(v.revision))
        .await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "upload.complete", asset = %id, bytes = meta.size, "source uploaded to S3");
    Ok(axum::Json(Received {
        asset_id: id,
        size: meta.size,
        sha256: None,
        etag: Some(meta.etag),
    })
    .into_response())
}

/// Mode local: the source bytes, streamed, with the declared
/// `Content-Type` and exactly the declared size.
#[utoipa::path(put, path = "/v1/uploads/{asset}/source", tag = "pipeline", security(("ingest" = [])),
    params(("asset" = String, Path, description = "The asset")),
    request_body(content = Vec<u8>, description = "The file", content_type = "video/*"),
    responses((status = 200, description = "Received", body = Received)))]
pub async fn put_source(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<AssetId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    local_upload(&state)?;
    let v = state.store.get_asset(&id).await?.ok_or(Error::NotFound)?;
    let declared = v.value.source.clone().ok_or(Error::NotFound)?;
    if v.value.status != AssetStatus::Created || declared.sha256.is_some() {
        return Err(Error::Conflict(
            "This asset's source was already uploaded; create a new upload.".into(),
        ));
    }
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<mime::Mime>().ok());
    let expected = declared.content_type.parse::<mime::Mime>().ok();
    if sent.is_none() || sent != expected {
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
    // The record is claimed first (compare-and-set), and only the upload
    // that claimed it moves its bytes in: a racing upload that lost gets a
    // 409 and its bytes are discarded, so the stored SHA-256 is always that
    // of the bytes at the key.
    let mut asset = v.value;
    let before = asset.clone();
    asset.status = AssetStatus::Uploaded;
    if let Some(s) = asset.source.as_mut() {
        s.sha256 = Some(sha256.clone());
    }
    let claimed = match state
        .store
        .put_asset(&asset, Expect::Revision(v.revision))
        .await
    {
        Ok(revision) => revision,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(match e {
                crate::backends::store::StoreError::Conflict { .. } => Error::Conflict(
                    "Another upload to this asset finished first; create a new upload.".into(),
                ),
                other => other.into(),
            });
        }
    };
    if let Err(e) = state.objects.put_file(&key, &tmp).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        // Give the claim back, so the record does not name bytes that are
        // not there; the client may upload again.
        if let Err(undo) = state
            .store
            .put_asset(&before, Expect::Revision(claimed))
            .await
        {
            tracing::error!(asset = %id, reason = %undo, "could not release a failed upload's claim");
        }
        return Err(e.into());
    }
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "upload.complete", asset = %id, bytes = declared.size, "source uploaded");
    Ok(axum::Json(Received {
        asset_id: id,
        size: declared.size,
        sha256: Some(sha256),
        etag: None,
    })
    .into_response())
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
    Ok(crate::domain::hex(&hasher.finish()))
}

/// Starts the encode: 202 with a new job, 200 with the one already queued
/// or running.
#[utoipa::path(post, path = "/v1/assets/{id}/transcode", tag = "pipeline", security(("ingest" = [])),
    params(("id" = String, Path, description = "The asset")),
    responses((status = 202, description = "Queued", body = JobBody),
        (status = 200, description = "Already queued or running", body = JobBody)))]
pub async fn transcode(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<AssetId>,
) -> Result<Response> {
    let (job, created) = state.pipeline.transcode(&id).await?;
    if created {
        tracing::info!(target: "playgate::audit", who = %who.who(), action = "transcode", asset = %id, job = %job.id, "encode queued");
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(JobBody { job })).into_response())
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "pipeline", security(("ingest" = [])),
    params(("id" = String, Path, description = "The job")),
    responses((status = 200, description = "The job", body = JobBody)))]
pub async fn job(
    State(state): State<AppState>,
    _w: IngestClaims,
    Path(id): Path<JobId>,
) -> Result<Response> {
    let job = state.pipeline.job(&id).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(JobBody { job }),
    )
        .into_response())
}

/// Cancels a job.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "pipeline", security(("ingest" = [])),
    params(("id" = String, Path, description = "The job")),
    responses((status = 200, description = "Cancel requested", body = JobBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    IngestClaims(who): IngestClaims,
    Path(id): Path<JobId>,
) -> Result<Response> {
    let job = state.pipeline.cancel(&id).await?;
    tracing::info!(target: "playgate::audit", who = %who.who(), action = "job.cancel", job = %id, "cancel requested");
    Ok(axum::Json(JobBody { job }).into_response())
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post, put};
    axum::Router::new()
        .route("/v1/uploads", post(create_upload))
        .route("/v1/uploads/{asset}/source", put(put_source))
        .route("/v1/uploads/{asset}/complete", post(complete_upload))
        .route("/v1/assets/{id}/transcode", post(transcode))
        .route("/v1/jobs/{id}", get(job).delete(cancel))
}
