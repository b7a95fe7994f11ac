//! The `Store`: assets, tiers and jobs. Backends implement a small
//! document interface — versioned JSON records addressed by (kind, id) with
//! compare-and-set writes — and the typed operations are written once on
//! top of it, so SQLite (local) and DynamoDB (aws) behave the same and run
//! the same contract tests.
//!
//! Every write states what it expects (`Expect`): absent, a revision, or
//! anything. A stale expectation is `StoreError::Conflict`, which the API
//! turns into 409/412; nothing is half-written.

pub mod dynamodb;
pub mod sqlite;

use crate::domain::{AssetId, JobId, TierName};
use crate::engine::tiers::TierRules;
use async_trait::async_trait;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Record kinds. The string is the partition name in every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Asset,
    Tier,
    Job,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Asset => "asset",
            Kind::Tier => "tier",
            Kind::Job => "job",
        }
    }
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create: fails if the record exists.
    Absent,
    /// Update: fails unless the record exists at exactly this revision.
    Revision(u64),
    /// Upsert regardless.
    Any,
}

/// A stored record: its JSON body and revision (1 on create, +1 per write).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub revision: u64,
    pub body: serde_json::Value,
    pub updated_at: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the record changed or exists (expected {expected:?})")]
    Conflict { expected: Expect },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The backend interface.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Proves the store can take a write (readiness).
    async fn check(&self) -> StoreResult<()>;
    async fn get(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>>;
    /// Writes `body`; returns the new revision.
    async fn put(
        &self,
        kind: Kind,
        id: &str,
        body: &serde_json::Value,
        expect: Expect,
    ) -> StoreResult<u64>;
    /// Removes a record; `Ok(false)` when there was none.
    async fn delete(&self, kind: Kind, id: &str, expect: Expect) -> StoreResult<bool>;
    /// Records of a kind in id order, starting after `after`.
    async fn list(&self, kind: Kind, after: Option<&str>, limit: usize)
    -> StoreResult<Vec<Record>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetStatus {
    /// Created, waiting for its source upload.
    Created,
    Uploaded,
    Processing,
    Ready,
    Failed,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: AssetId,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub min_tier: Option<TierName>,
    pub status: AssetStatus,
    /// The encode version (`v{n}`) playback reads from.
    #[serde(default)]
    pub current_version: Option<u32>,
    #[serde(default)]
    pub renditions: Vec<String>,
    /// The current version's frame captures under `thumbs/`, in order
    /// (`thumb.0000000.jpg`, … — MediaConvert's naming, which the local
    /// encoder follows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thumbnails: Vec<String>,
    #[serde(default)]
    pub failure: Option<String>,
    /// Which tiers can play the current version, and how (worked out when
    /// it was published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playability: Option<crate::engine::playability::Playability>,
    /// The uploaded original (declared by `POST /v1/uploads`, filled in
    /// when the upload lands).
    #[serde(default)]
    pub source: Option<SourceObject>,
    /// The content keys of its encrypted versions, wrapped
    /// (`crate::protect`); emptied when the asset is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_keys: Vec<crate::domain::ContentKey>,
    pub created_at: u64,
}

/// An asset's original file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceObject {
    /// `assets/{id}/source/{filename}`.
    pub key: String,
    pub filename: String,
    pub content_type: String,
    /// Declared size; the upload must match it.
    pub size: u64,
    /// Set when a local upload is complete.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Set when a direct-to-S3 upload is complete (S3's ETag).
    #[serde(default)]
    pub etag: Option<String>,
    /// A multipart upload in progress (S3).
    #[serde(default)]
    pub upload_id: Option<String>,
}

impl SourceObject {
    /// The bytes have arrived.
    pub fn is_complete(&self) -> bool {
        self.sha256.is_some() || self.etag.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Submitted,
    Progressing,
    Complete,
    Error,
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub id: JobId,
    pub asset_id: AssetId,
    pub attempt: u32,
    /// The output version this job writes (`v{n}`).
    pub version: u32,
    pub state: JobState,
    #[serde(default)]
    pub progress: u8,
    #[serde(default)]
    pub backend_job_id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    pub created_at: u64,
    /// CreateJob requests sent for this job (counted before each is sent):
    /// after the first, one may have created a job whose answer was lost.
    #[serde(default)]
    pub submissions: u32,
}

/// A typed record with its revision (the API's ETag).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
    pub updated_at: u64,
}

fn decode<T: DeserializeOwned>(kind: Kind, r: Record) -> StoreResult<Versioned<T>> {
    let value = serde_json::from_value(r.body)
        .map_err(|e| StoreError::Corrupt(format!("{} {}: {e}", kind.as_str(), r.id)))?;
    Ok(Versioned {
        value,
        revision: r.revision,
        updated_at: r.updated_at,
    })
}

fn encode<T: Serialize>(v: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Typed operations, written once over any `Store`.
#[async_trait]
pub trait StoreExt: Store {
    async fn get_typed<T: DeserializeOwned + Send>(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<Versioned<T>>> {
        self.get(kind, id)
            .await?
            .map(|r| decode(kind, r))
            .transpose()
    }

    async fn put_typed<T: Serialize + Sync>(
        &self,
        kind: Kind,
        id: &str,
        value: &T,
        expect: Expect,
    ) -> StoreResult<u64> {
        let body = encode(value)?;
        self.put(kind, id, &body, expect).await
    }

    async fn list_typed<T: DeserializeOwned + Send>(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Versioned<T>>> {
        self.list(kind, after, limit)
            .await?
            .into_iter()
            .map(|r| decode(kind, r))
            .collect()
    }

    async fn get_asset(&self, id: &AssetId) -> StoreResult<Option<Versioned<Asset>>> {
        self.get_typed(Kind::Asset, id.as_str()).await
    }

    async fn put_asset(&self, asset: &Asset, expect: Expect) -> StoreResult<u64> {
        self.put_typed(Kind::Asset, asset.id.as_str(), asset, expect)
            .await
    }

    async fn get_tier(&self, name: &TierName) -> StoreResult<Option<Versioned<TierRules>>> {
        self.get_typed(Kind::Tier, name.as_str()).await
    }

    async fn put_tier(
        &self,
        name: &TierName,
        rules: &TierRules,
        expect: Expect,
    ) -> StoreResult<u64> {
        self.put_typed(Kind::Tier, name.as_str(), rules, expect)
            .await
    }

    /// Every tier (there are few), in name order.
    async fn list_tiers(&self) -> StoreResult<Vec<(TierName, Versioned<TierRules>)>> {
        let records = self.list(Kind::Tier, None, usize::MAX).await?;
        records
            .into_iter()
            .map(|r| {
                let name = TierName::parse(&r.id)
                    .map_err(|e| StoreError::Corrupt(format!("tier id {:?}: {e}", r.id)))?;
                Ok((name, decode(Kind::Tier, r)?))
            })
            .collect()
    }

    /// Inserts config-defined tiers that the store does not have yet; tiers
    /// already there (perhaps edited through the API) are left alone.
    /// Returns the names inserted.
    async fn seed_tiers<'a, I>(&self, tiers: I) -> StoreResult<Vec<TierName>>
    where
        I: IntoIterator<Item = (&'a TierName, &'a TierRules)> + Send,
        I::IntoIter: Send,
    {
        let mut inserted = Vec::new();
        for (name, rules) in tiers {
            match self.put_tier(name, rules, Expect::Absent).await {
                Ok(_) => inserted.push(name.clone()),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(inserted)
    }

    async fn get_job(&self, id: &JobId) -> StoreResult<Option<Versioned<Job>>> {
        self.get_typed(Kind::Job, id.as_str()).await
    }

    async fn put_job(&self, job: &Job, expect: Expect) -> StoreResult<u64> {
        self.put_typed(Kind::Job, job.id.as_str(), job, expect)
            .await
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
