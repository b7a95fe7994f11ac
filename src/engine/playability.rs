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
use crate::engine::authorise::{Deliverable, Layout, PlaybackError, deliverable, scope_master};
use crate::engine::hls::master::{MasterError, filter};
use crate::engine::tiers::{Delivery, TierRules};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use url::Url;

/// A version's report: one entry per tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Playability {
    pub version: u32,
    /// Epoch seconds.
    pub computed_at: u64,
    pub tiers: Vec<TierPlayability>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierPlayability {
    pub tier: TierName,
    pub hls: Verdict,
    /// When the version has a DASH manifest (always cookie delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dash: Option<Verdict>,
}

/// Whether a tier can play one format, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    pub fn refused(problem: impl Into<String>) -> Self {
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

/// A tier's verdict on a version's HLS master, its rendition playlists
/// already read (`media`: each playlist URL's URIs).
pub fn hls_verdict(
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

/// A tier's verdict on a version's MPD.
pub fn dash_verdict(mpd: &[u8], url: &Url, rules: &TierRules) -> Verdict {
    let opts = crate::engine::dash::mpd::MpdOptions {
        url: Some(url),
        signed_query: None,
    };
    let f = match crate::engine::dash::mpd::filter(mpd, rules, &opts) {
        Ok(f) => f,
        Err(crate::engine::dash::mpd::MpdError::NoVideoVariant) => {
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
