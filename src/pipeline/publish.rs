//! Publishing an already encoded directory as an asset's next version:
//! every file under `dir` (`hls/master.m3u8`, `hls/{rendition}/…`,
//! optionally `dash/…`) is copied to `assets/{id}/v{n}/…`, then the asset
//! record points at `v{n}` and is marked ready. The record is written
//! last and with compare-and-set, so a viewer sees the old version or the
//! whole new one, never a part. Before that, a layout that is not one
//! directory per rendition (a flat, MediaConvert-style tree) is made so
//! (`pipeline::layout`). `playgate publish` and the local encoder call this.

use crate::backends::storage::{ObjectKey, ObjectStore};
use crate::backends::store::{Asset, AssetStatus, Expect, Store, StoreExt};
use crate::domain::AssetId;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0} has no hls/master.m3u8")]
    NoMaster(PathBuf),
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error(transparent)]
    Storage(#[from] crate::backends::storage::StorageError),
    #[error(transparent)]
    Store(#[from] crate::backends::store::StoreError),
    #[error("asset {0} is deleted")]
    Deleted(AssetId),
    #[error(transparent)]
    Layout(#[from] crate::pipeline::layout::LayoutError),
}

fn files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), PublishError> {
    let io = |why: std::io::Error| PublishError::File {
        path: dir.to_owned(),
        why: why.to_string(),
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type().map_err(io)?;
        if kind.is_dir() {
            files(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .ok_or_else(|| PublishError::File {
                    path: path.clone(),
                    why: "not a UTF-8 path".into(),
                })?;
            out.push((rel.replace('\\', "/"), path.clone()));
        }
    }
    Ok(())
}

/// Copies the tree `from` into `to` (created), files and directories only.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let kind = e.file_type()?;
        let dest = to.join(e.file_name());
        if kind.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// The frame captures a version holds under `{version}/thumbs/`, in order
/// (file names).
pub async fn thumbnails_of(
    objects: &dyn ObjectStore,
    version: &str,
) -> Result<Vec<String>, crate::backends::storage::StorageError> {
    let prefix = format!("{version}/thumbs/");
    Ok(objects
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|k| k.as_str().strip_prefix(&prefix))
        .filter(|n| n.ends_with(".jpg") && !n.contains('/'))
        .map(str::to_owned)
        .collect())
}

/// Publishes `dir` as the next version of `id`; returns the version.
pub async fn publish_dir(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    id: &AssetId,
    title: Option<String>,
    dir: &Path,
    now: u64,
) -> Result<u32, PublishError> {
    publish_dir_with_keys(store, objects, id, title, dir, now, Vec::new()).await
}

/// `publish_dir` for an encrypted tree: `keys` (its content keys, from
/// `Protection::encrypt_dir`) are stored with the version, in the same
/// write that makes it current.
pub async fn publish_dir_with_keys(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    id: &AssetId,
    title: Option<String>,
    dir: &Path,
    now: u64,
    mut keys: Vec<crate::protect::ContentKey>,
) -> Result<u32, PublishError> {
    if !dir.join("hls/master.m3u8").is_file() {
        return Err(PublishError::NoMaster(dir.to_owned()));
    }
    let mut list = Vec::new();
    files(dir, dir, &mut list)?;
    let old = store.get_asset(id).await?;
    if old
        .as_ref()
        .is_some_and(|v| v.value.status == AssetStatus::Deleted)
    {
        return Err(PublishError::Deleted(id.clone()));
    }
    let version = old
        .as_ref()
        .and_then(|v| v.value.current_version)
        .unwrap_or(0)
        + 1;
    let prefix = format!("assets/{id}/v{version}");
    for (rel, path) in &list {
        let key = ObjectKey::parse(&format!("{prefix}/{rel}")).map_err(|e| PublishError::File {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let bytes = std::fs::read(path).map_err(|e| PublishError::File {
            path: path.clone(),
            why: e.to_string(),
        })?;
        objects.put(&key, bytes.into()).await?;
    }
    // One directory per rendition, whatever layout the directory had.
    let mut renditions = crate::pipeline::layout::ensure_separable(objects, &prefix)
        .await?
        .renditions;
    renditions.sort();
    let thumbnails = thumbnails_of(objects, &prefix).await?;
    let playability = report_for(store, objects, id, version, now).await?;
    playability.log(id);
    let playability = Some(playability);
    for k in &mut keys {
        k.version = version;
    }
    let (asset, expect) = match old {
        Some(v) => (
            Asset {
                content_keys: v.value.content_keys.iter().cloned().chain(keys).collect(),
                title: title.or(v.value.title.clone()),
                status: AssetStatus::Ready,
                current_version: Some(version),
                renditions,
                thumbnails,
                failure: None,
                playability,
                ..v.value
            },
            Expect::Revision(v.revision),
        ),
        None => (
            Asset {
                id: id.clone(),
                title,
                min_tier: None,
                status: AssetStatus::Ready,
                current_version: Some(version),
                renditions,
                thumbnails,
                failure: None,
                playability,
                source: None,
                content_keys: keys,
                created_at: now,
            },
            Expect::Absent,
        ),
    };
    store.put_asset(&asset, expect).await?;
    Ok(version)
}

/// The playability report of a version for every tier in the store.
pub async fn report_for(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    id: &AssetId,
    version: u32,
    now: u64,
) -> Result<crate::pipeline::playability::Playability, PublishError> {
    let tiers: Vec<_> = store
        .list_tiers()
        .await?
        .into_iter()
        .map(|(name, v)| (name, v.value))
        .collect();
    Ok(crate::pipeline::playability::report(objects, id, version, &tiers, now).await?)
}
