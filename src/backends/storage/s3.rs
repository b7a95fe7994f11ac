//! `ObjectStore` on S3 (the output bucket). Keys are the same
//! `ObjectKey`s; S3 writes are atomic per object, so `put` needs no
//! temporary object. "Not found" is S3's 404 (`NoSuchKey`, or a bare 404
//! on `HEAD`); every other failure is `Unavailable` with S3's message.

use super::{ObjectKey, ObjectMeta, ObjectStore, StorageError, StorageResult};
use crate::backends::aws::said;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use bytes::Bytes;

/// What a key may keep unencoded in `CopySource`: the unreserved set and
/// `/` (which separates the key's segments).
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

pub struct S3Store {
    client: Client,
    bucket: String,
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("s3: {e}"))
}

fn is_404<E>(e: &SdkError<E>) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404)
}

impl S3Store {
    /// `path_style` for S3-compatible endpoints (the moto server, MinIO).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>, path_style: bool) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        S3Store {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket when it does not exist (development, tests).
    pub async fn create_bucket(&self) -> StorageResult<()> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(said(&e))),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn check(&self) -> StorageResult<()> {
        let key = ObjectKey::parse(&format!("readyz/{}", uuid::Uuid::new_v4().simple()))
            .map_err(unavailable)?;
        self.put(&key, Bytes::from_static(b"ok")).await?;
        self.get(&key).await?;
        self.delete(&key).await.map(|_| ())
    }

    async fn get(&self, key: &ObjectKey) -> StorageResult<Bytes> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                if is_404(&e) {
                    StorageError::NotFound(key.clone())
                } else {
                    unavailable(said(&e))
                }
            })?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| unavailable(format!("{key}: {e}")))?;
        Ok(body.into_bytes())
    }

    async fn read(
        &self,
        key: &ObjectKey,
        range: Option<std::ops::Range<u64>>,
    ) -> StorageResult<super::ByteStream> {
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str());
        if let Some(r) = &range {
            if r.end <= r.start {
                return Ok(Box::pin(futures_util::stream::empty()));
            }
            // HTTP ranges are inclusive; S3 cuts one past the end.
            req = req.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = match req.send().await {
            Ok(o) => o,
            // A range that starts past the end is S3's 416 InvalidRange
            // (RFC 9110 §15.5.17): nothing of it exists.
            Err(e) if matches!(&e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 416) =>
            {
                return Ok(Box::pin(futures_util::stream::empty()));
            }
            Err(e) if is_404(&e) => return Err(StorageError::NotFound(key.clone())),
            Err(e) => return Err(unavailable(said(&e))),
        };
        let reader = out.body.into_async_read();
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            super::READ_CHUNK,
        )))
    }

    async fn head(&self, key: &ObjectKey) -> StorageResult<ObjectMeta> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                if is_404(&e) {
                    StorageError::NotFound(key.clone())
                } else {
                    unavailable(said(&e))
                }
            })?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: out
                .content_length
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            etag: out.e_tag.unwrap_or_default(),
            modified_epoch: out
                .last_modified
                .and_then(|t| u64::try_from(t.secs()).ok())
                .unwrap_or(0),
        })
    }

    async fn put(&self, key: &ObjectKey, bytes: Bytes) -> StorageResult<ObjectMeta> {
        let size = bytes.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| unavailable(said(&e)))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size,
            etag: out.e_tag.unwrap_or_default(),
            modified_epoch: crate::clock::Clock::now_epoch(&crate::clock::SystemClock),
        })
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> StorageResult<ObjectMeta> {
        // CopySource is `bucket/key`, the key URL-encoded (S3 API reference,
        // CopyObject: "The value must be URL-encoded").
        let source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(from.as_str(), COPY_SOURCE)
        );
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to.as_str())
            .copy_source(source)
            .send()
            .await
            .map_err(|e| {
                if is_404(&e) {
                    StorageError::NotFound(from.clone())
                } else {
                    unavailable(said(&e))
                }
            })?;
        self.head(to).await
    }

    async fn delete(&self, key: &ObjectKey) -> StorageResult<bool> {
        // S3 deletes idempotently and does not say whether there was one.
        let existed = match self.head(key).await {
            Ok(_) => true,
            Err(StorageError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| unavailable(said(&e)))?;
        Ok(existed)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectKey>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| unavailable(said(&e)))?;
            for o in out.contents() {
                if let Some(k) = o.key().and_then(|k| ObjectKey::parse(k).ok()) {
                    keys.push(k);
                }
            }
            match out.next_continuation_token {
                Some(t) if out.is_truncated == Some(true) => token = Some(t),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Direct-to-S3 uploads into the source bucket: presigned `PutObject`
/// (content type and length bound into the signature), or a multipart
/// plan (presigned `UploadPart` URLs) above S3's single-PUT size.
pub struct S3Uploads {
    client: Client,
    pub bucket: String,
    /// The same bucket as an object store (create, head).
    store: S3Store,
}

/// A presigned request: what the client must send. Its `Debug` leaves out
/// the query (the signature).
#[derive(Clone, serde::Serialize)]
pub struct Presigned {
    pub method: String,
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for Presigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bare = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("Presigned")
            .field("method", &self.method)
            .field("url", &format_args!("{bare}?<signed>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn presigned(p: aws_sdk_s3::presigning::PresignedRequest) -> Presigned {
    Presigned {
        method: p.method().to_owned(),
        url: p.uri().to_owned(),
        headers: p
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

impl S3Uploads {
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>, path_style: bool) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        let client = Client::from_conf(config);
        let bucket = bucket.into();
        S3Uploads {
            store: S3Store {
                client: client.clone(),
                bucket: bucket.clone(),
            },
            client,
            bucket,
        }
    }

    fn ttl(ttl: std::time::Duration) -> StorageResult<aws_sdk_s3::presigning::PresigningConfig> {
        aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(unavailable)
    }

    pub async fn create_bucket(&self) -> StorageResult<()> {
        self.store.create_bucket().await
    }

    /// One presigned PUT of exactly `size` bytes of `content_type`.
    pub async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        ttl: std::time::Duration,
    ) -> StorageResult<Presigned> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .content_length(i64::try_from(size).map_err(unavailable)?)
            .presigned(Self::ttl(ttl)?)
            .await
            .map_err(|e| unavailable(said(&e)))?;
        Ok(presigned(req))
    }

    /// A presigned GET, for a tool that reads the source by URL (ffprobe).
    pub async fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: std::time::Duration,
    ) -> StorageResult<Presigned> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(Self::ttl(ttl)?)
            .await
            .map_err(|e| unavailable(said(&e)))?;
        Ok(presigned(req))
    }

    /// Starts a multipart upload; its id.
    pub async fn create_multipart(
        &self,
        key: &ObjectKey,
        content_type: &str,
    ) -> StorageResult<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| unavailable(said(&e)))?;
        out.upload_id.ok_or_else(|| unavailable("no upload id"))
    }

    /// A presigned PUT for part `number` (1-based) of `size` bytes.
    pub async fn presign_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: i32,
        size: u64,
        ttl: std::time::Duration,
    ) -> StorageResult<Presigned> {
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(number)
            .content_length(i64::try_from(size).map_err(unavailable)?)
            .presigned(Self::ttl(ttl)?)
            .await
            .map_err(|e| unavailable(said(&e)))?;
        Ok(presigned(req))
    }

    /// Completes a multipart upload from the parts' ETags.
    pub async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<(), String> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(done)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| said(&e))
    }

    /// Size and ETag of what arrived, if anything did.
    pub async fn head(&self, key: &ObjectKey) -> StorageResult<ObjectMeta> {
        self.store.head(key).await
    }

    /// The first `n` bytes of a source (a ranged GET), to tell its container.
    pub async fn read_head(&self, key: &ObjectKey, n: usize) -> StorageResult<Vec<u8>> {
        super::read_head(&self.store, key, n).await
    }
}
