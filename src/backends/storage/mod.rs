//! `ObjectStore`: where sources and encoded outputs live (a directory
//! locally, S3 on AWS). Keys are `ObjectKey`s: relative, `/`-separated,
//! with no `.`/`..` segments, no empty segments, no backslash, NUL or
//! control characters — checked once when the key is made, so no backend
//! can be walked out of its root.

pub mod local;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key: {0}")]
pub struct KeyError(&'static str);

/// A validated object key, e.g. `assets/abc/v1/hls/master.m3u8`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub const MAX_LEN: usize = 1024;

    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.is_empty() {
            return Err(KeyError("empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(KeyError("longer than 1024 bytes"));
        }
        if s.starts_with('/') {
            return Err(KeyError("absolute path"));
        }
        if s.bytes().any(|b| b == b'\\') {
            return Err(KeyError("backslash"));
        }
        if s.bytes().any(|b| b == 0 || b.is_ascii_control()) {
            return Err(KeyError("NUL or control character"));
        }
        for seg in s.split('/') {
            match seg {
                "" => return Err(KeyError("empty path segment")),
                "." | ".." => return Err(KeyError("dot segment")),
                _ => {}
            }
        }
        Ok(ObjectKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self/child`, both already valid.
    pub fn join(&self, child: &str) -> Result<Self, KeyError> {
        Self::parse(&format!("{}/{child}", self.0))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

/// Size and identity of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: ObjectKey,
    pub size: u64,
    /// A strong validator (changes whenever the bytes change).
    pub etag: String,
    pub modified_epoch: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such object: {0}")]
    NotFound(ObjectKey),
    #[error("object storage unavailable: {0}")]
    Unavailable(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// An object's bytes as they are read, in chunks of at most
/// `READ_CHUNK` (local) or as S3 sends them: what a request costs in
/// memory is a buffer, not the object.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// The read buffer of a local object stream.
pub const READ_CHUNK: usize = 64 * 1024;

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Proves the store can take a write and a read (readiness).
    async fn check(&self) -> StorageResult<()>;
    async fn get(&self, key: &ObjectKey) -> StorageResult<Bytes>;
    /// Bytes `start..end` of `key` (the whole object without a range) as a
    /// stream; a range past the end is cut at the end.
    async fn read(
        &self,
        key: &ObjectKey,
        range: Option<std::ops::Range<u64>>,
    ) -> StorageResult<ByteStream>;
    async fn head(&self, key: &ObjectKey) -> StorageResult<ObjectMeta>;
    /// Writes the whole object atomically: readers see the old bytes or the
    /// new ones, never a part.
    async fn put(&self, key: &ObjectKey, bytes: Bytes) -> StorageResult<ObjectMeta>;
    /// Copies `from` to `to` inside the store (S3: a server-side
    /// `CopyObject`, no bytes through playgate), atomically for readers of
    /// `to`. The default reads and writes.
    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> StorageResult<ObjectMeta> {
        let bytes = self.get(from).await?;
        self.put(to, bytes).await
    }
    /// Deletes one object; `Ok(false)` when there was none.
    async fn delete(&self, key: &ObjectKey) -> StorageResult<bool>;
    /// Every key under `prefix` (a directory-like prefix ending in `/`, or
    /// empty for all), sorted.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectKey>>;
    /// Moves a finished local file in as `key` (a streamed upload). The
    /// default reads it whole and `put`s it; stores on the same disk
    /// rename.
    async fn put_file(&self, key: &ObjectKey, file: &std::path::Path) -> StorageResult<ObjectMeta> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", file.display())))?;
        let meta = self.put(key, bytes.into()).await?;
        let _ = tokio::fs::remove_file(file).await;
        Ok(meta)
    }
    /// A path ffmpeg can read `key` from, when the store is a local disk.
    fn local_path(&self, _key: &ObjectKey) -> Option<std::path::PathBuf> {
        None
    }
}

/// The first `n` bytes of `key` (fewer when the object is shorter), read
/// as a stream so nothing beyond them is held.
pub async fn read_head(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    n: usize,
) -> StorageResult<Vec<u8>> {
    use futures_util::StreamExt;
    let mut s = store.read(key, Some(0..n as u64)).await?;
    let mut out = Vec::with_capacity(n);
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| StorageError::Unavailable(format!("{key}: {e}")))?;
        out.extend_from_slice(&chunk);
        if out.len() >= n {
            break;
        }
    }
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "a\nb",
            "..",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectKey::parse("assets/a/v1/hls/720p/seg_001.m4s").is_ok());
        assert!(
            ObjectKey::parse("assets/a/..hidden").is_ok(),
            "dots inside a name are fine"
        );
    }
}
