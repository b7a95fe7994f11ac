//! Tier rules: what each entitlement tier may play. This module holds the
//! rule data and reads it from config; evaluation against renditions lives
//! with the manifest work. It knows nothing of HTTP or storage.

use crate::config::HumanDuration;
use serde::{Deserialize, Serialize};

/// How a tier's viewers receive their signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Cookies,
    Urls,
}

/// Country allow/deny lists (ISO 3166-1 alpha-2, upper case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CountryRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// One tier's rules. Absent limits mean "no limit".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TierRules {
    /// Ordering for assets' `min_tier`: a tier satisfies `min_tier` when its
    /// rank is at least that tier's rank.
    #[serde(default)]
    pub rank: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// `BANDWIDTH` attribute ceiling, bits/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bandwidth: Option<u64>,
    /// Allowed codec prefixes (`avc1`, `hvc1`, `mp4a`); absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<Vec<String>>,
    /// Allowed `VIDEO-RANGE` values (`SDR`, `PQ`, `HLG`); absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_range: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<CountryRule>,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_ttl: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist_ttl: Option<HumanDuration>,
    #[serde(default)]
    pub bind_ip: bool,
}

impl TierRules {
    /// Every problem with the values (not the shape) of these rules.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.max_height == Some(0) {
            out.push(("max_height", "must be more than zero".to_owned()));
        }
        if self.max_bandwidth == Some(0) {
            out.push(("max_bandwidth", "must be more than zero".to_owned()));
        }
        if let Some(f) = self.max_frame_rate
            && !(f.is_finite() && f > 0.0)
        {
            out.push(("max_frame_rate", "must be a positive number".to_owned()));
        }
        if let Some(c) = &self.codecs
            && c.iter()
                .any(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        {
            out.push((
                "codecs",
                "codec prefixes are letters, digits and dots".to_owned(),
            ));
        }
        if let Some(v) = &self.video_range
            && let Some(bad) = v
                .iter()
                .find(|r| !matches!(r.as_str(), "SDR" | "PQ" | "HLG"))
        {
            out.push(("video_range", format!("{bad:?} is not one of SDR, PQ, HLG")));
        }
        if let Some(c) = &self.countries {
            if !c.allow.is_empty() && !c.deny.is_empty() {
                out.push(("countries", "set allow or deny, not both".to_owned()));
            }
            if let Some(bad) = c
                .allow
                .iter()
                .chain(&c.deny)
                .find(|cc| cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_uppercase()))
            {
                out.push((
                    "countries",
                    format!("{bad:?} is not an ISO 3166 alpha-2 code"),
                ));
            }
        }
        for (name, d) in [
            ("signature_ttl", &self.signature_ttl),
            ("playlist_ttl", &self.playlist_ttl),
        ] {
            if let Some(d) = d
                && d.0.is_zero()
            {
                out.push((name, "must be more than zero".to_owned()));
            }
        }
        out
    }
}

/// Reads one `[tiers.NAME]` table field by field, recording every problem.
pub(crate) fn read_rules(s: &mut crate::config::ConfigSection<'_>) -> TierRules {
    let rules = TierRules {
        rank: s.or("rank", 0),
        max_height: s.opt("max_height"),
        max_bandwidth: s.opt("max_bandwidth"),
        codecs: s.opt("codecs"),
        video_range: s.opt("video_range"),
        max_frame_rate: s.opt("max_frame_rate"),
        countries: s.opt("countries"),
        delivery: s.or("delivery", Delivery::Cookies),
        signature_ttl: s.opt("signature_ttl"),
        playlist_ttl: s.opt("playlist_ttl"),
        bind_ip: s.or("bind_ip", false),
    };
    for (field, reason) in rules.problems() {
        s.problem(field, reason);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_problems_are_all_reported() {
        let r = TierRules {
            max_height: Some(0),
            video_range: Some(vec!["HDR10".into()]),
            countries: Some(CountryRule {
                allow: vec!["us".into()],
                deny: vec![],
            }),
            ..Default::default()
        };
        let fields: Vec<_> = r.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["max_height", "video_range", "countries"]);
    }

    #[test]
    fn json_round_trip() {
        let r: TierRules =
            serde_json::from_str(r#"{"max_height":480,"codecs":["avc1"],"signature_ttl":"2h"}"#)
                .unwrap();
        assert_eq!(r.max_height, Some(480));
        let back: TierRules = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
