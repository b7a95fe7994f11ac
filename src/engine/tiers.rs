//! Tier rules: what each entitlement tier may play. This module holds the
//! rule data (`config` reads it); evaluation against renditions lives
//! with the manifest work. It knows nothing of HTTP or storage.

use crate::domain::HumanDuration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a tier's viewers receive their signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Cookies,
    Urls,
}

/// The order of variants in a filtered master (as MediaPackage offers).
/// Players start with the first variant listed, unless `start_height`
/// picks another one to list first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariantOrder {
    /// As the origin master lists them.
    #[default]
    Original,
    BandwidthAscending,
    BandwidthDescending,
}

/// Country allow/deny lists (ISO 3166-1 alpha-2, upper case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountryRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// One tier's rules. Absent limits mean "no limit".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, ToSchema)]
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
    /// When an asset's layout cannot carry `delivery` (cookies need one
    /// directory per rendition), deliver this way instead: only `urls`,
    /// for a cookie tier. Absent: such an asset is a 409 problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Delivery>,
    /// A duration such as `"2h"`, within `signing.max_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2h")]
    pub signature_ttl: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub playlist_ttl: Option<HumanDuration>,
    #[serde(default)]
    pub bind_ip: bool,
    #[serde(default, skip_serializing_if = "is_original")]
    pub variant_order: VariantOrder,
    /// List first (where players start) the highest kept variant at or below
    /// this height; the others keep `variant_order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_height: Option<u32>,
}

fn is_original(o: &VariantOrder) -> bool {
    *o == VariantOrder::Original
}

impl TierRules {
    /// Every problem with the values (not the shape) of these rules.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.max_height == Some(0) {
            out.push(("max_height", "must be more than zero".to_owned()));
        }
        if self.fallback.is_some()
            && (self.fallback != Some(Delivery::Urls) || self.delivery != Delivery::Cookies)
        {
            out.push((
                "fallback",
                "only \"urls\", for a tier whose delivery is cookies".to_owned(),
            ));
        }
        if self.start_height == Some(0) {
            out.push(("start_height", "must be more than zero".to_owned()));
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
            && let Some(bad) = c.iter().find(|c| !is_codec_entry(c))
        {
            out.push((
                "codecs",
                format!(
                    "{bad:?} is not an RFC 6381 codec (or prefix) such as avc1, ec-3, stpp.ttml.im1t, av01.0.08M.08"
                ),
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

impl TierRules {
    /// Lifetimes longer than `max` (`signing.max_ttl`): every grant of a
    /// tier is capped by the signing limit, so a longer one is a mistake.
    pub fn lifetime_problems(&self, max: std::time::Duration) -> Vec<(&'static str, String)> {
        [
            ("signature_ttl", &self.signature_ttl),
            ("playlist_ttl", &self.playlist_ttl),
        ]
        .into_iter()
        .filter_map(|(name, d)| {
            d.as_ref().filter(|d| d.0 > max).map(|_| {
                (
                    name,
                    format!(
                        "must be at most signing.max_ttl ({})",
                        humantime::format_duration(max)
                    ),
                )
            })
        })
        .collect()
    }
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

/// What the rules look at in one rendition (an HLS variant or a DASH
/// representation). `None` means the manifest did not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendition {
    pub bandwidth: Option<u64>,
    pub height: Option<u32>,
    /// Codec strings (`avc1.64001f`, `mp4a.40.2`), including supplemental ones.
    pub codecs: Option<Vec<String>>,
    pub frame_rate: Option<f64>,
    /// `SDR`, `PQ`, `HLG`; absent means SDR (as in the HLS spec).
    pub video_range: Option<String>,
    /// I-frame (trick-play) variants carry no frame rate by definition.
    pub iframe: bool,
    /// Image (thumbnail) tracks: their `jpeg` codec is not a video codec,
    /// so the codec rule does not apply; height and bandwidth do.
    pub image: bool,
}

impl TierRules {
    /// Whether this tier may have `r`. A rule that needs an attribute the
    /// rendition lacks excludes it (no `RESOLUTION` under a height rule),
    /// except frame rate on I-frame and image variants, codecs on image
    /// variants, and video range (absent = SDR).
    pub fn allows(&self, r: &Rendition) -> bool {
        if let Some(max) = self.max_height
            && r.height.is_none_or(|h| h > max)
        {
            return false;
        }
        if let Some(max) = self.max_bandwidth
            && r.bandwidth.is_none_or(|b| b > max)
        {
            return false;
        }
        if let Some(max) = self.max_frame_rate
            && !r.iframe
            && r.frame_rate.is_none_or(|f| f > max + 1e-3)
        {
            return false;
        }
        if !r.image && !self.allows_codecs(r.codecs.as_deref()) {
            return false;
        }
        if let Some(ranges) = &self.video_range {
            let range = r.video_range.as_deref().unwrap_or("SDR");
            if !ranges.iter().any(|v| v == range) {
                return false;
            }
        }
        true
    }

    /// The codec rule alone (what applies to audio-only renditions): every
    /// codec must match an allowed entry; no codecs listed under a codec
    /// rule is a refusal. See `codec_matches`.
    pub fn allows_codecs(&self, codecs: Option<&[String]>) -> bool {
        let Some(allowed) = &self.codecs else {
            return true;
        };
        let Some(codecs) = codecs else {
            return false;
        };
        codecs
            .iter()
            .all(|c| allowed.iter().any(|p| codec_matches(p, c.trim())))
    }

    /// Country rules: `country` is `None` when unknown (no trusted header).
    /// An unknown country passes a deny list and fails an allow list.
    pub fn allows_country(&self, country: Option<&str>) -> bool {
        let Some(rule) = &self.countries else {
            return true;
        };
        if !rule.allow.is_empty() {
            return country.is_some_and(|c| rule.allow.iter().any(|a| a.eq_ignore_ascii_case(c)));
        }
        !country.is_some_and(|c| rule.deny.iter().any(|d| d.eq_ignore_ascii_case(c)))
    }
}

/// Sample entries that carry one codec: H.264 in `avc1` or `avc3`, HEVC in
/// `hvc1` or `hev1` (parameter sets out of band or in band). A tier author
/// writing one means the codec.
const FAMILIES: [[&str; 2]; 2] = [["avc1", "avc3"], ["hvc1", "hev1"]];

/// Whether `entry` is an RFC 6381 codec or a prefix of one: ASCII letters,
/// digits, `.` and `-` (`ec-3`, `stpp.ttml.im1t`, `wvtt`, `dvh1.05.06`,
/// `av01.0.08M.08`), starting with a letter or digit.
pub fn is_codec_entry(entry: &str) -> bool {
    entry.len() <= 64
        && entry
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Whether the allowed `entry` admits the codec string `codec`. Both are
/// compared case-insensitively, element by element (`.`-separated): the
/// entry's elements must be the codec's first ones, so `avc1` admits
/// `avc1.64001f`, `mp4a.40.2` admits `mp4a.40.2` but not `mp4a.40.29`,
/// `stpp.ttml` admits `stpp.ttml.im1t`. A bare `avc1`, `avc3`, `hvc1` or
/// `hev1` stands for its codec (H.264 or HEVC, whichever sample entry
/// carries it); written with a trailing dot (`avc1.`) it admits that
/// sample entry only.
pub fn codec_matches(entry: &str, codec: &str) -> bool {
    let (entry, codec) = (entry.to_ascii_lowercase(), codec.to_ascii_lowercase());
    let (entry, strict) = match entry.strip_suffix('.') {
        Some(e) => (e.to_owned(), true),
        None => (entry, false),
    };
    let first = codec.split('.').next().unwrap_or("");
    let mut names = vec![entry.clone()];
    if !strict && let Some(f) = FAMILIES.iter().find(|f| f.contains(&entry.as_str())) {
        names = f.iter().map(|n| (*n).to_owned()).collect();
    }
    if !entry.contains('.') {
        return names.iter().any(|n| n == first);
    }
    let mut want = entry.split('.');
    let mut have = codec.split('.');
    want.all(|w| have.next() == Some(w))
}

/// The `free` tier of `config/local.toml`, for unit tests across modules.
#[cfg(test)]
pub(crate) fn free_tier() -> TierRules {
    TierRules {
        max_height: Some(480),
        max_bandwidth: Some(1_500_000),
        codecs: Some(vec!["avc1".into(), "mp4a".into()]),
        video_range: Some(vec!["SDR".into()]),
        max_frame_rate: Some(30.0),
        ..Default::default()
    }
}

#[cfg(test)]
mod eval_tests {
    use super::*;

    fn r(height: u32, bw: u64, codecs: &str, fps: f64, range: Option<&str>) -> Rendition {
        Rendition {
            bandwidth: Some(bw),
            height: Some(height),
            codecs: Some(codecs.split(',').map(str::to_owned).collect()),
            frame_rate: Some(fps),
            video_range: range.map(str::to_owned),
            iframe: false,
            image: false,
        }
    }

    use super::free_tier as free;

    #[test]
    fn free_tier() {
        let t = free();
        assert!(t.allows(&r(480, 1_400_000, "avc1.64001f,mp4a.40.2", 29.97, None)));
        assert!(
            !t.allows(&r(720, 1_400_000, "avc1.64001f,mp4a.40.2", 30.0, None)),
            "height"
        );
        assert!(
            !t.allows(&r(480, 1_600_000, "avc1.64001f,mp4a.40.2", 30.0, None)),
            "bandwidth"
        );
        assert!(
            !t.allows(&r(480, 1_400_000, "hvc1.2.4.L93.B0,mp4a.40.2", 30.0, None)),
            "codec"
        );
        assert!(
            !t.allows(&r(480, 1_400_000, "avc1.64001f", 60.0, None)),
            "frame rate"
        );
        assert!(
            !t.allows(&r(480, 1_400_000, "avc1.64001f", 30.0, Some("PQ"))),
            "range"
        );
        assert!(
            !t.allows(&r(480, 1_400_000, "avc1x.1", 30.0, None)),
            "prefix is per codec name"
        );
        assert!(
            t.allows(&r(480, 1_400_000, "avc3.64001f,mp4a.40.2", 30.0, None)),
            "avc1 names H.264, in avc3 too"
        );
    }

    #[test]
    fn codec_entries_follow_rfc_6381() {
        for ok in [
            "avc1",
            "ec-3",
            "ac-3",
            "ac-4",
            "stpp.ttml.im1t",
            "wvtt",
            "dvh1.05.06",
            "av01.0.08M.08",
            "avc1.",
        ] {
            assert!(is_codec_entry(ok), "{ok}");
        }
        for bad in ["", ".avc1", "avc 1", "avc1,mp4a", "a\"b", "é"] {
            assert!(!is_codec_entry(bad), "{bad:?}");
        }
        let m = codec_matches;
        assert!(m("ec-3", "ec-3"));
        assert!(m("EC-3", "ec-3"), "case-insensitive");
        assert!(!m("ec-3", "ac-3"));
        assert!(m("avc1", "avc3.640028") && m("avc3", "avc1.640028"));
        assert!(m("hvc1", "hev1.1.6.L120.90") && m("hev1", "hvc1.2.4.L153.B0"));
        assert!(
            m("avc1.", "avc1.640028") && !m("avc1.", "avc3.640028"),
            "one sample entry"
        );
        assert!(!m("avc1", "hvc1.1.6.L120.90"));
        assert!(m("stpp.ttml", "stpp.ttml.im1t") && !m("stpp.ttml", "stpp.ttmlx"));
        assert!(m("mp4a.40.2", "mp4a.40.2") && !m("mp4a.40.2", "mp4a.40.29"));
        assert!(m("av01", "av01.0.08M.08") && m("dvh1", "dvh1.05.06"));
        let dd = TierRules {
            codecs: Some(vec!["avc1".into(), "mp4a".into(), "ec-3".into()]),
            ..Default::default()
        };
        assert!(dd.problems().is_empty(), "ec-3 may be allowed");
        assert!(dd.allows_codecs(Some(&["ec-3".into()])));
    }

    #[test]
    fn missing_attributes_exclude_except_iframe_rate() {
        let t = free();
        let mut v = r(360, 500_000, "avc1.4d401e", 25.0, None);
        v.height = None;
        assert!(!t.allows(&v));
        let mut i = r(360, 100_000, "avc1.4d401e", 0.0, None);
        i.frame_rate = None;
        i.iframe = true;
        assert!(t.allows(&i));
        assert!(
            TierRules::default().allows(&Rendition::default()),
            "no rules, no limits"
        );
    }

    #[test]
    fn countries() {
        let deny = TierRules {
            countries: Some(CountryRule {
                allow: vec![],
                deny: vec!["KP".into()],
            }),
            ..Default::default()
        };
        assert!(deny.allows_country(Some("FR")));
        assert!(!deny.allows_country(Some("KP")));
        assert!(deny.allows_country(None), "unknown passes a deny list");
        let allow = TierRules {
            countries: Some(CountryRule {
                allow: vec!["FR".into()],
                deny: vec![],
            }),
            ..Default::default()
        };
        assert!(allow.allows_country(Some("fr")));
        assert!(!allow.allows_country(Some("DE")));
        assert!(!allow.allows_country(None), "unknown fails an allow list");
    }
}
