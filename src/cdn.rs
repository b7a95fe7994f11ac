//! Telling the CDN to forget an asset. Every encode writes a new version
//! prefix, so a re-encode needs no invalidation; a delete or takedown
//! does: one wildcard path, `/assets/{id}/*` (CloudFront's first 1,000
//! paths a month are free, and a wildcard counts as one). The local edge
//! caches nothing, so locally there is nothing to do.

use crate::domain::AssetId;
use async_trait::async_trait;

/// How long segments, init segments and thumbnails are kept (a year):
/// they never change under their version prefix.
pub const SEGMENT_MAX_AGE: u64 = 31_536_000;

/// The design's cache policy by file type, as the local edge sends it and
/// as `deploy/` makes CloudFront send it: playlists and MPDs short
/// (`cdn.playlist_max_age`), everything else immutable.
pub fn cache_control(path: &str, playlist_max_age: u64) -> String {
    match crate::http::edge::content_type(path) {
        "application/vnd.apple.mpegurl" | "application/dash+xml" => {
            format!("public, max-age={playlist_max_age}")
        }
        _ => format!("public, max-age={SEGMENT_MAX_AGE}, immutable"),
    }
}

#[async_trait]
pub trait Invalidator: Send + Sync + 'static {
    /// Invalidates `/assets/{id}/*`; `reference` makes retries of one
    /// delete the same request. Returns the CDN's invalidation id.
    async fn invalidate_asset(
        &self,
        id: &AssetId,
        reference: &str,
    ) -> Result<Option<String>, String>;
}

/// Local mode: nothing is cached at the edge.
pub struct NoCdnCache;

#[async_trait]
impl Invalidator for NoCdnCache {
    async fn invalidate_asset(
        &self,
        _id: &AssetId,
        _reference: &str,
    ) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// CloudFront `CreateInvalidation` on the configured distribution.
pub struct CloudFrontInvalidator {
    client: aws_sdk_cloudfront::Client,
    distribution_id: String,
}

impl CloudFrontInvalidator {
    pub fn new(sdk: &aws_config::SdkConfig, distribution_id: impl Into<String>) -> Self {
        CloudFrontInvalidator {
            client: aws_sdk_cloudfront::Client::new(sdk),
            distribution_id: distribution_id.into(),
        }
    }
}

#[async_trait]
impl Invalidator for CloudFrontInvalidator {
    async fn invalidate_asset(
        &self,
        id: &AssetId,
        reference: &str,
    ) -> Result<Option<String>, String> {
        use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
        let paths = Paths::builder()
            .quantity(1)
            .items(format!("/assets/{id}/*"))
            .build()
            .map_err(|e| e.to_string())?;
        let batch = InvalidationBatch::builder()
            .paths(paths)
            .caller_reference(reference)
            .build()
            .map_err(|e| e.to_string())?;
        let out = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| crate::aws::said(&e))?;
        Ok(out.invalidation.map(|i| i.id))
    }
}
