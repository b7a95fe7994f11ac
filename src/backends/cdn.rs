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
    match content_type(path) {
        "application/vnd.apple.mpegurl" | "application/dash+xml" => {
            format!("public, max-age={playlist_max_age}")
        }
        _ => format!("public, max-age={SEGMENT_MAX_AGE}, immutable"),
    }
}

/// What a backend may have signed: one asset's published output,
/// `{cdn}/assets/{id}/v{n}/…`. `text` is a URL (`pattern = false`: a query
/// may follow `?`) or a CloudFront resource pattern (`pattern = true`:
/// `*` and `?` are wildcards, allowed only after `v{n}/`). Refused: other
/// prefixes, the uploaded originals (`source/`), dot and empty segments,
/// encoded dots and separators (`%2e`, `%2f`, `%5c`), backslashes and
/// control characters. The asset and version, for the caller to check
/// they are published.
pub fn grant_target(cdn_base: &str, text: &str, pattern: bool) -> Result<(AssetId, u32), String> {
    let prefix = format!("{}/assets/", cdn_base.trim_end_matches('/'));
    let outside =
        || format!("only one asset's published output is signed: {prefix}{{asset}}/v{{n}}/…");
    let rest = text.strip_prefix(&prefix).ok_or_else(outside)?;
    if rest
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\' || b == b'#')
    {
        return Err("URLs carry no spaces, backslashes, fragments or control characters".into());
    }
    let lower = rest.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err("encoded dots and separators (%2e, %2f, %5c) are not signed".into());
    }
    let path = if pattern {
        rest
    } else {
        rest.split('?').next().unwrap_or_default()
    };
    let mut segments = path.split('/');
    let (id, version) = (segments.next(), segments.next());
    let wild = |s: &str| s.contains(['*', '?']);
    let id = id
        .filter(|s| !wild(s))
        .and_then(|s| AssetId::parse(s).ok())
        .ok_or_else(outside)?;
    let version = version
        .filter(|v| !wild(v))
        .and_then(|v| v.strip_prefix('v'))
        .filter(|n| !n.starts_with('0'))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(outside)?;
    let inside: Vec<&str> = segments.collect();
    if inside.is_empty() || inside.iter().any(|s| s.is_empty()) {
        return Err(outside());
    }
    if inside.iter().any(|s| matches!(*s, "." | "..")) {
        return Err("dot segments are not signed".into());
    }
    Ok((id, version))
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
            .map_err(|e| crate::backends::aws::said(&e))?;
        Ok(out.invalidation.map(|i| i.id))
    }
}

/// Content type by extension, as the pipeline's outputs are named.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" | "m4v" | "cmfv" => "video/mp4",
        "m4a" | "cmfa" => "audio/mp4",
        "aac" => "audio/aac",
        "vtt" | "webvtt" => "text/vtt",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "key" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDN: &str = "https://cdn.example.com";

    #[test]
    fn grants_name_one_asset_and_version() {
        let ok = |t: &str, p: bool| grant_target(CDN, &format!("{CDN}{t}"), p);
        assert_eq!(
            ok("/assets/clip/v3/hls/720p/*", true),
            Ok(("clip".parse().unwrap(), 3))
        );
        assert!(ok("/assets/clip/v1/hls/master.m3u8?x=1", false).is_ok());
        for bad in [
            "/assets/*",
            "/assets/c*/v1/x",
            "/assets/clip/v*/x",
            "/assets/clip/v01/x",
            "/assets/clip/v0/x",
            "/assets/clip/source/x",
            "/assets/clip/v1",
            "/assets/clip/v1/",
            "/assets/clip/v1//x",
            "/assets/clip/v1/../x",
            "/assets/clip/v1/%2E%2E/x",
            "/assets/clip/v1/a%2Fb",
            "/assets/clip/v1/a\\b",
            "/other/clip/v1/x",
        ] {
            assert!(ok(bad, true).is_err(), "{bad}");
        }
        assert!(grant_target(CDN, "https://cdn.example.com.evil/assets/clip/v1/x", true).is_err());
    }
}
