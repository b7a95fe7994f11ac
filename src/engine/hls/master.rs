//! Master playlist filtering for a tier, and URI rewriting.
//!
//! `filter` keeps or removes variants (`EXT-X-STREAM-INF` with their URI
//! line), I-frame and image (trick-play) variants by `TierRules::allows`,
//! drops the `EXT-X-MEDIA` renditions of groups no remaining variant
//! references, and orders the kept variants as the tier asks. Every other
//! line is copied byte for byte. Only whole groups are ever dropped, so the
//! `DEFAULT`/`AUTOSELECT` choices inside a group and a `CLOSED-CAPTIONS=NONE`
//! convention stay as authored; every remaining group reference names a
//! group that is still there.
//!
//! Variables (`EXT-X-DEFINE` with `NAME`/`VALUE`, or `QUERYPARAM` taken
//! from the master URL's query) are substituted for evaluation and URI
//! resolution; the `EXT-X-DEFINE` lines themselves are kept as written and
//! stay before their uses. `IMPORT` belongs to media playlists, so in a
//! master it defines nothing; an attribute using an unknown variable is
//! treated as absent, so a rule that needs it excludes the variant.
//!
//! `rewrite` then replaces each URI of a (filtered) master with what the
//! caller maps it to: absolute CDN URLs for cookie delivery, gateway URLs
//! with a signed query for URL delivery.

use super::{Attr, HlsError, Line, attributes, lines, tag_name};
use crate::engine::tiers::{Rendition, TierRules, VariantOrder};
use std::collections::{HashMap, HashSet};
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Hls(#[from] HlsError),
    #[error("no video variant is left for this tier")]
    NoVideoVariant,
}

/// What a URI in a master stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriKind {
    /// The media playlist of an `EXT-X-STREAM-INF` variant.
    Variant,
    /// `EXT-X-I-FRAME-STREAM-INF`.
    IFrame,
    /// `EXT-X-IMAGE-STREAM-INF` (trick-play thumbnails).
    Image,
    /// An `EXT-X-MEDIA` rendition (audio, subtitles, alternate video).
    Media,
    /// `EXT-X-SESSION-DATA`, `EXT-X-SESSION-KEY`, `EXT-X-CONTENT-STEERING`:
    /// not a rendition, only resolved when rewriting.
    Other,
}

impl UriKind {
    /// Whether the URI is a rendition's media playlist.
    pub fn is_rendition(self) -> bool {
        self != UriKind::Other
    }
}

/// One URI of a master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterUri {
    pub kind: UriKind,
    /// After variable substitution (as written when a variable is unknown).
    pub uri: String,
    /// Resolved against the master's URL, when one was given and the URI
    /// is relative or http(s).
    pub url: Option<Url>,
}

/// The filtered playlist and the rendition URIs on each side.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    pub playlist: String,
    /// Rendition URIs of the output, in output order.
    pub kept: Vec<MasterUri>,
    /// Rendition URIs this tier may not have. A group no variant names
    /// (not offered to anyone) is dropped but is not among them.
    pub removed: Vec<MasterUri>,
}

/// The distinct resolved playlist URLs of the rendition URIs in `uris`
/// (two tags may name one playlist), in order.
pub fn rendition_playlists<'a>(uris: impl IntoIterator<Item = &'a MasterUri>) -> Vec<&'a Url> {
    let mut out: Vec<&Url> = Vec::new();
    for u in uris.into_iter().filter(|u| u.kind.is_rendition()) {
        if let Some(url) = &u.url
            && !out.contains(&url)
        {
            out.push(url);
        }
    }
    out
}

impl Filtered {
    /// The kept `EXT-X-STREAM-INF` variants, in output order.
    pub fn variants(&self) -> impl Iterator<Item = &MasterUri> {
        self.kept.iter().filter(|u| u.kind == UriKind::Variant)
    }
}

pub(crate) type Vars = HashMap<String, String>;

/// Variables a master defines: `NAME`/`VALUE`, and `QUERYPARAM` from the
/// query of the master's URL.
pub(crate) fn variables(lines: &[Line<'_>], url: Option<&Url>) -> Vars {
    let mut vars = Vars::new();
    for l in lines {
        if tag_name(l.text) != Some("EXT-X-DEFINE") {
            continue;
        }
        let a = attrs_of(l.text, "EXT-X-DEFINE");
        let get = |n: &str| a.iter().find(|x| x.name == n).map(Attr::value);
        if let (Some(n), Some(v)) = (get("NAME"), get("VALUE")) {
            vars.insert(n.to_owned(), v.to_owned());
        } else if let (Some(q), Some(url)) = (get("QUERYPARAM"), url)
            && let Some((_, v)) = url.query_pairs().find(|(k, _)| k == q)
        {
            vars.insert(q.to_owned(), v.into_owned());
        }
    }
    vars
}

/// Replaces `{$name}` references; `None` when one is not defined.
pub(crate) fn substitute(value: &str, vars: &Vars) -> Option<String> {
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

fn lookup(attrs: &[Attr<'_>], name: &str, vars: &Vars) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| substitute(a.value(), vars))
}

/// What the rules see of a variant's attributes.
fn rendition_of(attrs: &[Attr<'_>], tag: &str, vars: &Vars) -> Rendition {
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
        iframe: tag != "EXT-X-STREAM-INF",
        image: tag == "EXT-X-IMAGE-STREAM-INF",
    }
}

fn attrs_of<'a>(line: &'a str, tag: &str) -> Vec<Attr<'a>> {
    line.get(tag.len() + 2..)
        .map(attributes)
        .unwrap_or_default()
}

/// Where a URI sits: the whole line (a variant's URI line) or the value of
/// one attribute (without its quotes), as a byte range of the line.
#[derive(Debug, Clone, Copy)]
struct Site {
    kind: UriKind,
    span: (usize, usize),
}

/// Where the URI of a line is, if it holds one. `is_variant_uri`: the line
/// is the URI line of an `EXT-X-STREAM-INF` (see `variant_uri_lines`).
fn site_of(text: &str, is_variant_uri: bool) -> Option<Site> {
    if is_variant_uri {
        let start = text.len() - text.trim_start().len();
        let end = text.trim_end().len();
        return Some(Site {
            kind: UriKind::Variant,
            span: (start, end),
        });
    }
    let tag = tag_name(text)?;
    let (kind, attr) = match tag {
        "EXT-X-I-FRAME-STREAM-INF" => (UriKind::IFrame, "URI"),
        "EXT-X-IMAGE-STREAM-INF" => (UriKind::Image, "URI"),
        "EXT-X-MEDIA" => (UriKind::Media, "URI"),
        "EXT-X-SESSION-DATA" | "EXT-X-SESSION-KEY" => (UriKind::Other, "URI"),
        "EXT-X-CONTENT-STEERING" => (UriKind::Other, "SERVER-URI"),
        _ => return None,
    };
    let a = attrs_of(text, tag)
        .into_iter()
        .find(|a| a.name == attr && a.quoted())?;
    let start = tag.len() + 2 + a.offset + 1;
    Some(Site {
        kind,
        span: (start, start + a.raw.len() - 2),
    })
}

/// Indices of the lines that carry a variant's URI (the first line after
/// an `EXT-X-STREAM-INF` that is neither blank nor a tag or comment).
fn variant_uri_lines(lines: &[Line<'_>]) -> Vec<Option<usize>> {
    let mut out = vec![None; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if tag_name(l.text) == Some("EXT-X-STREAM-INF") {
            out[i] = (i + 1..lines.len()).find(|&j| {
                let t = lines[j].text.trim();
                !t.is_empty() && !t.starts_with('#')
            });
        }
    }
    out
}

fn resolve(base: Option<&Url>, uri: &str) -> Option<Url> {
    let url = base?.join(uri).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

fn master_uri(kind: UriKind, raw: &str, vars: &Vars, base: Option<&Url>) -> MasterUri {
    let uri = substitute(raw, vars);
    let url = uri.as_deref().and_then(|u| resolve(base, u));
    MasterUri {
        kind,
        uri: uri.unwrap_or_else(|| raw.to_owned()),
        url,
    }
}

/// A kept variant: its lines and what ordering looks at.
struct Block {
    start: usize,
    end: usize,
    bandwidth: Option<u64>,
    height: Option<u32>,
}

/// Filters `master` for `rules`. `url` is where the master was read from:
/// relative URIs resolve against it and `QUERYPARAM` reads its query.
pub fn filter(
    master: &[u8],
    rules: &TierRules,
    url: Option<&Url>,
) -> Result<Filtered, MasterError> {
    let lines = lines(master)?;
    let vars = variables(&lines, url);
    let uri_line = variant_uri_lines(&lines);

    // Pass 1: decide which lines go, and which groups stay referenced.
    let mut drop = vec![false; lines.len()];
    let mut referenced: HashSet<(&str, &str)> = HashSet::new();
    // Groups any variant names, kept or not: a group no variant names is
    // not offered at all, so it is not the tier's to forbid.
    let mut named: HashSet<(&str, &str)> = HashSet::new();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let text = lines[i].text;
        match tag_name(text) {
            Some("EXT-X-STREAM-INF") => {
                let attrs = attrs_of(text, "EXT-X-STREAM-INF");
                let r = rendition_of(&attrs, "EXT-X-STREAM-INF", &vars);
                let end = uri_line[i].unwrap_or(i);
                for kind in ["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"] {
                    if let Some(a) = attrs.iter().find(|a| a.name == kind && a.quoted()) {
                        named.insert((kind, a.value()));
                    }
                }
                if rules.allows(&r) {
                    for kind in ["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"] {
                        if let Some(a) = attrs.iter().find(|a| a.name == kind && a.quoted()) {
                            referenced.insert((kind, a.value()));
                        }
                    }
                    if uri_line[i].is_some() {
                        blocks.push(Block {
                            start: i,
                            end,
                            bandwidth: r.bandwidth,
                            height: r.height,
                        });
                    }
                } else {
                    drop[i..=end].fill(true);
                }
                i = end;
            }
            Some(tag @ ("EXT-X-I-FRAME-STREAM-INF" | "EXT-X-IMAGE-STREAM-INF")) => {
                let attrs = attrs_of(text, tag);
                drop[i] = !rules.allows(&rendition_of(&attrs, tag, &vars));
            }
            _ => {}
        }
        i += 1;
    }
    if blocks.is_empty() {
        return Err(MasterError::NoVideoVariant);
    }
    let mut unoffered = vec![false; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if tag_name(l.text) == Some("EXT-X-MEDIA") {
            let a = attrs_of(l.text, "EXT-X-MEDIA");
            let get = |n: &str| a.iter().find(|x| x.name == n).map_or("", Attr::value);
            let group = (get("TYPE"), get("GROUP-ID"));
            drop[i] = !referenced.contains(&group);
            unoffered[i] = !named.contains(&group);
        }
    }

    // Pass 2: emit, placing the kept variants in the tier's order.
    let order = variant_order(&lines, &blocks, rules);
    let is_uri_line: HashSet<usize> = uri_line.iter().flatten().copied().collect();
    let mut out = Filtered {
        playlist: String::with_capacity(master.len()),
        kept: Vec::new(),
        removed: Vec::new(),
    };
    // The rendition URI a line holds, if any.
    let rendition_uri = |i: usize| {
        let text = lines[i].text;
        site_of(text, is_uri_line.contains(&i))
            .filter(|s| s.kind.is_rendition())
            .map(|s| master_uri(s.kind, &text[s.span.0..s.span.1], &vars, url))
    };
    let emit = |out: &mut Filtered, i: usize| {
        let l = &lines[i];
        out.playlist.push_str(l.text);
        out.playlist.push_str(l.ending);
        out.kept.extend(rendition_uri(i));
    };
    let mut next_block = 0;
    let mut i = 0;
    while i < lines.len() {
        if next_block < blocks.len() && i == blocks[next_block].start {
            let b = &blocks[order[next_block]];
            for j in b.start..=b.end {
                emit(&mut out, j);
            }
            i = blocks[next_block].end + 1;
            next_block += 1;
            continue;
        }
        if drop[i] {
            if !unoffered[i] {
                out.removed.extend(rendition_uri(i));
            }
        } else {
            emit(&mut out, i);
        }
        i += 1;
    }
    Ok(out)
}

/// For each kept-variant slot, which block goes there. Identity unless the
/// tier orders variants; never moves a variant before an `EXT-X-DEFINE`
/// (definitions must come before their uses).
fn variant_order(lines: &[Line<'_>], blocks: &[Block], rules: &TierRules) -> Vec<usize> {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    let first = blocks[0].start;
    let define_after_variants = lines[first..]
        .iter()
        .any(|l| tag_name(l.text) == Some("EXT-X-DEFINE"));
    if define_after_variants {
        return order;
    }
    match rules.variant_order {
        VariantOrder::Original => {}
        // Variants without BANDWIDTH (only possible with no bandwidth rule)
        // go last either way.
        VariantOrder::BandwidthAscending => {
            order.sort_by_key(|&b| blocks[b].bandwidth.unwrap_or(u64::MAX));
        }
        VariantOrder::BandwidthDescending => {
            order.sort_by_key(|&b| std::cmp::Reverse(blocks[b].bandwidth.map_or(0, |x| x + 1)));
        }
    }
    if let Some(start) = rules.start_height {
        let best = order
            .iter()
            .enumerate()
            .filter(|(_, b)| blocks[**b].height.is_some_and(|h| h <= start))
            .max_by_key(|(pos, b)| (blocks[**b].height, std::cmp::Reverse(*pos)))
            .map(|(pos, _)| pos);
        if let Some(pos) = best {
            let b = order.remove(pos);
            order.insert(0, b);
        }
    }
    order
}

/// Rewrites every http(s) or relative URI of `playlist` (a master, usually
/// already filtered). `map` receives each URI resolved against `base` and
/// returns its replacement, or `None` for the absolute URL itself. Other
/// schemes (`skd://`, `data:`) and URIs with unknown variables stay as
/// written.
pub fn rewrite(
    playlist: &str,
    base: &Url,
    mut map: impl FnMut(UriKind, &Url) -> Option<String>,
) -> Result<String, HlsError> {
    let lines = lines(playlist.as_bytes())?;
    let vars = variables(&lines, Some(base));
    let uri_line: HashSet<usize> = variant_uri_lines(&lines).into_iter().flatten().collect();
    let mut out = String::with_capacity(playlist.len() * 2);
    for (i, l) in lines.iter().enumerate() {
        let site = site_of(l.text, uri_line.contains(&i));
        let resolved = site.and_then(|s| {
            let raw = &l.text[s.span.0..s.span.1];
            let url = resolve(Some(base), &substitute(raw, &vars)?)?;
            let new = map(s.kind, &url).unwrap_or_else(|| url.to_string());
            Some((s, new))
        });
        match resolved {
            Some((s, new)) => {
                out.push_str(&l.text[..s.span.0]);
                push_uri(&mut out, &new);
                out.push_str(&l.text[s.span.1..]);
            }
            None => out.push_str(l.text),
        }
        out.push_str(l.ending);
    }
    Ok(out)
}

/// Appends a URI, escaping what would end a quoted attribute or a line.
fn push_uri(out: &mut String, uri: &str) {
    for c in uri.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
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

    use crate::engine::tiers::free_tier as free;

    fn uris(list: &[MasterUri]) -> Vec<&str> {
        list.iter().map(|u| u.uri.as_str()).collect()
    }

    #[test]
    fn free_tier_sees_only_what_it_may_have() {
        let f = filter(MASTER.as_bytes(), &free(), None).unwrap();
        assert_eq!(
            f.variants().map(|v| v.uri.as_str()).collect::<Vec<_>>(),
            ["360p/index.m3u8"]
        );
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
        for kept in [
            "# a comment the filter must keep",
            "#EXT-X-DEFINE:NAME=\"codec\"",
            "#EXT-X-SESSION-DATA",
            "X-UNKNOWN=1",
        ] {
            assert!(f.playlist.contains(kept), "{kept} lost");
        }
        assert_eq!(
            uris(&f.kept),
            [
                "audio_en/index.m3u8",
                "subs_en/index.m3u8",
                "360p/index.m3u8",
                "360p/iframe.m3u8"
            ]
        );
        assert_eq!(
            uris(&f.removed),
            [
                "audio_atmos/index.m3u8",
                "720p/index.m3u8",
                "2160p/index.m3u8",
                "noresolution/index.m3u8",
                "2160p/iframe.m3u8",
                "thumbs_2160/index.m3u8"
            ]
        );
    }

    #[test]
    fn no_limits_keep_everything_byte_for_byte() {
        let f = filter(MASTER.as_bytes(), &TierRules::default(), None).unwrap();
        assert_eq!(f.playlist, MASTER);
        assert_eq!(f.variants().count(), 4);
        assert!(f.removed.is_empty());
    }

    #[test]
    fn filtering_twice_equals_filtering_once() {
        let once = filter(MASTER.as_bytes(), &free(), None).unwrap();
        let twice = filter(once.playlist.as_bytes(), &free(), None).unwrap();
        assert_eq!(once.playlist, twice.playlist);
        assert_eq!(once.kept, twice.kept);
    }

    #[test]
    fn nothing_playable_is_an_error() {
        let rules = TierRules {
            max_height: Some(144),
            ..Default::default()
        };
        assert_eq!(
            filter(MASTER.as_bytes(), &rules, None),
            Err(MasterError::NoVideoVariant)
        );
        assert!(matches!(
            filter(b"nope", &rules, None),
            Err(MasterError::Hls(HlsError::MissingHeader))
        ));
    }

    #[test]
    fn variant_order_and_start_variant() {
        let order = |o: VariantOrder, start: Option<u32>| {
            let rules = TierRules {
                variant_order: o,
                start_height: start,
                ..Default::default()
            };
            let f = filter(MASTER.as_bytes(), &rules, None).unwrap();
            f.variants()
                .map(|v| v.uri.split('/').next().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(VariantOrder::Original, None),
            ["360p", "720p", "2160p", "noresolution"]
        );
        assert_eq!(
            order(VariantOrder::BandwidthAscending, None),
            ["noresolution", "360p", "720p", "2160p"]
        );
        assert_eq!(
            order(VariantOrder::BandwidthDescending, None),
            ["2160p", "720p", "360p", "noresolution"]
        );
        assert_eq!(
            order(VariantOrder::BandwidthAscending, Some(1080)),
            ["720p", "noresolution", "360p", "2160p"]
        );
        // The rest of the playlist does not move.
        let rules = TierRules {
            variant_order: VariantOrder::BandwidthDescending,
            ..Default::default()
        };
        let f = filter(MASTER.as_bytes(), &rules, None).unwrap();
        let mut sorted_in: Vec<&str> = MASTER.lines().collect();
        let mut sorted_out: Vec<&str> = f.playlist.lines().collect();
        sorted_in.sort_unstable();
        sorted_out.sort_unstable();
        assert_eq!(sorted_in, sorted_out);
        assert!(
            f.playlist
                .starts_with(&MASTER[..MASTER.find("#EXT-X-STREAM-INF").unwrap()])
        );
    }

    #[test]
    fn query_param_variables_are_resolved_from_the_master_url() {
        let master = "#EXTM3U\n#EXT-X-DEFINE:QUERYPARAM=\"v\"\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x{$v}\n{$v}p/index.m3u8\n";
        let rules = TierRules {
            max_height: Some(480),
            ..Default::default()
        };
        let url = Url::parse("https://cdn.example.com/a/master.m3u8?v=360").unwrap();
        let f = filter(master.as_bytes(), &rules, Some(&url)).unwrap();
        let v: Vec<_> = f.variants().collect();
        assert_eq!(v[0].uri, "360p/index.m3u8");
        assert_eq!(
            v[0].url.as_ref().map(Url::as_str),
            Some("https://cdn.example.com/a/360p/index.m3u8")
        );
        let tall = Url::parse("https://cdn.example.com/a/master.m3u8?v=720").unwrap();
        assert_eq!(
            filter(master.as_bytes(), &rules, Some(&tall)),
            Err(MasterError::NoVideoVariant)
        );
        assert_eq!(
            filter(master.as_bytes(), &rules, None),
            Err(MasterError::NoVideoVariant),
            "an unknown variable leaves the attribute absent"
        );
    }

    #[test]
    fn rewrite_resolves_every_kind_of_uri() {
        let master = "#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key\"\n#EXT-X-SESSION-DATA:DATA-ID=\"d\",URI=\"../data.json\"\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"/root/audio.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\n  v1/index.m3u8?x=1  \r\n#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\nhttps://other.example.com/v2.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v1/iframe.m3u8\"\n";
        let base = Url::parse("https://cdn.example.com/assets/a/v1/hls/master.m3u8").unwrap();
        let mut seen = Vec::new();
        let out = rewrite(master, &base, |kind, url| {
            seen.push(kind);
            (kind == UriKind::Variant && url.path().ends_with("index.m3u8"))
                .then(|| format!("https://gw.example.com/x?s=\"{}\"", url.path()))
        })
        .unwrap();
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key\"\n#EXT-X-SESSION-DATA:DATA-ID=\"d\",URI=\"https://cdn.example.com/assets/a/v1/data.json\"\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"https://cdn.example.com/root/audio.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\n  https://gw.example.com/x?s=%22/assets/a/v1/hls/v1/index.m3u8%22  \r\n#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\nhttps://other.example.com/v2.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"https://cdn.example.com/assets/a/v1/hls/v1/iframe.m3u8\"\n"
        );
        assert_eq!(
            seen,
            [
                UriKind::Other,
                UriKind::Media,
                UriKind::Variant,
                UriKind::Variant,
                UriKind::IFrame
            ]
        );
    }
}
