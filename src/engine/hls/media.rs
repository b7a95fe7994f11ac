//! Media playlist signing (URL delivery): append the signed query
//! (`Policy=…&Signature=…&Key-Pair-Id=…[&Hash-Algorithm=SHA256]`) to every
//! segment URI and to the `URI` attribute of `EXT-X-MAP`, `EXT-X-KEY`
//! (http(s) or relative only), `EXT-X-PART`, `EXT-X-PRELOAD-HINT` and
//! `EXT-X-RENDITION-REPORT` — with `&` when the URI already has a query.
//! Never to `skd://`, `data:` or any other non-HTTP scheme. Everything else
//! (including `EXT-X-BYTERANGE`) is copied byte for byte. One pass, output
//! preallocated.
//!
//! With a base URL (`sign_at`), relative URIs are first made absolute, as a
//! playlist served from the gateway must point at the CDN: plain relative
//! names are joined to the base directory by concatenation, anything with
//! dot segments goes through `Url::join`.

use super::{HlsError, lines, tag_name};
use url::Url;

pub(crate) const URI_TAGS: &[&str] = &[
    "EXT-X-MAP",
    "EXT-X-KEY",
    "EXT-X-PART",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
];

/// Whether a URI is fetched over HTTP from the CDN (relative, or http(s)).
pub(crate) fn signable(uri: &str) -> bool {
    let uri = uri.trim();
    if uri.is_empty() {
        return false;
    }
    match uri.find(':') {
        // A colon before any '/', '?' or '#' means a scheme.
        Some(c) if !uri[..c].contains(['/', '?', '#']) => {
            let scheme = &uri[..c];
            scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
        }
        _ => true,
    }
}

/// Makes relative URIs absolute against a base URL.
pub(crate) struct Resolver<'a> {
    base: &'a Url,
    /// The base up to and including the last `/` of its path.
    dir: &'a str,
    /// `scheme://host[:port]`.
    origin: &'a str,
    /// `EXT-X-DEFINE` `NAME`/`VALUE` of the playlist (only when it uses any).
    vars: super::master::Vars,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(base: &'a Url) -> Self {
        let s = base.as_str();
        let path_end = s.find(['?', '#']).unwrap_or(s.len());
        let after_scheme = s.find("://").map_or(0, |i| i + 3);
        let origin_end = s[after_scheme..path_end]
            .find('/')
            .map_or(path_end, |i| after_scheme + i);
        let dir_end = s[..path_end].rfind('/').map_or(path_end, |i| i + 1);
        Resolver {
            base,
            dir: &s[..dir_end.max(origin_end)],
            origin: &s[..origin_end],
            vars: Default::default(),
        }
    }

    fn with_vars(mut self, lines: &[super::Line<'_>]) -> Self {
        self.vars = super::master::variables(lines, None);
        self
    }

    /// Appends `uri` (http(s) or relative) made absolute.
    pub(crate) fn push(&self, out: &mut String, uri: &str) {
        let slow =
            uri.starts_with(['.', '?', '#']) || uri.contains("/.") || uri.contains(['\\', ' ']);
        if uri.starts_with("//") {
            out.push_str(self.base.scheme());
            out.push(':');
            out.push_str(uri);
        } else if has_scheme(uri) {
            out.push_str(uri);
        } else if slow {
            match self.base.join(uri) {
                Ok(u) => out.push_str(u.as_str()),
                Err(_) => out.push_str(uri),
            }
        } else if uri.starts_with('/') {
            out.push_str(self.origin);
            out.push_str(uri);
        } else {
            out.push_str(self.dir);
            out.push_str(uri);
        }
    }

    /// Whether an absolute URL is on the base's origin.
    pub(crate) fn same_origin(&self, absolute: &str) -> bool {
        absolute
            .strip_prefix(self.origin)
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

fn has_scheme(uri: &str) -> bool {
    uri.find(':')
        .is_some_and(|c| c > 0 && !uri[..c].contains(['/', '?', '#']))
}

/// Appends `&query` when `uri` already has a query, else `?query`.
fn push_query(out: &mut String, uri: &str, query: &str) {
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(query);
}

/// Appends `uri` with the query `query` gives for it. With a base, the
/// URI is made absolute first, and one on another origin (a third-party
/// key server, the gateway's key endpoint) is written as it is, with a
/// query only if `query` has one for a URI elsewhere.
fn push_signed<'q>(
    out: &mut String,
    uri: &str,
    query: &mut impl FnMut(&str, bool) -> Option<&'q str>,
    base: Option<&Resolver<'_>>,
) {
    let Some(r) = base else {
        out.push_str(uri);
        if let Some(q) = query(uri, true) {
            push_query(out, uri, q);
        }
        return;
    };
    // A URI with a variable is resolved after substitution, when the
    // playlist defines it; an imported one is left to the player.
    let substituted;
    let uri = if uri.contains("{$") {
        match super::master::substitute(uri, &r.vars) {
            Some(u) => {
                substituted = u;
                substituted.as_str()
            }
            None => {
                out.push_str(uri);
                return;
            }
        }
    } else {
        uri
    };
    let start = out.len();
    r.push(out, uri);
    let same = r.same_origin(&out[start..]);
    let q = query(&out[start..], same);
    if !same {
        out.truncate(start);
        out.push_str(uri);
    }
    if let Some(q) = q {
        push_query(out, uri, q);
    }
}

/// Signs every URI in `playlist` with `query` (already URL-safe).
pub fn sign(playlist: &[u8], query: &str) -> Result<String, HlsError> {
    sign_at(playlist, query, None)
}

/// Signs every URI in `playlist` with `query`, first making relative URIs
/// absolute against `base` (the playlist's CDN URL) when one is given.
pub fn sign_at(playlist: &[u8], query: &str, base: Option<&Url>) -> Result<String, HlsError> {
    // Our signature is for our CDN: never on a URI elsewhere.
    sign_each(playlist, base, query.len(), |_, same_origin| {
        same_origin.then_some(query)
    })
}

/// Signs every URI in `playlist` with the query `query_for(uri,
/// same_origin)` gives for it: the URI made absolute when there is a
/// `base` (as written otherwise), and whether it is on the base's origin
/// (always true without a base); `None` leaves it as it is. A CDN
/// signature belongs only on the same origin; a URI elsewhere may get
/// another credential (the gateway's key token). `typical` is a query's
/// usual length, to size the output.
pub fn sign_each<'q>(
    playlist: &[u8],
    base: Option<&Url>,
    typical: usize,
    mut query_for: impl FnMut(&str, bool) -> Option<&'q str>,
) -> Result<String, HlsError> {
    let query = &mut query_for;
    let lines = lines(playlist)?;
    let uses_vars = playlist.windows(2).any(|w| w == b"{$");
    let resolver = base.map(|b| {
        let r = Resolver::new(b);
        if uses_vars { r.with_vars(&lines) } else { r }
    });
    let per_uri = typical + 1 + resolver.as_ref().map_or(0, |r| r.dir.len());
    let uris = lines.iter().filter(|l| !l.text.starts_with('#')).count();
    let mut out = String::with_capacity(playlist.len() + (uris + 8) * per_uri);
    for line in lines {
        let text = line.text;
        if text.starts_with('#') {
            match tag_name(text) {
                Some(tag) if URI_TAGS.contains(&tag) => {
                    sign_uri_attribute(&mut out, text, tag, query, resolver.as_ref())
                }
                _ => out.push_str(text),
            }
        } else if signable(text) {
            let trimmed = text.trim_end();
            let lead = trimmed.len() - trimmed.trim_start().len();
            out.push_str(&trimmed[..lead]);
            push_signed(&mut out, &trimmed[lead..], query, resolver.as_ref());
            out.push_str(&text[trimmed.len()..]);
        } else {
            out.push_str(text);
        }
        out.push_str(line.ending);
    }
    Ok(out)
}

/// Rewrites the URIs of a media playlist: every segment line and the
/// `URI` of `EXT-X-MAP`, `EXT-X-KEY`, parts, hints and rendition reports,
/// resolved against `base`, is given to `map`; its `Some` replaces the URI
/// as written, `None` keeps it. Non-HTTP schemes and URIs with variables
/// are left alone; every other byte is copied.
pub fn map_uris(
    playlist: &[u8],
    base: &Url,
    mut map: impl FnMut(&Url) -> Option<String>,
) -> Result<String, HlsError> {
    let lines = lines(playlist)?;
    let mut out = String::with_capacity(playlist.len() + 64);
    let mut replace = |raw: &str| -> Option<String> {
        if !signable(raw) || raw.contains("{$") {
            return None;
        }
        map(&base.join(raw.trim()).ok()?)
    };
    for line in lines {
        let text = line.text;
        if !text.starts_with('#') {
            let trimmed = text.trim();
            match (!trimmed.is_empty()).then(|| replace(trimmed)).flatten() {
                Some(new) => {
                    let lead = text.len() - text.trim_start().len();
                    out.push_str(&text[..lead]);
                    out.push_str(&new);
                    out.push_str(&text[lead + trimmed.len()..]);
                }
                None => out.push_str(text),
            }
        } else {
            let tag = tag_name(text).filter(|t| URI_TAGS.contains(t));
            let uri = tag.and_then(|tag| {
                let prefix_len = 1 + tag.len() + 1;
                let a = super::attributes(text.get(prefix_len..)?)
                    .into_iter()
                    .find(|a| a.name == "URI" && a.quoted())?;
                let new = replace(a.value())?;
                let open = prefix_len + a.offset + 1;
                Some((open, open + a.value().len(), new))
            });
            match uri {
                Some((open, close, new)) => {
                    out.push_str(&text[..open]);
                    out.push_str(&new.replace('"', "%22"));
                    out.push_str(&text[close..]);
                }
                None => out.push_str(text),
            }
        }
        out.push_str(line.ending);
    }
    Ok(out)
}

fn sign_uri_attribute<'q>(
    out: &mut String,
    text: &str,
    tag: &str,
    query: &mut impl FnMut(&str, bool) -> Option<&'q str>,
    base: Option<&Resolver<'_>>,
) {
    let prefix_len = 1 + tag.len() + 1; // '#' + tag + ':'
    let Some(list) = text.get(prefix_len..) else {
        out.push_str(text);
        return;
    };
    let uri = super::attributes(list)
        .into_iter()
        .find(|a| a.name == "URI" && a.quoted());
    match uri {
        Some(a) if signable(a.value()) => {
            // Replace the value between its quotes.
            let open = prefix_len + a.offset + 1;
            let close = open + a.value().len();
            out.push_str(&text[..open]);
            push_signed(out, a.value(), query, base);
            out.push_str(&text[close..]);
        }
        _ => out.push_str(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_uri_gets_what_the_closure_gives_and_elsewhere_only_if_asked() {
        let input = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"/v1/keys/a/k\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://gw/v1/keys/a/k2\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://other/k?x=1\"\n#EXTINF:1,\nseg.m4s\n";
        let base = Url::parse("http://h/cdn/assets/a/v1/hls/360p/index.m3u8").unwrap();
        let out = sign_each(input.as_bytes(), Some(&base), 3, |abs, same| {
            if abs.starts_with("https://gw/") {
                Some("kt=1")
            } else {
                (same && !abs.contains("/v1/keys/")).then_some("S=1")
            }
        })
        .unwrap();
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"http://h/v1/keys/a/k\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://gw/v1/keys/a/k2?kt=1\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://other/k?x=1\"\n#EXTINF:1,\nhttp://h/cdn/assets/a/v1/hls/360p/seg.m4s?S=1\n"
        );
    }

    const Q: &str = "Policy=P&Signature=S&Key-Pair-Id=K";

    #[test]
    fn signs_segments_maps_keys_parts_and_hints() {
        let input = "#EXTM3U\r\n#EXT-X-VERSION:9\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x1\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://asset\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n#EXTINF:6.006,\nseg_1.m4s?v=2\n#EXT-X-BYTERANGE:1000@720\nseg_all.m4s\n#EXT-X-PART:DURATION=1.0,URI=\"part_1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_2.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=5\n#EXTINF:6,\ndata:text/plain,abc\n#EXTINF:6,\nhttps://cdn.example.com/a/seg_9.m4s\n";
        let out = sign(input.as_bytes(), Q).unwrap();
        let expected = "#EXTM3U\r\n#EXT-X-VERSION:9\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin?Policy=P&Signature=S&Key-Pair-Id=K\",IV=0x1\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://asset\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXT-X-MAP:URI=\"init.mp4?Policy=P&Signature=S&Key-Pair-Id=K\",BYTERANGE=\"720@0\"\n#EXTINF:6.006,\nseg_1.m4s?v=2&Policy=P&Signature=S&Key-Pair-Id=K\n#EXT-X-BYTERANGE:1000@720\nseg_all.m4s?Policy=P&Signature=S&Key-Pair-Id=K\n#EXT-X-PART:DURATION=1.0,URI=\"part_1.m4s?Policy=P&Signature=S&Key-Pair-Id=K\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_2.m4s?Policy=P&Signature=S&Key-Pair-Id=K\"\n#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8?Policy=P&Signature=S&Key-Pair-Id=K\",LAST-MSN=5\n#EXTINF:6,\ndata:text/plain,abc\n#EXTINF:6,\nhttps://cdn.example.com/a/seg_9.m4s?Policy=P&Signature=S&Key-Pair-Id=K\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn relative_uris_become_absolute_against_the_base() {
        let base =
            Url::parse("https://cdn.example.com/assets/a/v1/hls/720p/index.m3u8?x=1").unwrap();
        let input = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k.bin\"\n#EXTINF:6,\nseg_1.m4s\n#EXTINF:6,\n/root/seg_2.m4s\n#EXTINF:6,\n//cdn.example.com/seg_3.m4s\n#EXTINF:6,\nhttps://x.example.com/seg_4.m4s?a=b\n#EXTINF:6,\n./sub/./seg_5.m4s\n#EXTINF:6,\nseg 6.m4s\n";
        // Another origin (x.example.com) gets no signature; the same origin
        // written absolutely does.
        let out = sign_at(input.as_bytes(), "S=1", Some(&base)).unwrap();
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"https://cdn.example.com/assets/a/v1/hls/720p/init.mp4?S=1\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://cdn.example.com/assets/a/v1/hls/keys/k.bin?S=1\"\n#EXTINF:6,\nhttps://cdn.example.com/assets/a/v1/hls/720p/seg_1.m4s?S=1\n#EXTINF:6,\nhttps://cdn.example.com/root/seg_2.m4s?S=1\n#EXTINF:6,\nhttps://cdn.example.com/seg_3.m4s?S=1\n#EXTINF:6,\nhttps://x.example.com/seg_4.m4s?a=b\n#EXTINF:6,\nhttps://cdn.example.com/assets/a/v1/hls/720p/sub/seg_5.m4s?S=1\n#EXTINF:6,\nhttps://cdn.example.com/assets/a/v1/hls/720p/seg%206.m4s?S=1\n"
        );
        // The fast path and Url::join agree.
        for uri in ["seg_1.m4s", "/root/seg_2.m4s", "a/b/c.ts", "x.ts?y=1"] {
            let mut fast = String::new();
            Resolver::new(&base).push(&mut fast, uri);
            assert_eq!(fast, base.join(uri).unwrap().as_str(), "{uri}");
        }
    }

    #[test]
    fn uris_are_mapped_and_everything_else_kept() {
        let base = Url::parse("https://x.invalid/assets/a/v1/hls/master_360p.m3u8").unwrap();
        let input = "#EXTM3U\r\n#EXT-X-MAP:URI=\"master_360p_init.mp4\",BYTERANGE=\"720@0\"\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n#EXTINF:6,\nmaster_360p_00001.ts\n#EXT-X-BYTERANGE:100@0\n  master_360p_00002.ts  \n# comment\n";
        let out = map_uris(input.as_bytes(), &base, |u| {
            Some(format!("360p/{}", u.path().rsplit('/').next().unwrap()))
        })
        .unwrap();
        assert_eq!(
            out,
            "#EXTM3U\r\n#EXT-X-MAP:URI=\"360p/master_360p_init.mp4\",BYTERANGE=\"720@0\"\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n#EXTINF:6,\n360p/master_360p_00001.ts\n#EXT-X-BYTERANGE:100@0\n  360p/master_360p_00002.ts  \n# comment\n"
        );
        let same = map_uris(input.as_bytes(), &base, |_| None).unwrap();
        assert_eq!(same, input, "None keeps every byte");
    }

    #[test]
    fn schemes() {
        assert!(signable("seg.ts"));
        assert!(signable("../a/seg.ts"));
        assert!(signable("/abs/seg.ts"));
        assert!(signable("HTTPS://h/x"));
        assert!(
            signable("a/b:c.ts"),
            "a colon after a slash is not a scheme"
        );
        assert!(!signable("skd://x"));
        assert!(!signable("data:application/octet-stream;base64,AAAA"));
        assert!(!signable("ftp://h/x"));
        assert!(!signable("   "));
    }
}
