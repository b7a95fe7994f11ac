//! `ObjectStore` on a local directory. Writes go to a temporary file in the
//! target directory, are synced, then renamed over the target, so a crash
//! or a concurrent reader never sees a partial object.

use super::{ObjectKey, ObjectMeta, ObjectStore, StorageError, StorageResult};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct LocalStore {
    root: PathBuf,
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("local storage: {e}"))
}

impl LocalStore {
    pub fn open(root: &Path) -> StorageResult<Self> {
        std::fs::create_dir_all(root)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", root.display())))?;
        Ok(LocalStore {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind a key. Keys are already free of `..` and absolute
    /// parts, so the result is always inside the root.
    pub fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn meta(key: &ObjectKey, m: &std::fs::Metadata) -> ObjectMeta {
        let mtime_ns = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        ObjectMeta {
            key: key.clone(),
            size: m.len(),
            etag: format!("\"{:x}-{:x}-{:x}\"", m.ino(), m.len(), mtime_ns),
            modified_epoch: u64::try_from(m.mtime()).unwrap_or(0),
        }
    }
}

fn not_found_or(key: &ObjectKey, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound(key.clone())
    } else {
        unavailable(format!("{key}: {e}"))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<std::fs::Metadata> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::metadata(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn list_dir(root: &Path, dir: &Path, out: &mut Vec<ObjectKey>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            list_dir(root, &path, out)?;
        } else if ty.is_file() {
            let is_temp = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with('.') && n.contains(".tmp-"));
            if is_temp {
                continue;
            }
            if let Some(rel) = path.strip_prefix(root).ok().and_then(|p| p.to_str())
                && let Ok(k) = ObjectKey::parse(rel)
            {
                out.push(k);
            }
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| unavailable(format!("task: {e}")))?
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn check(&self) -> StorageResult<()> {
        let probe = self
            .root
            .join(format!(".readyz-{}", uuid::Uuid::new_v4().simple()));
        blocking(move || {
            write_atomic(&probe, b"ok").map_err(|e| unavailable(format!("not writable: {e}")))?;
            let back = std::fs::read(&probe).map_err(|e| unavailable(format!("not readable: {e}")));
            let _ = std::fs::remove_file(&probe);
            if back? == b"ok" {
                Ok(())
            } else {
                Err(unavailable("read back different bytes"))
            }
        })
        .await
    }

    async fn get(&self, key: &ObjectKey) -> StorageResult<Bytes> {
        match tokio::fs::read(self.path_of(key)).await {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                Err(StorageError::NotFound(key.clone()))
            }
            Err(e) => Err(not_found_or(key, e)),
        }
    }

    async fn read(
        &self,
        key: &ObjectKey,
        range: Option<std::ops::Range<u64>>,
    ) -> StorageResult<super::ByteStream> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = tokio::fs::File::open(self.path_of(key))
            .await
            .map_err(|e| not_found_or(key, e))?;
        let m = file.metadata().await.map_err(|e| not_found_or(key, e))?;
        if !m.is_file() {
            return Err(StorageError::NotFound(key.clone()));
        }
        let range = range.unwrap_or(0..m.len());
        let start = range.start.min(m.len());
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| unavailable(format!("{key}: {e}")))?;
        }
        let len = range.end.min(m.len()).saturating_sub(start);
        let reader = file.take(len);
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            super::READ_CHUNK,
        )))
    }

    async fn head(&self, key: &ObjectKey) -> StorageResult<ObjectMeta> {
        let m = tokio::fs::metadata(self.path_of(key))
            .await
            .map_err(|e| not_found_or(key, e))?;
        if !m.is_file() {
            return Err(StorageError::NotFound(key.clone()));
        }
        Ok(Self::meta(key, &m))
    }

    async fn put(&self, key: &ObjectKey, bytes: Bytes) -> StorageResult<ObjectMeta> {
        let path = self.path_of(key);
        let k = key.clone();
        blocking(move || {
            let m = write_atomic(&path, &bytes).map_err(|e| unavailable(format!("{k}: {e}")))?;
            Ok(Self::meta(&k, &m))
        })
        .await
    }

    async fn delete(&self, key: &ObjectKey) -> StorageResult<bool> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(unavailable(format!("{key}: {e}"))),
        }
    }

    async fn put_file(&self, key: &ObjectKey, file: &Path) -> StorageResult<ObjectMeta> {
        let target = self.path_of(key);
        let (key, file) = (key.clone(), file.to_owned());
        blocking(move || {
            let dir = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(unavailable)?;
            std::fs::rename(&file, &target).map_err(|e| unavailable(format!("{key}: {e}")))?;
            let m = std::fs::metadata(&target).map_err(|e| not_found_or(&key, e))?;
            Ok(LocalStore::meta(&key, &m))
        })
        .await
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> StorageResult<ObjectMeta> {
        let (src, dst, k) = (self.path_of(from), self.path_of(to), to.clone());
        let from = from.clone();
        blocking(move || {
            let dir = dst.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(unavailable)?;
            let name = dst.file_name().and_then(|n| n.to_str()).unwrap_or("object");
            let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
            let copied = std::fs::copy(&src, &tmp)
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|_| std::fs::rename(&tmp, &dst));
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&tmp);
                return Err(not_found_or(&from, e));
            }
            let m = std::fs::metadata(&dst).map_err(|e| unavailable(format!("{k}: {e}")))?;
            Ok(Self::meta(&k, &m))
        })
        .await
    }

    fn local_path(&self, key: &ObjectKey) -> Option<std::path::PathBuf> {
        Some(self.path_of(key))
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectKey>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            // Walk only the directory part of the prefix, then filter.
            let dir_part = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            if !dir_part.is_empty() && ObjectKey::parse(dir_part).is_err() {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            list_dir(&root, &root.join(dir_part), &mut out).map_err(unavailable)?;
            out.retain(|k| k.as_str().starts_with(&prefix));
            out.sort();
            Ok(out)
        })
        .await
    }
}
