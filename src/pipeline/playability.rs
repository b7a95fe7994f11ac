//! The playability report on a published version (`engine::playability`),
//! read from object storage: the master, every playlist it names, the MPD.

use crate::backends::storage::{ObjectKey, ObjectStore, StorageError};
use crate::domain::{AssetId, TierName};
use crate::engine::authorise::Layout;
use crate::engine::hls::master::filter;
pub use crate::engine::playability::{Playability, TierPlayability, Verdict};
use crate::engine::playability::{dash_verdict, hls_verdict};
use crate::engine::tiers::TierRules;
use std::collections::HashMap;
use url::Url;

/// A base to resolve the version's relative URIs against; never fetched.
/// Published masters name only files of their version (`pipeline::layout`
/// refuses anything else), so the host does not matter.
const CDN: &str = "https://cdn.invalid";

/// The report for `assets/{id}/v{version}` as it is in `objects`.
pub async fn report(
    objects: &dyn ObjectStore,
    id: &AssetId,
    version: u32,
    tiers: &[(TierName, TierRules)],
    now: u64,
) -> Result<Playability, StorageError> {
    let prefix = format!("assets/{id}/v{version}");
    let (Ok(master_url), Ok(mpd_url)) = (
        Url::parse(&format!("{CDN}/{prefix}/hls/master.m3u8")),
        Url::parse(&format!("{CDN}/{prefix}/dash/manifest.mpd")),
    ) else {
        // Asset ids are URL-safe; this is never reached.
        return Ok(Playability {
            version,
            computed_at: now,
            tiers: Vec::new(),
        });
    };
    let master = read(objects, &format!("{prefix}/hls/master.m3u8")).await?;
    let media = match &master {
        Some(m) => read_media(objects, m, &master_url).await?,
        None => Err("the version has no hls/master.m3u8".to_owned()),
    };
    let mpd = read(objects, &format!("{prefix}/dash/manifest.mpd")).await?;
    let layout = Layout {
        cdn_base: CDN,
        gateway: "https://gateway.invalid",
    };
    let tiers = tiers
        .iter()
        .map(|(tier, rules)| TierPlayability {
            tier: tier.clone(),
            hls: match (&master, &media) {
                (Some(m), Ok(media)) => hls_verdict(m, &master_url, media, rules, &layout),
                (_, Err(why)) => Verdict::refused(why.clone()),
                (None, _) => Verdict::refused("the version has no hls/master.m3u8"),
            },
            dash: mpd.as_ref().map(|m| dash_verdict(m, &mpd_url, rules)),
        })
        .collect();
    Ok(Playability {
        version,
        computed_at: now,
        tiers,
    })
}

async fn read(objects: &dyn ObjectStore, key: &str) -> Result<Option<bytes::Bytes>, StorageError> {
    let Ok(k) = ObjectKey::parse(key) else {
        return Ok(None);
    };
    match objects.get(&k).await {
        Ok(b) => Ok(Some(b)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every rendition's URIs, by playlist URL; `Err` (for the report) when
/// the master or a playlist it names cannot be read as the server would.
async fn read_media(
    objects: &dyn ObjectStore,
    master: &[u8],
    master_url: &Url,
) -> Result<Result<HashMap<String, Vec<Url>>, String>, StorageError> {
    let all = match filter(master, &TierRules::default(), Some(master_url)) {
        Ok(f) => f,
        Err(e) => return Ok(Err(format!("the master cannot be read: {e}"))),
    };
    let mut out = HashMap::new();
    for url in crate::engine::hls::master::rendition_playlists(&all.kept) {
        let key = url
            .as_str()
            .strip_prefix(CDN)
            .and_then(|k| k.strip_prefix('/'))
            .map(|k| percent_encoding::percent_decode_str(k).decode_utf8_lossy());
        let Some(key) = key else {
            // Not in this version: its scope is its URL alone, as the
            // server does.
            out.insert(url.to_string(), vec![url.clone()]);
            continue;
        };
        let Some(bytes) = read(objects, &key).await? else {
            return Ok(Err(format!(
                "the master lists {key}, which the version does not have"
            )));
        };
        match crate::engine::hls::scope::media_uris(url, &bytes) {
            Ok(uris) => out.insert(url.to_string(), uris),
            Err(e) => return Ok(Err(format!("{key}: {e}"))),
        };
    }
    Ok(Ok(out))
}
