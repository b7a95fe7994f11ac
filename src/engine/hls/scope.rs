//! Rendition scopes: for each rendition a tier may have, the CloudFront
//! resource patterns (`prefix*`, or one URL exactly) that cover every URI
//! the rendition uses and no URI of a rendition the tier may not have.
//!
//! playgate never assumes a storage layout: scopes come from the URIs the
//! manifests actually list. With one directory per rendition each scope is
//! that directory, and the layout is *path-separable*: each scope is also a
//! cookie `Path` that no other rendition's URIs fall under, which cookie
//! delivery needs. A flat layout (MediaConvert's default:
//! `master_720p.m3u8`, `master_720p_00001.ts` side by side) still gets
//! per-rendition string prefixes (`…/master_720p*`) for URL delivery, and
//! where a name is a prefix of a forbidden one (`title_360p` beside
//! `title_360p_hi`) the rendition gets several patterns: the playlist
//! exactly and `…/title_360p_0*` for its segments.
//!
//! The patterns of a rendition are the fewest that cover it: its URIs are
//! split (as a trie over their bytes) only where a forbidden URI lies
//! under the common prefix, so a rendition needs at most one pattern per
//! URI, and one when nothing forbidden shares its prefix.
//!
//! Matching uses the verifier's own `resource_matches`, so a scope means
//! exactly what CloudFront will make of it.

use super::media::{URI_TAGS, signable};
use super::{HlsError, attributes, lines, tag_name};
use crate::engine::cloudfront::policy::resource_matches;
use std::collections::HashSet;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error(transparent)]
    Hls(#[from] HlsError),
    #[error("rendition {0} lists no URI")]
    Empty(usize),
    #[error("rendition {0} spans more than one origin, so no single resource pattern covers it")]
    MixedOrigins(usize),
    #[error(
        "no resource pattern covers rendition {0} without also covering a rendition this tier may not have"
    )]
    Overlap(usize),
    #[error("media playlist uses a variable it does not define: {0}")]
    UnknownVariable(String),
}

/// One resource pattern: `prefix` followed by `*`, or (`exact`) one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub prefix: String,
    /// The prefix ends with `/`: it is also a cookie `Path`.
    pub directory: bool,
    /// The pattern is `prefix` itself, no wildcard.
    pub exact: bool,
}

impl Scope {
    fn prefix(prefix: &str) -> Scope {
        Scope {
            prefix: prefix.to_owned(),
            directory: prefix.ends_with('/'),
            exact: false,
        }
    }

    /// The policy `Resource`.
    pub fn pattern(&self) -> String {
        if self.exact {
            self.prefix.clone()
        } else {
            format!("{}*", self.prefix)
        }
    }

    /// Whether the pattern matches `url` (without query), as CloudFront would.
    pub fn covers(&self, url: &str) -> bool {
        if self.prefix.contains(['*', '?']) {
            resource_matches(&self.pattern(), url)
        } else if self.exact {
            url == self.prefix
        } else {
            url.starts_with(&self.prefix)
        }
    }

    /// The cookie `Path` (the prefix's path), when it is a directory.
    pub fn cookie_path(&self) -> Option<&str> {
        if !self.directory || self.exact {
            return None;
        }
        let after = self.prefix.find("://")? + 3;
        let slash = self.prefix[after..].find('/')? + after;
        Some(&self.prefix[slash..])
    }

    /// Every URL this scope matches is one `outer` matches too.
    fn inside(&self, outer: &Scope) -> bool {
        !outer.exact && self != outer && self.prefix.starts_with(&outer.prefix)
    }
}

/// The scopes of the allowed renditions. Renditions in one directory (a
/// variant and its I-frame playlist, which reuse the same segments) share
/// one scope, and so does a rendition whose prefix lies inside another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// Distinct patterns for URL delivery, in order of first use, none
    /// inside another.
    pub scopes: Vec<Scope>,
    /// For each allowed rendition, its indices in `scopes` (together they
    /// cover every URI it uses).
    pub of_rendition: Vec<Vec<usize>>,
    /// Cookie delivery: distinct directories, none inside another, that
    /// cover every allowed URI and nothing forbidden; `None` when the
    /// layout has no such set (some allowed URI shares its directory with
    /// a forbidden one).
    pub cookies: Option<Vec<Scope>>,
    /// `cookies` is `Some`: one cookie triple per directory, each with its
    /// own `Path`, works.
    pub path_separable: bool,
}

impl Scopes {
    /// The scopes of allowed rendition `i`.
    pub fn of(&self, i: usize) -> impl Iterator<Item = &Scope> {
        self.of_rendition[i].iter().map(|&s| &self.scopes[s])
    }

    /// The scope of allowed rendition `i` that covers `url`.
    pub fn covering(&self, i: usize, url: &Url) -> Option<&Scope> {
        let k = key(url);
        self.of(i).find(|s| s.covers(&k))
    }
}

/// A URL without its query and fragment: what patterns are matched on.
pub fn without_query(url: &str) -> &str {
    &url[..url.find(['?', '#']).unwrap_or(url.len())]
}

/// The key a URL is compared by: without query and fragment.
fn key(url: &Url) -> String {
    without_query(url.as_str()).to_owned()
}

/// Every URI one rendition uses: its media playlist and each http(s) or
/// relative URI in it (segments, `EXT-X-MAP`, `EXT-X-KEY`, parts, preload
/// hints), resolved against `playlist_url`. Rendition reports name other
/// renditions' playlists and are not part of this one; URIs on another
/// origin (a third-party key server) are not the CDN's to grant.
pub fn media_uris(playlist_url: &Url, media: &[u8]) -> Result<Vec<Url>, ScopeError> {
    let lines = lines(media)?;
    let vars = super::master::variables(&lines, Some(playlist_url));
    let mut out = vec![playlist_url.clone()];
    let mut add = |raw: &str| -> Result<(), ScopeError> {
        if !signable(raw) {
            return Ok(());
        }
        let uri = super::master::substitute(raw.trim(), &vars)
            .ok_or_else(|| ScopeError::UnknownVariable(raw.trim().to_owned()))?;
        if let Ok(u) = playlist_url.join(&uri)
            && matches!(u.scheme(), "http" | "https")
            && u.origin() == playlist_url.origin()
        {
            out.push(u);
        }
        Ok(())
    };
    for l in &lines {
        let text = l.text;
        if !text.starts_with('#') {
            add(text)?;
            continue;
        }
        match tag_name(text) {
            Some(tag) if URI_TAGS.contains(&tag) && tag != "EXT-X-RENDITION-REPORT" => {
                let list = text.get(tag.len() + 2..).unwrap_or("");
                if let Some(a) = attributes(list)
                    .into_iter()
                    .find(|a| a.name == "URI" && a.quoted())
                {
                    add(a.value())?;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn common_prefix<'a>(keys: &[&'a str]) -> &'a str {
    let first = keys[0];
    let mut len = first.len();
    for k in &keys[1..] {
        len = first
            .bytes()
            .zip(k.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Keep to a char boundary (URLs are ASCII once serialised, but be safe).
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    &first[..len]
}

fn dir_of(prefix: &str) -> &str {
    &prefix[..=prefix.rfind('/').unwrap_or(0)]
}

/// The URIs no scope may cover, sorted, so that a plain prefix is checked
/// by binary search (a manifest of thousands of segments per rendition
/// stays cheap); a prefix holding CloudFront's own wildcards (`*`, `?`
/// are legal in a URL path) is checked by `resource_matches`, one by one.
struct Secrets(Vec<String>);

impl Secrets {
    fn new(mut keys: Vec<String>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        Secrets(keys)
    }

    /// Whether `scope` matches any secret.
    fn covered_by(&self, scope: &Scope) -> bool {
        if scope.prefix.contains(['*', '?']) {
            return self.0.iter().any(|s| scope.covers(s));
        }
        let at = self
            .0
            .partition_point(|s| s.as_str() < scope.prefix.as_str());
        match self.0.get(at) {
            Some(s) if scope.exact => *s == scope.prefix,
            Some(s) => s.starts_with(&scope.prefix),
            None => false,
        }
    }

    fn prefix_ok(&self, prefix: &str) -> bool {
        !self.covered_by(&Scope::prefix(prefix))
    }
}

/// The fewest patterns covering `keys` (sorted, distinct, one origin) and
/// no secret: the keys' directory, else their common prefix, else the
/// keys split by the byte after that prefix (a key equal to the prefix,
/// and a key alone in its part, exactly). `None` when a key itself
/// matches a secret (a URL holding wildcards).
fn url_cover(keys: &[&str], secrets: &Secrets, top: bool, out: &mut Vec<Scope>) -> Option<()> {
    let lcp = common_prefix(keys);
    let dir = dir_of(lcp);
    if secrets.prefix_ok(dir) {
        out.push(Scope::prefix(dir));
        return Some(());
    }
    // Alone below the top (where a rendition's single URI keeps its
    // prefix pattern), a key is granted exactly: `k*` adds nothing listed.
    if (top || keys.len() > 1) && secrets.prefix_ok(lcp) {
        out.push(Scope::prefix(lcp));
        return Some(());
    }
    let mut rest = keys;
    if rest[0].len() == lcp.len() {
        let exact = Scope {
            prefix: lcp.to_owned(),
            directory: false,
            exact: true,
        };
        if secrets.covered_by(&exact) {
            return None;
        }
        out.push(exact);
        rest = &rest[1..];
    }
    while let Some(first) = rest.first() {
        let b = first.as_bytes()[lcp.len()];
        let n = rest
            .iter()
            .take_while(|k| k.as_bytes()[lcp.len()] == b)
            .count();
        url_cover(&rest[..n], secrets, false, out)?;
        rest = &rest[n..];
    }
    Some(())
}

/// The fewest directories covering `keys` and no secret, none above the
/// keys' common directory: that directory, else the keys split by their
/// next path segment. `None` when a key's own directory holds a secret.
fn cookie_cover(keys: &[&str], secrets: &Secrets, out: &mut Vec<Scope>) -> Option<()> {
    let dir = dir_of(common_prefix(keys));
    if secrets.prefix_ok(dir) {
        out.push(Scope::prefix(dir));
        return Some(());
    }
    let mut rest = keys;
    while let Some(first) = rest.first() {
        let sub = &first[..dir.len() + first[dir.len()..].find('/')? + 1];
        let n = rest.iter().take_while(|k| k.starts_with(sub)).count();
        cookie_cover(&rest[..n], secrets, out)?;
        rest = &rest[n..];
    }
    Some(())
}

/// Distinct scopes with those inside another dropped, and each input
/// scope's index in the result.
fn outermost(all: &[Scope]) -> (Vec<Scope>, Vec<usize>) {
    let mut distinct: Vec<Scope> = Vec::new();
    let mut at = Vec::with_capacity(all.len());
    for s in all {
        match distinct.iter().position(|d| d == s) {
            Some(i) => at.push(i),
            None => {
                distinct.push(s.clone());
                at.push(distinct.len() - 1);
            }
        }
    }
    // A scope inside another one (an I-frame playlist `master_360p_I-Frame*`
    // under `master_360p*`) needs no signature of its own: map each scope to
    // the shortest one that holds it.
    let coverer: Vec<usize> = (0..distinct.len())
        .map(|i| {
            (0..distinct.len())
                .filter(|&j| distinct[i].inside(&distinct[j]))
                .min_by_key(|&j| distinct[j].prefix.len())
                .unwrap_or(i)
        })
        .collect();
    let mut kept: Vec<Scope> = Vec::new();
    let mut index = vec![0; distinct.len()];
    for (i, s) in distinct.into_iter().enumerate() {
        if coverer[i] == i {
            index[i] = kept.len();
            kept.push(s);
        }
    }
    let at = at.into_iter().map(|d| index[coverer[d]]).collect();
    (kept, at)
}

/// Scopes for `allowed` (each rendition's URIs, e.g. from `media_uris`)
/// that cover none of `forbidden` (the URIs of renditions the tier may not
/// have; a URI an allowed rendition also uses is not secret from it) and
/// none of `always_secret` (the forbidden renditions' own playlists: even
/// if an allowed rendition lists one, granting it would open that
/// rendition through the gateway).
///
/// URL delivery: each rendition gets its URIs' common directory when that
/// covers nothing secret, otherwise their longest common prefix when that
/// covers nothing secret, otherwise the fewest narrower patterns (down to
/// single URLs) that do; never a wider grant. Cookie delivery: the
/// tightest set of directories covering every allowed rendition and
/// nothing a forbidden one uses (a directory inside another allowed one
/// shares its scope), when there is one.
pub fn scopes(
    allowed: &[Vec<Url>],
    forbidden: &[Url],
    always_secret: &[Url],
) -> Result<Scopes, ScopeError> {
    let always: HashSet<String> = always_secret.iter().map(key).collect();
    // A forbidden playlist an allowed rendition lists is not granted with
    // it (the player's request for it is refused at the edge).
    let keys: Vec<Vec<String>> = allowed
        .iter()
        .map(|r| {
            let mut k: Vec<String> = r.iter().map(key).filter(|k| !always.contains(k)).collect();
            k.sort_unstable();
            k.dedup();
            k
        })
        .collect();
    let everything_allowed: HashSet<&str> = keys.iter().flatten().map(String::as_str).collect();
    let secrets = Secrets::new(
        forbidden
            .iter()
            .map(key)
            .filter(|k| !everything_allowed.contains(k.as_str()))
            .chain(always)
            .collect(),
    );

    let mut url_scopes: Vec<Scope> = Vec::new();
    let mut ranges = Vec::with_capacity(keys.len());
    let mut cookie_scopes: Option<Vec<Scope>> = Some(Vec::new());
    for (i, own) in keys.iter().enumerate() {
        if own.is_empty() {
            return Err(ScopeError::Empty(i));
        }
        let refs: Vec<&str> = own.iter().map(String::as_str).collect();
        let lcp = common_prefix(&refs);
        // Every pattern must name one origin: scheme://host[:port]/…
        let origin_ok = lcp.find("://").is_some_and(|p| lcp[p + 3..].contains('/'));
        if !origin_ok {
            return Err(ScopeError::MixedOrigins(i));
        }
        let from = url_scopes.len();
        url_cover(&refs, &secrets, true, &mut url_scopes).ok_or(ScopeError::Overlap(i))?;
        ranges.push(from..url_scopes.len());
        if let Some(c) = cookie_scopes.as_mut()
            && cookie_cover(&refs, &secrets, c).is_none()
        {
            cookie_scopes = None;
        }
    }
    let (scopes, at) = outermost(&url_scopes);
    let of_rendition = ranges
        .into_iter()
        .map(|r| {
            let mut v: Vec<usize> = at[r].to_vec();
            let mut seen = HashSet::new();
            v.retain(|s| seen.insert(*s));
            v
        })
        .collect();
    let cookies = cookie_scopes.map(|c| outermost(&c).0);
    Ok(Scopes {
        scopes,
        of_rendition,
        path_separable: cookies.is_some(),
        cookies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter()
            .map(|u| Url::parse(&format!("https://cdn.example.com/assets/a/v1/hls/{u}")).unwrap())
            .collect()
    }

    #[test]
    fn one_directory_per_rendition_is_path_separable() {
        let s = scopes(
            &[
                urls(&["360p/index.m3u8", "360p/init.mp4", "360p/seg_1.m4s"]),
                urls(&["audio_en/index.m3u8", "audio_en/seg_1.m4s"]),
            ],
            &urls(&["1080p/index.m3u8", "1080p/seg_1.m4s"]),
            &[],
        )
        .unwrap();
        assert!(s.path_separable);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/360p/*"
        );
        assert_eq!(s.scopes[0].cookie_path(), Some("/assets/a/v1/hls/360p/"));
    }

    #[test]
    fn a_flat_layout_gets_string_prefixes_but_no_cookie_paths() {
        let s = scopes(
            &[urls(&[
                "master_360p.m3u8",
                "master_360p_00001.ts",
                "master_360p_00002.ts",
            ])],
            &urls(&["master_1080p.m3u8", "master_1080p_00001.ts"]),
            &[],
        )
        .unwrap();
        assert!(!s.path_separable);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/master_360p*"
        );
        assert_eq!(s.scopes[0].cookie_path(), None);
    }

    fn patterns(s: &Scopes, i: usize) -> Vec<String> {
        s.of(i).map(Scope::pattern).collect()
    }

    #[test]
    fn a_scope_never_covers_a_forbidden_uri() {
        const B: &str = "https://cdn.example.com/assets/a/v1/hls/";
        // 720p's only prefix would also open 720p60: each file exactly.
        let s = scopes(
            &[urls(&["master_720p.m3u8", "master_720p_1.ts"])],
            &urls(&["master_720p60.m3u8", "master_720p60_1.ts"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            patterns(&s, 0),
            [
                format!("{B}master_720p.m3u8"),
                format!("{B}master_720p_1.ts")
            ]
        );
        assert!(!s.path_separable);
        // A name prefix of a forbidden one: the playlist exactly, one
        // prefix for the segments.
        let s = scopes(
            &[urls(&[
                "title_360p.m3u8",
                "title_360p_00001.ts",
                "title_360p_00002.ts",
            ])],
            &urls(&["title_360p_hi.m3u8", "title_360p_hi_00001.ts"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            patterns(&s, 0),
            [
                format!("{B}title_360p.m3u8"),
                format!("{B}title_360p_0000*")
            ]
        );
        // Forbidden segments inside the allowed directory: a tighter prefix.
        let s = scopes(
            &[urls(&["720p/lo.m3u8", "720p/lo_1.ts"])],
            &urls(&["720p/hi.m3u8", "720p/hi_1.ts"]),
            &[],
        )
        .unwrap();
        assert_eq!(patterns(&s, 0), [format!("{B}720p/lo*")]);
        assert!(!s.scopes[0].directory);
        let s = scopes(
            &[urls(&["720p/index.m3u8", "720p/a.ts"])],
            &urls(&["720p/hi_1.ts"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            patterns(&s, 0),
            [format!("{B}720p/a.ts"), format!("{B}720p/index.m3u8")]
        );
    }

    #[test]
    fn a_forbidden_playlist_is_never_granted() {
        // The allowed rendition lists the forbidden one's playlist (a
        // hostile or broken manifest): it is left out of the grant.
        let mut allowed = urls(&["360p/index.m3u8", "360p/seg.ts"]);
        allowed.extend(urls(&["1080p/index.m3u8"]));
        let forbidden = urls(&["1080p/index.m3u8", "1080p/seg.ts"]);
        let s = scopes(&[allowed], &forbidden, &forbidden[..1]).unwrap();
        assert_eq!(
            patterns(&s, 0),
            ["https://cdn.example.com/assets/a/v1/hls/360p/*"]
        );
        // Without the rule, the shared URI would not be secret.
        let mut allowed = urls(&["360p/index.m3u8", "360p/seg.ts"]);
        allowed.extend(urls(&["1080p/index.m3u8"]));
        let s = scopes(&[allowed], &forbidden, &[]).unwrap();
        assert!(s.of(0).any(|sc| sc.covers(forbidden[0].as_str())));
    }

    #[test]
    fn a_rendition_in_two_directories_gets_two_cookie_paths() {
        // 360p uses its own directory and keys/; hls/ also holds 1080p.
        let s = scopes(
            &[urls(&["360p/index.m3u8", "360p/seg.ts", "keys/k.bin"])],
            &urls(&["1080p/index.m3u8", "1080p/seg.ts"]),
            &[],
        )
        .unwrap();
        let paths: Vec<&str> = s
            .cookies
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(Scope::cookie_path)
            .collect();
        assert_eq!(paths, ["/assets/a/v1/hls/360p/", "/assets/a/v1/hls/keys/"]);
    }

    #[test]
    fn a_uri_shared_with_a_forbidden_rendition_is_not_secret() {
        let s = scopes(
            &[urls(&["360p/index.m3u8", "360p/seg.ts"])],
            &urls(&["1080p/index.m3u8", "360p/seg.ts"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            s.scopes[0].prefix,
            "https://cdn.example.com/assets/a/v1/hls/360p/"
        );
    }

    #[test]
    fn a_parent_directory_is_a_cookie_scope_unless_something_forbidden_is_in_it() {
        // Audio in the hls/ root next to a variant's directory.
        let audio = urls(&["audio.m3u8", "audio_1.aac"]);
        let video = urls(&["360p/index.m3u8", "360p/seg.ts"]);
        // Nothing forbidden: one cookie on hls/ opens both.
        let s = scopes(&[video.clone(), audio.clone()], &[], &[]).unwrap();
        assert!(s.path_separable);
        assert_eq!(s.scopes.len(), 1);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/*"
        );
        // 360p forbidden: hls/ would open it, so the audio gets only its
        // name prefix (URL delivery), and cookies cannot carry the tier.
        let s = scopes(&[audio], &video, &[]).unwrap();
        assert!(!s.path_separable);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/audio*"
        );
    }

    #[test]
    fn mixed_origins_and_empty_renditions_are_errors() {
        let mut r = urls(&["360p/index.m3u8"]);
        r.push(Url::parse("https://other.example.com/seg.ts").unwrap());
        assert_eq!(scopes(&[r], &[], &[]), Err(ScopeError::MixedOrigins(0)));
        assert_eq!(scopes(&[vec![]], &[], &[]), Err(ScopeError::Empty(0)));
    }

    #[test]
    fn media_uris_lists_what_the_rendition_fetches() {
        let base = Url::parse("https://cdn.example.com/a/720p/index.m3u8").unwrap();
        let media = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"p\",VALUE=\"part\"\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k.bin\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k\"\n#EXTINF:6,\nseg_1.m4s?v=1\n#EXT-X-PART:DURATION=1,URI=\"{$p}_1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{$p}_2.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"../1080p/index.m3u8\",LAST-MSN=1\n";
        let got: Vec<String> = media_uris(&base, media.as_bytes())
            .unwrap()
            .iter()
            .map(|u| u.path().to_owned())
            .collect();
        assert_eq!(
            got,
            [
                "/a/720p/index.m3u8",
                "/a/720p/init.mp4",
                "/a/keys/k.bin",
                "/a/720p/seg_1.m4s",
                "/a/720p/part_1.m4s",
                "/a/720p/part_2.m4s"
            ]
        );
        assert!(matches!(
            media_uris(&base, b"#EXTM3U\n#EXTINF:6,\n{$imported}.ts\n"),
            Err(ScopeError::UnknownVariable(_))
        ));
    }

    mod layouts {
        use super::*;
        use proptest::prelude::*;

        const BASE: &str = "https://cdn.example.com/assets/a/v1/hls/";

        /// One rendition: a home directory (flat, nested or mixed) and a
        /// name (with name-prefix collisions: `v` and `v_hi`).
        fn rendition() -> impl Strategy<Value = (String, String)> {
            (
                prop::sample::select(vec!["", "a/", "a/b/", "c/", "a/c/"]),
                prop::sample::select(vec!["v", "v_hi", "x", "index"]),
            )
                .prop_map(|(d, n)| (d.to_owned(), n.to_owned()))
        }

        fn files(home: &str, name: &str) -> Vec<Url> {
            let mut v = vec![format!("{BASE}{home}{name}.m3u8")];
            v.extend((0..3).map(|k| format!("{BASE}{home}{name}_{k}.ts")));
            v.into_iter().map(|u| Url::parse(&u).unwrap()).collect()
        }

        fn dir_of(u: &Url) -> String {
            let s = u.as_str();
            s[..=s.rfind('/').unwrap()].to_owned()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(
                std::env::var("PLAYGATE_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2000)
            ))]
            /// For random layouts and tiers: every allowed URI is covered by
            /// one of its rendition's scopes, no scope covers a forbidden
            /// URI (nor a forbidden playlist), and cookie delivery (every
            /// scope a directory) is possible exactly when no allowed URI
            /// shares its directory with a forbidden one.
            #[test]
            fn scopes_cover_what_is_allowed_and_nothing_forbidden(
                layout in prop::collection::vec((rendition(), any::<bool>()), 1..6)
            ) {
                let mut seen = std::collections::HashSet::new();
                let mut layout: Vec<_> = layout.into_iter().filter(|((d, n), _)| seen.insert(format!("{d}{n}"))).collect();
                // A tier keeps at least one rendition (else there is no master).
                layout[0].1 = true;
                let allowed: Vec<Vec<Url>> = layout.iter().filter(|(_, a)| *a).map(|((d, n), _)| files(d, n)).collect();
                let forbidden: Vec<Url> = layout.iter().filter(|(_, a)| !*a).flat_map(|((d, n), _)| files(d, n)).collect();
                let playlists: Vec<Url> = layout.iter().filter(|(_, a)| !*a).map(|((d, n), _)| files(d, n).remove(0)).collect();
                let secret: Vec<&Url> = forbidden.iter().filter(|f| !allowed.iter().flatten().any(|a| a == *f)).collect();
                let dir_ok = allowed.iter().flatten().all(|u| {
                    let dir = dir_of(u);
                    !secret.iter().any(|f| f.as_str().starts_with(&dir))
                });
                let s = scopes(&allowed, &forbidden, &playlists);
                prop_assert!(s.is_ok(), "{:?}", s);
                let s = s.unwrap();
                for (i, r) in allowed.iter().enumerate() {
                    for u in r {
                        prop_assert!(s.covering(i, u).is_some(), "{} not under {:?}", u, s.of(i).map(Scope::pattern).collect::<Vec<_>>());
                    }
                    prop_assert!(s.of(i).count() <= r.len());
                }
                for sc in s.scopes.iter().chain(s.cookies.iter().flatten()) {
                    for f in secret.iter().copied().chain(&playlists) {
                        prop_assert!(!resource_matches(&sc.pattern(), f.as_str()), "{} opens {}", sc.pattern(), f);
                    }
                }
                prop_assert_eq!(s.path_separable, dir_ok);
                if let Some(c) = &s.cookies {
                    for u in allowed.iter().flatten() {
                        prop_assert!(c.iter().any(|d| d.directory && d.covers(u.as_str())), "no cookie path for {}", u);
                    }
                    for a in c {
                        for b in c {
                            prop_assert!(a == b || !a.prefix.starts_with(&b.prefix), "{} inside {}", a.prefix, b.prefix);
                        }
                    }
                }
            }
        }
    }
}
