//! Which tiers can play a published version, and with which delivery,
//! worked out when the version is published (`playgate publish`, the
//! local encoder, MediaConvert's `COMPLETE`) with the same code the master
//! endpoint runs (`hls::master::filter`, `playback::scope_master`,
//! `playback::deliverable`), so a tier that cannot play an asset is known
//! to the operator before any viewer asks. Stored on the asset record
//! (`GET /v1/assets/{id}`), logged, and sent with the job notification.
//!
//! The report holds for the tier rules of the moment it was made: a tier
//! edited later is not re-checked until the next publish.

use crate::domain::{AssetId, TierName};
use crate::hls::master::{MasterError, filter};
use crate::playback::{Deliverable, Layout, PlaybackError, deliverable, scope_master};
use crate::storage::{ObjectKey, ObjectStore, StorageError};
use crate::tiers::{Delivery, TierRules};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use url::Url;

/// A version's report: one entry per tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playability {
    pub version: u32,
    /// Epoch seconds.
    pub computed_at: u64,
    pub tiers: Vec<TierPlayability>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPlayability {
    pub tier: TierName,
    pub hls: Verdict,
    /// When the version has a DASH manifest (always cookie delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dash: Option<Verdict>,
}

/// Whether a tier can play one format, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub playable: bool,
    /// The delivery its viewers get (its own, or its `fallback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// `delivery` is the tier's fallback: its own cannot carry the layout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// How many renditions (variants, media, I-frame playlists) it gets.
    pub renditions: usize,
    /// Why it cannot play (or why it falls back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Verdict {
    fn refused(problem: impl Into<String>) -> Self {
        Verdict {
            playable: false,
            delivery: None,
            fallback: false,
            renditions: 0,
            problem: Some(problem.into()),
        }
    }
}

impl Playability {
    /// The tiers that cannot play the version at all, for the log.
    pub fn unplayable(&self) -> Vec<&TierName> {
        self.tiers
            .iter()
            .filter(|t| !t.hls.playable && !t.dash.as_ref().is_some_and(|d| d.playable))
            .map(|t| &t.tier)
            .collect()
    }

    /// One log line per tier: info when it plays as configured, warn
    /// otherwise.
    pub fn log(&self, asset: &AssetId) {
        for t in &self.tiers {
            let delivery = t.hls.delivery.map(|d| match d {
                Delivery::Cookies => "cookies",
                Delivery::Urls => "urls",
            });
            if t.hls.playable && !t.hls.fallback {
                tracing::info!(asset = %asset, version = self.version, tier = %t.tier, delivery, renditions = t.hls.renditions, "tier can play the published version");
            } else {
                tracing::warn!(asset = %asset, version = self.version, tier = %t.tier, playable = t.hls.playable, delivery, problem = t.hls.problem.as_deref().unwrap_or(""), "tier cannot play the published version as configured");
            }
        }
    }
}

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
                (Some(m), Ok(media)) => hls(m, &master_url, media, rules, &layout),
                (_, Err(why)) => Verdict::refused(why.clone()),
                (None, _) => Verdict::refused("the version has no hls/master.m3u8"),
            },
            dash: mpd.as_ref().map(|m| dash(m, &mpd_url, rules)),
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
    for url in crate::hls::master::rendition_playlists(&all.kept) {
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
        match crate::hls::scope::media_uris(url, &bytes) {
            Ok(uris) => out.insert(url.to_string(), uris),
            Err(e) => return Ok(Err(format!("{key}: {e}"))),
        };
    }
    Ok(Ok(out))
}

fn hls(
    master: &[u8],
    url: &Url,
    media: &HashMap<String, Vec<Url>>,
    rules: &TierRules,
    layout: &Layout<'_>,
) -> Verdict {
    let filtered = match filter(master, rules, Some(url)) {
        Ok(f) => f,
        Err(MasterError::NoVideoVariant) => {
            return Verdict::refused("nothing this tier may play remains in this asset");
        }
        Err(e) => return Verdict::refused(e.to_string()),
    };
    let scoped = scope_master(&filtered, |u| {
        Ok::<_, PlaybackError>(
            media
                .get(u.as_str())
                .cloned()
                .unwrap_or_else(|| vec![u.clone()]),
        )
    });
    let (allowed, scoped) = match scoped {
        Ok(s) => s,
        Err(e) => return Verdict::refused(e.to_string()),
    };
    let renditions = allowed.len();
    match deliverable(&allowed, &scoped, rules.delivery, rules.fallback, layout) {
        Deliverable::Asked(d) => Verdict {
            playable: true,
            delivery: Some(d),
            fallback: false,
            renditions,
            problem: None,
        },
        Deliverable::Fallback(d) => Verdict {
            playable: true,
            delivery: Some(d),
            fallback: true,
            renditions,
            problem: Some(format!(
                "{}; falls back to URL delivery",
                PlaybackError::NotPathSeparable
            )),
        },
        Deliverable::Unavailable { why, works } => Verdict::refused(match works {
            Some(Delivery::Urls) => format!("{why} (URL delivery, or fallback = \"urls\", works)"),
            Some(Delivery::Cookies) => format!("{why} (cookie delivery works)"),
            None => why.to_string(),
        }),
    }
}

fn dash(mpd: &[u8], url: &Url, rules: &TierRules) -> Verdict {
    let opts = crate::dash::mpd::MpdOptions {
        url: Some(url),
        signed_query: None,
    };
    let f = match crate::dash::mpd::filter(mpd, rules, &opts) {
        Ok(f) => f,
        Err(crate::dash::mpd::MpdError::NoVideoVariant) => {
            return Verdict::refused("nothing this tier may play remains in this asset");
        }
        Err(e) => return Verdict::refused(e.to_string()),
    };
    match f.scopes() {
        Ok(s) if s.path_separable => Verdict {
            playable: true,
            delivery: Some(Delivery::Cookies),
            fallback: false,
            renditions: f.renditions.iter().filter(|r| r.kept).count(),
            problem: None,
        },
        Ok(_) => Verdict::refused(PlaybackError::NotPathSeparable.to_string()),
        Err(e) => Verdict::refused(e.to_string()),
    }
}
