//! DASH MPD filtering for a tier, as text edits over quick-xml events.
//!
//! The document is read once into a light element index (names, byte
//! spans, parents); decisions are made on that index and applied as a
//! handful of byte-range edits, so every byte no rule touches (unknown
//! elements, comments, `cenc:pssh`, `cenc:default_KID`, durations,
//! attribute order and quoting) comes out exactly as it went in. Serde
//! models such as dash-mpd drop unknown elements and rewrite durations,
//! which is why this does not use one.
//!
//! - Video and image `Representation`s are judged by `TierRules::allows`
//!   (height, bandwidth, codecs, frame rate, dynamic range from the CICP
//!   `TransferCharacteristics` descriptor: 16 = PQ, 18 = HLG); trick-mode
//!   and image sets as I-frame renditions (no frame-rate rule). Audio is
//!   judged by the codec rule only; text is kept.
//! - A `Period` with video of which the tier may have none (an ad break in
//!   another codec) is removed whole, when another period still plays;
//!   nothing playable anywhere (no video kept, or in an audio-only MPD no
//!   audio kept) is `NoVideoVariant`.
//! - An `AdaptationSet` left empty is removed, and so is a trick-mode set
//!   whose main set was removed. `@maxWidth/@maxHeight/@maxBandwidth/
//!   @maxFrameRate` are recomputed from what is left, so the ceiling of
//!   the removed renditions does not leak.
//! - With the MPD's URL, MPD-level `BaseURL`s become absolute, or one is
//!   added before the first `Period` (the MPD's own directory), so the
//!   document works when served from the gateway.
//! - With a signed query (URL delivery), it is appended to
//!   `SegmentTemplate@media/@initialization`, `SegmentURL@media` and
//!   `Initialization/RepresentationIndex@sourceURL` as `&amp;`-escaped XML,
//!   since players do not carry the MPD's query to segments.

use crate::engine::tiers::{Rendition, TierRules};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use std::collections::HashSet;
use url::Url;

pub const MAX_MPD_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MpdError {
    #[error("MPD is larger than 10 MB")]
    TooLarge,
    #[error("MPD is not valid UTF-8")]
    NotUtf8,
    #[error("MPD is not well-formed XML: {0}")]
    Xml(String),
    #[error("document root is not an MPD element")]
    NotAnMpd,
    /// No period keeps a video representation (or, for an audio-only
    /// MPD, an audio one).
    #[error("nothing playable is left for this tier")]
    NoVideoVariant,
}

/// What a filtered MPD needs besides the rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct MpdOptions<'a> {
    /// Where the MPD was read from (relative URLs are made absolute).
    pub url: Option<&'a Url>,
    /// URL delivery: the signed query for segment templates.
    pub signed_query: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Video,
    Audio,
    Text,
    Image,
    Other,
}

/// One `Representation` and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpdRendition {
    pub id: String,
    pub kind: ContentKind,
    pub kept: bool,
    /// Absolute URL prefixes of everything it fetches (templates cut at
    /// their first `$Number$`/`$Time$`); empty without the MPD's URL.
    pub uris: Vec<Url>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredMpd {
    pub mpd: String,
    pub renditions: Vec<MpdRendition>,
}

impl FilteredMpd {
    /// The scopes of the kept representations (the same function as HLS's):
    /// one pattern each, covering nothing a removed one uses.
    pub fn scopes(
        &self,
    ) -> Result<crate::engine::hls::scope::Scopes, crate::engine::hls::scope::ScopeError> {
        let allowed: Vec<Vec<Url>> = self
            .renditions
            .iter()
            .filter(|r| r.kept)
            .map(|r| r.uris.clone())
            .collect();
        let forbidden: Vec<Url> = self
            .renditions
            .iter()
            .filter(|r| !r.kept)
            .flat_map(|r| r.uris.iter().cloned())
            .collect();
        crate::engine::hls::scope::scopes(&allowed, &forbidden, &[])
    }
}

/// One element of the document.
#[derive(Debug)]
struct Node<'a> {
    /// Local name (`Representation` for `mpd:Representation`).
    name: &'a str,
    /// The start tag (or empty-element tag) as a byte range.
    tag: (usize, usize),
    /// Where the element's content ends (the end tag starts).
    inner_end: usize,
    /// After the end tag.
    end: usize,
    /// Start of the whitespace before the tag (removed with the element).
    lead: usize,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Doc<'a> {
    src: &'a str,
    nodes: Vec<Node<'a>>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `(name, value start, value end)` of each attribute of a start tag, as
/// offsets into the tag.
fn tag_attrs(tag: &str) -> Vec<(&str, usize, usize)> {
    let b = tag.as_bytes();
    let mut i = 1;
    while i < b.len() && !is_ws(b[i]) && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let mut out = Vec::new();
    loop {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] == b'>' || b[i] == b'/' {
            break;
        }
        let name_start = i;
        while i < b.len() && b[i] != b'=' && !is_ws(b[i]) && b[i] != b'>' {
            i += 1;
        }
        let name = &tag[name_start..i];
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            break;
        }
        i += 1;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        let Some(&quote) = b.get(i) else { break };
        if quote != b'"' && quote != b'\'' {
            break;
        }
        i += 1;
        let value_start = i;
        while i < b.len() && b[i] != quote {
            i += 1;
        }
        out.push((name, value_start, i));
        i += 1;
    }
    out
}

fn unescape(s: &str) -> String {
    quick_xml::escape::unescape(s).map_or_else(|_| s.to_owned(), |c| c.into_owned())
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

impl<'a> Doc<'a> {
    fn parse(src: &'a str) -> Result<Self, MpdError> {
        let mut reader = Reader::from_str(src);
        reader.config_mut().trim_text(false);
        let mut nodes: Vec<Node<'a>> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        loop {
            let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let event = reader
                .read_event()
                .map_err(|e| MpdError::Xml(e.to_string()))?;
            let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            match event {
                Event::Start(_) | Event::Empty(_) => {
                    let tag = &src[before..after];
                    let raw_name = tag[1..]
                        .split(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                        .next()
                        .unwrap_or("");
                    let name = raw_name.rsplit(':').next().unwrap_or(raw_name);
                    let lead = before
                        - src[..before]
                            .bytes()
                            .rev()
                            .take_while(|b| is_ws(*b))
                            .count();
                    let empty = matches!(event, Event::Empty(_));
                    let id = nodes.len();
                    let parent = stack.last().copied();
                    nodes.push(Node {
                        name,
                        tag: (before, after),
                        inner_end: after,
                        end: after,
                        lead,
                        parent,
                        children: Vec::new(),
                    });
                    if let Some(p) = parent {
                        nodes[p].children.push(id);
                    }
                    if !empty {
                        stack.push(id);
                    }
                }
                Event::End(_) => {
                    if let Some(id) = stack.pop() {
                        nodes[id].inner_end = before;
                        nodes[id].end = after;
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err(MpdError::Xml("unclosed element".into()));
        }
        Ok(Doc { src, nodes })
    }

    fn tag(&self, n: usize) -> &'a str {
        let (a, b) = self.nodes[n].tag;
        &self.src[a..b]
    }

    fn attr(&self, n: usize, name: &str) -> Option<String> {
        let tag = self.tag(n);
        tag_attrs(tag)
            .into_iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, a, b)| unescape(&tag[a..b]))
    }

    /// The attribute on `n` or, failing that, on its parent (a
    /// Representation inherits from its AdaptationSet).
    fn inherited(&self, n: usize, name: &str) -> Option<String> {
        self.attr(n, name)
            .or_else(|| self.nodes[n].parent.and_then(|p| self.attr(p, name)))
    }

    fn children_named(&self, n: usize, name: &'a str) -> impl Iterator<Item = usize> + '_ {
        self.nodes[n]
            .children
            .iter()
            .copied()
            .filter(move |c| self.nodes[*c].name == name)
    }

    fn text(&self, n: usize) -> String {
        let node = &self.nodes[n];
        unescape(self.src[node.tag.1..node.inner_end].trim())
    }

    /// A descriptor child (`EssentialProperty`/`SupplementalProperty`)
    /// with this scheme: its `value`.
    fn descriptor(&self, n: usize, scheme: &str) -> Option<String> {
        self.nodes[n]
            .children
            .iter()
            .copied()
            .filter(|c| {
                matches!(
                    self.nodes[*c].name,
                    "EssentialProperty" | "SupplementalProperty"
                )
            })
            .find(|c| self.attr(*c, "schemeIdUri").as_deref() == Some(scheme))
            .map(|c| self.attr(c, "value").unwrap_or_default())
    }
}

const TRICKMODE: &str = "http://dashif.org/guidelines/trickmode";
const TRANSFER: &str = "urn:mpeg:mpegB:cicp:TransferCharacteristics";

fn frame_rate(s: &str) -> Option<f64> {
    match s.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
            (d > 0.0).then(|| n / d)
        }
        None => s.trim().parse().ok(),
    }
}

fn content_kind(doc: &Doc<'_>, set: usize) -> ContentKind {
    let from = |s: &str| match s.split('/').next().unwrap_or("") {
        "video" => Some(ContentKind::Video),
        "audio" => Some(ContentKind::Audio),
        "text" => Some(ContentKind::Text),
        "image" => Some(ContentKind::Image),
        _ => None,
    };
    let first_rep = doc.children_named(set, "Representation").next();
    doc.attr(set, "contentType")
        .and_then(|c| from(&c))
        .or_else(|| doc.attr(set, "mimeType").and_then(|m| from(&m)))
        .or_else(|| first_rep.and_then(|r| doc.attr(r, "mimeType").and_then(|m| from(&m))))
        .or_else(|| {
            let r = first_rep?;
            doc.inherited(r, "height").map(|_| ContentKind::Video)
        })
        .unwrap_or(ContentKind::Other)
}

fn video_range(doc: &Doc<'_>, n: usize) -> Option<String> {
    let v = doc.descriptor(n, TRANSFER).or_else(|| {
        let p = doc.nodes[n].parent?;
        doc.descriptor(p, TRANSFER)
    })?;
    Some(
        match v.trim() {
            "16" => "PQ",
            "18" => "HLG",
            _ => "SDR",
        }
        .to_owned(),
    )
}

fn rendition_of(doc: &Doc<'_>, rep: usize, iframe: bool, image: bool) -> Rendition {
    Rendition {
        bandwidth: doc
            .attr(rep, "bandwidth")
            .and_then(|b| b.trim().parse().ok()),
        height: doc
            .inherited(rep, "height")
            .and_then(|h| h.trim().parse().ok()),
        codecs: codecs(doc, rep),
        frame_rate: doc.inherited(rep, "frameRate").and_then(|f| frame_rate(&f)),
        video_range: video_range(doc, rep),
        iframe,
        image,
    }
}

fn codecs(doc: &Doc<'_>, rep: usize) -> Option<Vec<String>> {
    doc.inherited(rep, "codecs")
        .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect())
}

/// A byte-range replacement.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// Replaces attribute values in a start tag.
fn edit_tag(
    doc: &Doc<'_>,
    n: usize,
    mut change: impl FnMut(&str, &str) -> Option<String>,
) -> Option<Edit> {
    let tag = doc.tag(n);
    let mut out = String::with_capacity(tag.len() + 64);
    let mut last = 0;
    let mut changed = false;
    for (name, a, b) in tag_attrs(tag) {
        if let Some(new) = change(name, &tag[a..b]) {
            out.push_str(&tag[last..a]);
            out.push_str(&new);
            last = b;
            changed = true;
        }
    }
    out.push_str(&tag[last..]);
    changed.then(|| Edit {
        start: doc.nodes[n].tag.0,
        end: doc.nodes[n].tag.1,
        text: out,
    })
}

struct SetDecision {
    node: usize,
    id: Option<String>,
    kind: ContentKind,
    /// The main set's id, for a trick-mode set.
    trick_of: Option<String>,
    reps: Vec<(usize, bool)>,
    keep: bool,
    /// In a period removed whole (its own edits are not made).
    in_dropped_period: bool,
}

/// Filters `mpd` for `rules`.
pub fn filter(
    mpd: &[u8],
    rules: &TierRules,
    opts: &MpdOptions<'_>,
) -> Result<FilteredMpd, MpdError> {
    if mpd.len() > MAX_MPD_BYTES {
        return Err(MpdError::TooLarge);
    }
    let text = std::str::from_utf8(mpd).map_err(|_| MpdError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = Doc::parse(text)?;
    let root = doc
        .nodes
        .iter()
        .position(|n| n.parent.is_none())
        .filter(|r| doc.nodes[*r].name == "MPD")
        .ok_or(MpdError::NotAnMpd)?;

    let mut sets: Vec<SetDecision> = Vec::new();
    // Periods with video of which this tier may have none (an ad break in
    // another codec) are removed whole; later periods keep their `@start`.
    let mut dropped_periods = Vec::new();
    let (mut any_video, mut any_kept_video, mut any_kept_audio) = (false, false, false);
    for period in doc.children_named(root, "Period") {
        let first = sets.len();
        let (mut had_video, mut kept_video) = (false, false);
        for set in doc.children_named(period, "AdaptationSet") {
            let kind = content_kind(&doc, set);
            let trick_of = doc.descriptor(set, TRICKMODE);
            let iframe = trick_of.is_some() || kind == ContentKind::Image;
            let reps: Vec<(usize, bool)> = doc
                .children_named(set, "Representation")
                .map(|r| {
                    let keep = match kind {
                        ContentKind::Video | ContentKind::Image => {
                            rules.allows(&rendition_of(&doc, r, iframe, kind == ContentKind::Image))
                        }
                        ContentKind::Audio => rules.allows_codecs(codecs(&doc, r).as_deref()),
                        ContentKind::Text | ContentKind::Other => true,
                    };
                    (r, keep)
                })
                .collect();
            if kind == ContentKind::Video && trick_of.is_none() {
                had_video |= !reps.is_empty();
                kept_video |= reps.iter().any(|(_, k)| *k);
            }
            let keep = reps.is_empty() || reps.iter().any(|(_, k)| *k);
            if kind == ContentKind::Audio && reps.iter().any(|(_, k)| *k) {
                any_kept_audio = true;
            }
            sets.push(SetDecision {
                node: set,
                id: doc.attr(set, "id"),
                kind,
                trick_of,
                reps,
                keep,
                in_dropped_period: false,
            });
        }
        any_video |= had_video;
        any_kept_video |= kept_video;
        if had_video && !kept_video {
            dropped_periods.push(period);
            for s in &mut sets[first..] {
                s.keep = false;
                s.in_dropped_period = true;
            }
            continue;
        }
        // A trick-mode set goes with its main set.
        let gone: HashSet<String> = sets[first..]
            .iter()
            .filter(|s| !s.keep)
            .filter_map(|s| s.id.clone())
            .collect();
        for s in &mut sets[first..] {
            if s.trick_of.as_ref().is_some_and(|m| gone.contains(m.trim())) {
                s.keep = false;
            }
        }
    }

    // Something must play: a video somewhere, or, in an audio-only MPD,
    // an audio rendition.
    let playable = if any_video {
        any_kept_video
    } else {
        any_kept_audio
    };
    if !playable {
        return Err(MpdError::NoVideoVariant);
    }
    let mut edits: Vec<Edit> = dropped_periods
        .iter()
        .map(|&p| Edit {
            start: doc.nodes[p].lead,
            end: doc.nodes[p].end,
            text: String::new(),
        })
        .collect();
    let mut renditions = Vec::new();
    let bases = Bases::new(&doc, root, opts.url);
    for s in &sets {
        let n = &doc.nodes[s.node];
        if !s.keep && !s.in_dropped_period {
            edits.push(Edit {
                start: n.lead,
                end: n.end,
                text: String::new(),
            });
        }
        let mut kept = Vec::new();
        for &(r, keep) in &s.reps {
            let keep = keep && s.keep;
            if keep {
                kept.push(r);
            } else if s.keep && !s.in_dropped_period {
                let rn = &doc.nodes[r];
                edits.push(Edit {
                    start: rn.lead,
                    end: rn.end,
                    text: String::new(),
                });
            }
            renditions.push(MpdRendition {
                id: doc.attr(r, "id").unwrap_or_default(),
                kind: s.kind,
                kept: keep,
                uris: bases.uris(&doc, r),
            });
        }
        if s.keep && !kept.is_empty() {
            edits.extend(recompute_maxima(&doc, s.node, &kept));
        }
    }
    edits.extend(bases.edits(&doc, root));
    if let Some(q) = opts.signed_query {
        edits.extend(sign_templates(&doc, q));
    }
    Ok(FilteredMpd {
        mpd: apply(text, edits),
        renditions,
    })
}

/// New `@maxWidth/@maxHeight/@maxBandwidth/@maxFrameRate` from the kept
/// representations (only where the set had the attribute and the kept
/// representations say).
fn recompute_maxima(doc: &Doc<'_>, set: usize, kept: &[usize]) -> Option<Edit> {
    let max_of = |attr: &str| -> Option<String> {
        kept.iter()
            .filter_map(|r| {
                let raw = doc.attr(*r, attr)?;
                let v = if attr == "frameRate" {
                    frame_rate(&raw)?
                } else {
                    raw.trim().parse::<f64>().ok()?
                };
                Some((v, raw))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, raw)| raw)
    };
    edit_tag(doc, set, |name, _| {
        let source = match name {
            "maxWidth" => "width",
            "maxHeight" => "height",
            "maxBandwidth" => "bandwidth",
            "maxFrameRate" => "frameRate",
            _ => return None,
        };
        max_of(source).map(|v| escape(&v))
    })
}

/// The `BaseURL` chain and how the MPD-level one is made absolute.
struct Bases {
    /// Where the MPD was read from.
    mpd_url: Option<Url>,
    /// The absolute MPD-level base, when the MPD's URL is known.
    top: Option<Url>,
}

impl Bases {
    fn new(doc: &Doc<'_>, root: usize, url: Option<&Url>) -> Self {
        let top = url.map(|u| match doc.children_named(root, "BaseURL").next() {
            Some(b) => u.join(&doc.text(b)).unwrap_or_else(|_| u.clone()),
            None => u.clone(),
        });
        Bases {
            mpd_url: url.cloned(),
            top,
        }
    }

    /// The base URL in force for `n`'s children.
    fn at(&self, doc: &Doc<'_>, n: usize) -> Option<Url> {
        let mut chain = vec![n];
        let mut p = doc.nodes[n].parent;
        while let Some(x) = p {
            chain.push(x);
            p = doc.nodes[x].parent;
        }
        let mut base = self.top.clone()?;
        // The MPD level is already in `top`.
        for &x in chain.iter().rev().skip(1) {
            if let Some(b) = doc.children_named(x, "BaseURL").next() {
                base = base.join(&doc.text(b)).ok()?;
            }
        }
        Some(base)
    }

    /// What `rep` fetches, as absolute prefixes.
    fn uris(&self, doc: &Doc<'_>, rep: usize) -> Vec<Url> {
        let Some(base) = self.at(doc, rep) else {
            return Vec::new();
        };
        let id = doc.attr(rep, "id").unwrap_or_default();
        let bw = doc.attr(rep, "bandwidth").unwrap_or_default();
        let expand = |t: &str| -> Option<Url> {
            let t = t
                .replace("$RepresentationID$", &id)
                .replace("$Bandwidth$", &bw);
            let cut = &t[..t.find('$').unwrap_or(t.len())];
            base.join(cut).ok()
        };
        if let Some(t) = segment_template(doc, rep) {
            return ["initialization", "media"]
                .iter()
                .filter_map(|a| doc.attr(t, a))
                .filter_map(|t| expand(&t))
                .collect();
        }
        let list: Vec<Url> = doc
            .children_named(rep, "SegmentList")
            .flat_map(|l| doc.children_named(l, "SegmentURL").collect::<Vec<_>>())
            .filter_map(|s| doc.attr(s, "media"))
            .filter_map(|m| base.join(&m).ok())
            .collect();
        if list.is_empty() { vec![base] } else { list }
    }

    /// MPD-level `BaseURL`s made absolute, or one added.
    fn edits(&self, doc: &Doc<'_>, root: usize) -> Vec<Edit> {
        let Some(top) = &self.top else {
            return Vec::new();
        };
        let existing: Vec<usize> = doc.children_named(root, "BaseURL").collect();
        if existing.is_empty() {
            let Some(period) = doc.children_named(root, "Period").next() else {
                return Vec::new();
            };
            let p = &doc.nodes[period];
            let dir = top.join(".").unwrap_or_else(|_| top.clone());
            let indent = &doc.src[p.lead..p.tag.0];
            let indent = if indent.is_empty() { "\n" } else { indent };
            return vec![Edit {
                start: p.tag.0,
                end: p.tag.0,
                text: format!("<BaseURL>{}</BaseURL>{indent}", escape(dir.as_str())),
            }];
        }
        let Some(mpd_url) = &self.mpd_url else {
            return Vec::new();
        };
        existing
            .into_iter()
            .filter_map(|b| {
                let n = &doc.nodes[b];
                let resolved = mpd_url.join(&doc.text(b)).ok()?;
                Some(Edit {
                    start: n.tag.1,
                    end: n.inner_end,
                    text: escape(resolved.as_str()),
                })
            })
            .collect()
    }
}

/// The `SegmentTemplate` in force for a representation: its own, its
/// set's or its period's.
fn segment_template(doc: &Doc<'_>, rep: usize) -> Option<usize> {
    let mut n = Some(rep);
    while let Some(x) = n {
        if let Some(t) = doc.children_named(x, "SegmentTemplate").next() {
            return Some(t);
        }
        n = doc.nodes[x].parent.filter(|p| doc.nodes[*p].name != "MPD");
    }
    None
}

/// Appends the signed query to every segment URL template, and to the
/// `BaseURL` of a representation that is fetched as one file (no template
/// or segment list: `SegmentBase`, sidecar subtitles).
fn sign_templates(doc: &Doc<'_>, query: &str) -> Vec<Edit> {
    let escaped = escape(query);
    let single_files = (0..doc.nodes.len())
        .filter(|&n| doc.nodes[n].name == "Representation")
        .filter(|&r| {
            segment_template(doc, r).is_none()
                && doc.children_named(r, "SegmentList").next().is_none()
        })
        .filter_map(|r| doc.children_named(r, "BaseURL").next())
        .map(|b| {
            let n = &doc.nodes[b];
            let raw = &doc.src[n.tag.1..n.inner_end];
            let trimmed = raw.trim_end();
            Edit {
                start: n.tag.1,
                end: n.inner_end,
                text: format!("{}{}", with_query(trimmed, &escaped), &raw[trimmed.len()..]),
            }
        })
        .collect::<Vec<_>>();
    let templates = (0..doc.nodes.len()).filter_map(|n| {
        let attrs: &[&str] = match doc.nodes[n].name {
            "SegmentTemplate" => &["media", "initialization"],
            "SegmentURL" => &["media"],
            "Initialization" | "RepresentationIndex" => &["sourceURL"],
            _ => return None,
        };
        edit_tag(doc, n, |name, raw| {
            attrs.contains(&name).then(|| with_query(raw, &escaped))
        })
    });
    single_files.into_iter().chain(templates).collect()
}

/// An XML-escaped URL value with an (escaped) query appended after any
/// existing one.
fn with_query(raw: &str, escaped_query: &str) -> String {
    let sep = if raw.contains('?') { "&amp;" } else { "?" };
    format!("{raw}{sep}{escaped_query}")
}

/// Applies non-overlapping edits; an edit inside a removed range is moot.
fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    let mut out = String::with_capacity(src.len());
    let mut cursor = 0;
    for e in edits {
        if e.start < cursor {
            continue;
        }
        out.push_str(&src[cursor..e.start]);
        out.push_str(&e.text);
        cursor = e.end;
    }
    out.push_str(&src[cursor..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MPD: &str = include_str!("../../../tests/fixtures/dash/multi_set.mpd");

    use crate::engine::tiers::free_tier as free;

    fn kept(f: &FilteredMpd) -> Vec<&str> {
        f.renditions
            .iter()
            .filter(|r| r.kept)
            .map(|r| r.id.as_str())
            .collect()
    }

    #[test]
    fn free_tier_keeps_what_it_may_have_and_nothing_leaks() {
        let f = filter(MPD.as_bytes(), &free(), &MpdOptions::default()).unwrap();
        assert_eq!(kept(&f), ["360p", "aac", "subs_en"]);
        for gone in ["720p", "2160p", "t2160", "ec-3", "atmos", "X-Unknown"] {
            assert!(!f.mpd.contains(gone), "{gone} leaked:\n{}", f.mpd);
        }
        assert!(
            f.mpd.contains(
                r#"maxWidth="640" maxHeight="360" maxBandwidth="800000" maxFrameRate="30""#
            )
        );
        assert!(
            !f.mpd.contains(r#"<AdaptationSet id="2""#),
            "trick set dropped"
        );
        for kept in [
            "<!-- produced by a packager -->",
            "cenc:default_KID=\"10000000",
            "<cenc:pssh>AAAANHBzc2g=</cenc:pssh>",
            "mediaPresentationDuration=\"PT1M0.000S\"",
        ] {
            assert!(f.mpd.contains(kept), "{kept} lost");
        }
    }

    #[test]
    fn no_limits_keep_every_byte() {
        let f = filter(
            MPD.as_bytes(),
            &TierRules::default(),
            &MpdOptions::default(),
        )
        .unwrap();
        assert_eq!(f.mpd, MPD);
        assert!(f.renditions.iter().all(|r| r.kept));
    }

    #[test]
    fn filtering_twice_equals_filtering_once() {
        let once = filter(MPD.as_bytes(), &free(), &MpdOptions::default()).unwrap();
        let twice = filter(once.mpd.as_bytes(), &free(), &MpdOptions::default()).unwrap();
        assert_eq!(once.mpd, twice.mpd);
    }

    #[test]
    fn frame_rates_and_ranges() {
        assert_eq!(
            frame_rate("30000/1001").map(|f| (f * 100.0).round()),
            Some(2997.0)
        );
        assert_eq!(frame_rate("25"), Some(25.0));
        assert_eq!(frame_rate("1/0"), None);
        let hdr = TierRules {
            video_range: Some(vec!["PQ".into()]),
            ..Default::default()
        };
        let f = filter(MPD.as_bytes(), &hdr, &MpdOptions::default()).unwrap();
        assert_eq!(
            kept(&f),
            ["2160p", "aac", "ec3", "atmos", "subs_en"],
            "SDR without a descriptor; the trick set follows its own (no) descriptor"
        );
    }

    #[test]
    fn urls_become_absolute_and_templates_signed() {
        let url = Url::parse("https://cdn.example.com/assets/a/v1/dash/manifest.mpd").unwrap();
        let f = filter(
            MPD.as_bytes(),
            &free(),
            &MpdOptions {
                url: Some(&url),
                signed_query: Some("Policy=P&Signature=S&Key-Pair-Id=K"),
            },
        )
        .unwrap();
        assert!(f.mpd.contains("  <BaseURL>https://cdn.example.com/assets/a/v1/dash/</BaseURL>\n  <Period id=\"p0\""), "{}", f.mpd);
        assert!(f.mpd.contains(r#"initialization="$RepresentationID$/init.mp4?Policy=P&amp;Signature=S&amp;Key-Pair-Id=K" media="$RepresentationID$/seg_$Number%05d$.m4s?Policy=P&amp;Signature=S&amp;Key-Pair-Id=K""#), "{}", f.mpd);
        let r360 = f.renditions.iter().find(|r| r.id == "360p").unwrap();
        let uris: Vec<&str> = r360.uris.iter().map(Url::as_str).collect();
        assert_eq!(
            uris,
            [
                "https://cdn.example.com/assets/a/v1/dash/360p/init.mp4",
                "https://cdn.example.com/assets/a/v1/dash/360p/seg_"
            ]
        );
        assert!(
            f.mpd.contains(
                "<BaseURL>subs/en.vtt?Policy=P&amp;Signature=S&amp;Key-Pair-Id=K</BaseURL>"
            ),
            "a single-file rendition is signed"
        );
        let atmos = f.renditions.iter().find(|r| r.id == "atmos").unwrap();
        assert_eq!(
            atmos.uris[0].as_str(),
            "https://cdn.example.com/assets/a/v1/dash/atmos.mp4"
        );
        // The scopes of DASH renditions come out of the same function as HLS's.
        let s = f.scopes().unwrap();
        assert!(s.path_separable);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/dash/360p/*"
        );
    }

    #[test]
    fn an_existing_relative_base_url_is_resolved() {
        let mpd = "<MPD><BaseURL>media/</BaseURL><Period><AdaptationSet contentType=\"video\"><Representation id=\"v\" height=\"360\" bandwidth=\"1\"/></AdaptationSet></Period></MPD>";
        let url = Url::parse("https://cdn.example.com/a/manifest.mpd?x=1").unwrap();
        let f = filter(
            mpd.as_bytes(),
            &TierRules::default(),
            &MpdOptions {
                url: Some(&url),
                signed_query: None,
            },
        )
        .unwrap();
        assert_eq!(
            f.mpd,
            "<MPD><BaseURL>https://cdn.example.com/a/media/</BaseURL><Period><AdaptationSet contentType=\"video\"><Representation id=\"v\" height=\"360\" bandwidth=\"1\"/></AdaptationSet></Period></MPD>"
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let none = MpdOptions::default();
        assert!(matches!(
            filter(b"<MPD><Period>", &free(), &none),
            Err(MpdError::Xml(_))
        ));
        assert!(matches!(
            filter(b"<MPD></Period>", &free(), &none),
            Err(MpdError::Xml(_))
        ));
        assert_eq!(filter(b"<html/>", &free(), &none), Err(MpdError::NotAnMpd));
        assert_eq!(filter(b"\xff", &free(), &none), Err(MpdError::NotUtf8));
        let tiny = TierRules {
            max_height: Some(100),
            ..Default::default()
        };
        assert_eq!(
            filter(MPD.as_bytes(), &tiny, &none),
            Err(MpdError::NoVideoVariant)
        );
    }
}
