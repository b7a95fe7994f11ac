//! Master playlist filtering for a tier: variants (`EXT-X-STREAM-INF` with
//! their URI line), I-frame and image (trick-play) variants are kept or
//! removed by `TierRules::allows`; `EXT-X-MEDIA` renditions of groups no
//! remaining variant references are dropped. Every other line is copied
//! byte for byte. `EXT-X-DEFINE` `NAME`/`VALUE` variables are substituted
//! for evaluation only (output untouched); a variant whose attributes use a
//! variable we cannot resolve (`IMPORT`, `QUERYPARAM`) is evaluated without
//! that attribute, so rules needing it exclude it.
//!
//! Not yet: URI rewriting to CDN/gateway URLs, per-tier variant order, and
//! `QUERYPARAM`/`IMPORT` resolution (issue 6).

use super::{Attr, HlsError, Line, attributes, lines, tag_name};
use crate::tiers::{Rendition, TierRules};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Hls(#[from] HlsError),
    #[error("no video variant is left for this tier")]
    NoVideoVariant,
}

/// The filtered playlist and what was kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    pub playlist: String,
    /// URIs of the kept `EXT-X-STREAM-INF` variants, in order.
    pub variants: Vec<String>,
    /// URIs of kept I-frame/image variants and media renditions.
    pub other_uris: Vec<String>,
}

fn substitute(value: &str, vars: &HashMap<&str, &str>) -> Option<String> {
    if !value.contains("{$") {
        return Some(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("{$") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        out.push_str(vars.get(&rest[start + 2..end])?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn lookup(attrs: &[Attr<'_>], name: &str, vars: &HashMap<&str, &str>) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| substitute(a.value(), vars))
}

/// What the rules see of a variant's attributes.
pub fn rendition_of(attrs: &[Attr<'_>], iframe: bool, vars: &HashMap<&str, &str>) -> Rendition {
    let bandwidth = lookup(attrs, "BANDWIDTH", vars).and_then(|b| b.parse().ok());
    let height = lookup(attrs, "RESOLUTION", vars)
        .and_then(|r| r.split_once(['x', 'X']).and_then(|(_, h)| h.parse().ok()));
    let mut codecs: Option<Vec<String>> =
        lookup(attrs, "CODECS", vars).map(|c| c.split(',').map(|s| s.trim().to_owned()).collect());
    if let (Some(list), Some(sup)) = (&mut codecs, lookup(attrs, "SUPPLEMENTAL-CODECS", vars)) {
        // `dvh1.08.07/db4h`: the codec is before the brand list.
        list.extend(
            sup.split(',')
                .map(|s| s.split('/').next().unwrap_or("").trim().to_owned()),
        );
    }
    Rendition {
        bandwidth,
        height,
        codecs,
        frame_rate: lookup(attrs, "FRAME-RATE", vars).and_then(|f| f.parse().ok()),
        video_range: lookup(attrs, "VIDEO-RANGE", vars),
        iframe,
    }
}

fn attrs_of<'a>(line: &'a str, tag: &str) -> Vec<Attr<'a>> {
    line.get(tag.len() + 2..)
        .map(attributes)
        .unwrap_or_default()
}

/// Filters `master` for `rules`.
pub fn filter(master: &[u8], rules: &TierRules) -> Result<Filtered, MasterError> {
    let lines = lines(master)?;
    let mut vars: HashMap<&str, &str> = HashMap::new();
    for l in &lines {
        if tag_name(l.text) == Some("EXT-X-DEFINE") {
            let a = attrs_of(l.text, "EXT-X-DEFINE");
            if let (Some(n), Some(v)) = (
                a.iter().find(|x| x.name == "NAME"),
                a.iter().find(|x| x.name == "VALUE"),
            ) {
                vars.insert(n.value(), v.value());
            }
        }
    }

    // Pass 1: decide which lines go, and which groups stay referenced.
    let mut drop = vec![false; lines.len()];
    let mut referenced: HashSet<(&str, String)> = HashSet::new();
    let mut variants = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let text = lines[i].text;
        match tag_name(text) {
            Some("EXT-X-STREAM-INF") => {
                let attrs = attrs_of(text, "EXT-X-STREAM-INF");
                // The variant's URI is the next line that is not a tag or comment.
                let uri_at = (i + 1..lines.len()).find(|&j| {
                    let t = lines[j].text.trim();
                    !t.is_empty() && !t.starts_with('#')
                });
                let keep = rules.allows(&rendition_of(&attrs, false, &vars));
                if keep {
                    for (attr, kind) in [
                        ("AUDIO", "AUDIO"),
                        ("VIDEO", "VIDEO"),
                        ("SUBTITLES", "SUBTITLES"),
                        ("CLOSED-CAPTIONS", "CLOSED-CAPTIONS"),
                    ] {
                        if let Some(a) = attrs.iter().find(|a| a.name == attr && a.quoted()) {
                            referenced.insert((kind, a.value().to_owned()));
                        }
                    }
                    if let Some(j) = uri_at {
                        variants.push(lines[j].text.trim().to_owned());
                    }
                } else {
                    let end = uri_at.unwrap_or(i);
                    for d in &mut drop[i..=end] {
                        *d = true;
                    }
                    i = end;
                }
            }
            Some(tag @ ("EXT-X-I-FRAME-STREAM-INF" | "EXT-X-IMAGE-STREAM-INF")) => {
                let attrs = attrs_of(text, tag);
                if !rules.allows(&rendition_of(&attrs, true, &vars)) {
                    drop[i] = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if variants.is_empty() {
        return Err(MasterError::NoVideoVariant);
    }
    let mut other_uris = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if drop[i] {
            continue;
        }
        match tag_name(l.text) {
            Some("EXT-X-MEDIA") => {
                let a = attrs_of(l.text, "EXT-X-MEDIA");
                let kind = a
                    .iter()
                    .find(|x| x.name == "TYPE")
                    .map(|x| x.value())
                    .unwrap_or("");
                let group = a
                    .iter()
                    .find(|x| x.name == "GROUP-ID")
                    .map(|x| x.value())
                    .unwrap_or("");
                if !referenced.contains(&(kind, group.to_owned())) {
                    drop[i] = true;
                } else if let Some(u) = a.iter().find(|x| x.name == "URI") {
                    other_uris.push(u.value().to_owned());
                }
            }
            Some(tag @ ("EXT-X-I-FRAME-STREAM-INF" | "EXT-X-IMAGE-STREAM-INF")) => {
                if let Some(u) = attrs_of(l.text, tag).iter().find(|x| x.name == "URI") {
                    other_uris.push(u.value().to_owned());
                }
            }
            _ => {}
        }
    }
    let mut playlist = String::with_capacity(master.len());
    for (l, d) in lines.iter().zip(&drop) {
        if !d {
            push_line(&mut playlist, l);
        }
    }
    Ok(Filtered {
        playlist,
        variants,
        other_uris,
    })
}

fn push_line(out: &mut String, l: &Line<'_>) {
    out.push_str(l.text);
    out.push_str(l.ending);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = r#"#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
# a comment the filter must keep
#EXT-X-DEFINE:NAME="codec",VALUE="avc1.64001f"
#EXT-X-SESSION-DATA:DATA-ID="com.example.title",VALUE="Demo"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,URI="audio_en/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="atmos",NAME="English Atmos",LANGUAGE="en",DEFAULT=YES,URI="audio_atmos/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="subs_en/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="{$codec},mp4a.40.2",FRAME-RATE=30,AUDIO="aac",SUBTITLES="subs",X-UNKNOWN=1
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30,AUDIO="aac",SUBTITLES="subs"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=20000000,RESOLUTION=3840x2160,CODECS="hvc1.2.4.L153.B0,ec-3",SUPPLEMENTAL-CODECS="dvh1.08.07/db4h",VIDEO-RANGE=PQ,FRAME-RATE=60,AUDIO="atmos"
2160p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS="avc1.64001f"
noresolution/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,RESOLUTION=640x360,CODECS="avc1.64001f",URI="360p/iframe.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=900000,RESOLUTION=3840x2160,CODECS="hvc1.2.4.L153.B0",VIDEO-RANGE=PQ,URI="2160p/iframe.m3u8"
#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=20000,RESOLUTION=3840x2160,CODECS="jpeg",URI="thumbs_2160/index.m3u8"
"#;

    fn free() -> TierRules {
        TierRules {
            max_height: Some(480),
            codecs: Some(vec!["avc1".into(), "mp4a".into()]),
            video_range: Some(vec!["SDR".into()]),
            max_frame_rate: Some(30.0),
            ..Default::default()
        }
    }

    #[test]
    fn free_tier_sees_only_what_it_may_have() {
        let f = filter(MASTER.as_bytes(), &free()).unwrap();
        assert_eq!(f.variants, ["360p/index.m3u8"]);
        assert!(!f.playlist.contains("720p"));
        assert!(
            !f.playlist.contains("2160p"),
            "no 2160p variant or trick track leaks"
        );
        assert!(!f.playlist.contains("thumbs_2160"));
        assert!(
            !f.playlist.contains("atmos"),
            "an unreferenced group is dropped"
        );
        assert!(
            !f.playlist.contains("noresolution"),
            "no RESOLUTION under a height rule"
        );
        assert!(f.playlist.contains("360p/iframe.m3u8"));
        assert!(f.playlist.contains("audio_en/index.m3u8") && f.playlist.contains("subs_en"));
        for kept in [
            "# a comment the filter must keep",
            "#EXT-X-DEFINE:NAME=\"codec\"",
            "#EXT-X-SESSION-DATA",
            "X-UNKNOWN=1",
        ] {
            assert!(f.playlist.contains(kept), "{kept} lost");
        }
        assert_eq!(
            f.other_uris,
            [
                "audio_en/index.m3u8",
                "subs_en/index.m3u8",
                "360p/iframe.m3u8"
            ]
        );
    }

    #[test]
    fn no_limits_keep_everything_byte_for_byte() {
        let f = filter(MASTER.as_bytes(), &TierRules::default()).unwrap();
        assert_eq!(f.playlist, MASTER);
        assert_eq!(f.variants.len(), 4);
    }

    #[test]
    fn filtering_twice_equals_filtering_once() {
        let once = filter(MASTER.as_bytes(), &free()).unwrap();
        let twice = filter(once.playlist.as_bytes(), &free()).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn nothing_playable_is_an_error() {
        let rules = TierRules {
            max_height: Some(144),
            ..Default::default()
        };
        assert_eq!(
            filter(MASTER.as_bytes(), &rules),
            Err(MasterError::NoVideoVariant)
        );
        assert!(matches!(
            filter(b"nope", &rules),
            Err(MasterError::Hls(HlsError::MissingHeader))
        ));
    }
}
