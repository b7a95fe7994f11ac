//! Rendition scopes: for each rendition a tier may have, the tightest
//! CloudFront resource pattern (`prefix*`) that covers every URI the
//! rendition uses and no URI of a rendition the tier may not have.
//!
//! playgate never assumes a storage layout: scopes come from the URIs the
//! manifests actually list. With one directory per rendition each scope is
//! that directory, and the layout is *path-separable*: each scope is also a
//! cookie `Path` that no other rendition's URIs fall under, which cookie
//! delivery needs. A flat layout (MediaConvert's default:
//! `master_720p.m3u8`, `master_720p_00001.ts` side by side) still gets
//! per-rendition string prefixes (`…/master_720p*`) for URL delivery.
//!
//! Matching uses the verifier's own `resource_matches`, so a scope means
//! exactly what CloudFront will make of it.

use super::media::{URI_TAGS, signable};
use super::{HlsError, attributes, lines, tag_name};
use crate::cloudfront::policy::resource_matches;
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

/// One resource pattern: `prefix` followed by `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub prefix: String,
    /// The prefix ends with `/`: it is also a cookie `Path`.
    pub directory: bool,
}

impl Scope {
    /// The policy `Resource`.
    pub fn pattern(&self) -> String {
        format!("{}*", self.prefix)
    }

    /// The cookie `Path` (the prefix's path), when it is a directory.
    pub fn cookie_path(&self) -> Option<&str> {
        if !self.directory {
            return None;
        }
        let after = self.prefix.find("://")? + 3;
        let slash = self.prefix[after..].find('/')? + after;
        Some(&self.prefix[slash..])
    }
}

/// The scopes of the allowed renditions. Renditions in one directory (a
/// variant and its I-frame playlist, which reuse the same segments) share
/// one scope, and so does a rendition whose prefix lies inside another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// Distinct scopes, in order of first use.
    pub scopes: Vec<Scope>,
    /// For each allowed rendition, its index in `scopes`.
    pub of_rendition: Vec<usize>,
    /// Every scope is a directory and none lies inside another: one cookie
    /// triple per scope, each with its own `Path`, works.
    pub path_separable: bool,
}

impl Scopes {
    /// The scope of allowed rendition `i`.
    pub fn of(&self, i: usize) -> &Scope {
        &self.scopes[self.of_rendition[i]]
    }
}

/// The key a URL is compared by: without query and fragment.
fn key(url: &Url) -> String {
    let s = url.as_str();
    s[..s.find(['?', '#']).unwrap_or(s.len())].to_owned()
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

fn covers_any<'a>(prefix: &str, urls: impl IntoIterator<Item = &'a str>) -> bool {
    let pattern = format!("{prefix}*");
    urls.into_iter().any(|u| resource_matches(&pattern, u))
}

/// Scopes for `allowed` (each rendition's URIs, e.g. from `media_uris`)
/// that cover none of `forbidden` (the URIs of renditions the tier may not
/// have; a URI an allowed rendition also uses is not secret from it).
///
/// Each rendition gets its URIs' common directory when that covers nothing
/// secret (so, for cookie delivery, the tightest set of cookie paths that
/// covers every allowed rendition and nothing a forbidden one uses: a
/// directory inside another allowed one shares its scope); otherwise the
/// longest common prefix of its URIs, when that covers nothing secret
/// (URL delivery only); otherwise it is an error, never a wider grant.
pub fn scopes(allowed: &[Vec<Url>], forbidden: &[Url]) -> Result<Scopes, ScopeError> {
    let keys: Vec<Vec<String>> = allowed
        .iter()
        .map(|r| r.iter().map(key).collect())
        .collect();
    let everything_allowed: HashSet<&str> = keys.iter().flatten().map(String::as_str).collect();
    let secret: Vec<String> = forbidden
        .iter()
        .map(key)
        .filter(|k| !everything_allowed.contains(k.as_str()))
        .collect();
    let covers_secret = |prefix: &str| covers_any(prefix, secret.iter().map(String::as_str));

    // Each rendition's common prefix and directory.
    let mut spans: Vec<(&str, &str)> = Vec::with_capacity(keys.len());
    for (i, own) in keys.iter().enumerate() {
        if own.is_empty() {
            return Err(ScopeError::Empty(i));
        }
        let refs: Vec<&str> = own.iter().map(String::as_str).collect();
        let lcp = common_prefix(&refs);
        // The pattern must name one origin: scheme://host[:port]/…
        let origin_ok = lcp.find("://").is_some_and(|p| lcp[p + 3..].contains('/'));
        if !origin_ok {
            return Err(ScopeError::MixedOrigins(i));
        }
        spans.push((lcp, &lcp[..=lcp.rfind('/').unwrap_or(0)]));
    }

    let mut distinct: Vec<Scope> = Vec::new();
    let mut of_rendition = Vec::with_capacity(keys.len());
    for (i, &(lcp, dir)) in spans.iter().enumerate() {
        // The rendition's directory, unless something forbidden lies in it;
        // another allowed rendition beneath it is no reason not to (the two
        // share the one scope below).
        let scope = if !covers_secret(dir) {
            Scope {
                prefix: dir.to_owned(),
                directory: true,
            }
        } else if !covers_secret(lcp) {
            Scope {
                prefix: lcp.to_owned(),
                directory: lcp.ends_with('/'),
            }
        } else {
            return Err(ScopeError::Overlap(i));
        };
        let at = match distinct.iter().position(|s| *s == scope) {
            Some(at) => at,
            None => {
                distinct.push(scope);
                distinct.len() - 1
            }
        };
        of_rendition.push(at);
    }

    // A scope inside another one (an I-frame playlist `master_360p_I-Frame*`
    // under `master_360p*`) needs no signature of its own: map each scope to
    // the shortest one whose prefix it starts with.
    let coverer: Vec<usize> = (0..distinct.len())
        .map(|i| {
            (0..distinct.len())
                .filter(|&j| j != i && distinct[i].prefix.starts_with(&distinct[j].prefix))
                .min_by_key(|&j| distinct[j].prefix.len())
                .unwrap_or(i)
        })
        .collect();
    let mut scopes: Vec<Scope> = Vec::new();
    let mut index = vec![0; distinct.len()];
    for (i, s) in distinct.into_iter().enumerate() {
        if coverer[i] == i {
            index[i] = scopes.len();
            scopes.push(s);
        }
    }
    let of_rendition = of_rendition.iter().map(|&r| index[coverer[r]]).collect();
    // What is left nests nowhere, so it is cookie-separable when every
    // scope is a directory.
    let path_separable = scopes.iter().all(|s| s.directory);
    Ok(Scopes {
        scopes,
        of_rendition,
        path_separable,
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
        )
        .unwrap();
        assert!(!s.path_separable);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/master_360p*"
        );
        assert_eq!(s.scopes[0].cookie_path(), None);
    }

    #[test]
    fn a_scope_never_covers_a_forbidden_uri() {
        // 720p's only prefix would also open 720p60.
        let err = scopes(
            &[urls(&["master_720p.m3u8", "master_720p_1.ts"])],
            &urls(&["master_720p60.m3u8", "master_720p60_1.ts"]),
        );
        assert_eq!(err, Err(ScopeError::Overlap(0)));
        // Forbidden segments inside the allowed directory: a tighter prefix.
        let s = scopes(
            &[urls(&["720p/lo.m3u8", "720p/lo_1.ts"])],
            &urls(&["720p/hi.m3u8", "720p/hi_1.ts"]),
        )
        .unwrap();
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/720p/lo*"
        );
        assert!(!s.scopes[0].directory);
        let err = scopes(
            &[urls(&["720p/index.m3u8", "720p/a.ts"])],
            &urls(&["720p/hi_1.ts"]),
        );
        assert_eq!(err, Err(ScopeError::Overlap(0)));
    }

    #[test]
    fn a_uri_shared_with_a_forbidden_rendition_is_not_secret() {
        let s = scopes(
            &[urls(&["360p/index.m3u8", "360p/seg.ts"])],
            &urls(&["1080p/index.m3u8", "360p/seg.ts"]),
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
        let s = scopes(&[video.clone(), audio.clone()], &[]).unwrap();
        assert!(s.path_separable);
        assert_eq!(s.scopes.len(), 1);
        assert_eq!(
            s.scopes[0].pattern(),
            "https://cdn.example.com/assets/a/v1/hls/*"
        );
        // 360p forbidden: hls/ would open it, so the audio gets only its
        // name prefix (URL delivery), and cookies cannot carry the tier.
        let s = scopes(&[audio], &video).unwrap();
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
        assert_eq!(scopes(&[r], &[]), Err(ScopeError::MixedOrigins(0)));
        assert_eq!(scopes(&[vec![]], &[]), Err(ScopeError::Empty(0)));
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
            /// its scope, no scope covers a forbidden URI, and cookie
            /// delivery (every scope a directory) is possible exactly when
            /// each allowed rendition's own directory holds nothing forbidden.
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
                let secret: Vec<&Url> = forbidden.iter().filter(|f| !allowed.iter().flatten().any(|a| a == *f)).collect();
                let dir_ok = allowed.iter().all(|r| {
                    let dirs: std::collections::HashSet<String> = r.iter().map(dir_of).collect();
                    let common = common_prefix(&dirs.iter().map(String::as_str).collect::<Vec<_>>()).to_owned();
                    let common = common[..=common.rfind('/').unwrap()].to_owned();
                    !secret.iter().any(|f| f.as_str().starts_with(&common))
                });
                match scopes(&allowed, &forbidden) {
                    Ok(s) => {
                        for (i, r) in allowed.iter().enumerate() {
                            for u in r {
                                prop_assert!(resource_matches(&s.of(i).pattern(), u.as_str()), "{} not under {}", u, s.of(i).pattern());
                            }
                        }
                        for sc in &s.scopes {
                            for f in &secret {
                                prop_assert!(!resource_matches(&sc.pattern(), f.as_str()), "{} opens {}", sc.pattern(), f);
                            }
                        }
                        prop_assert_eq!(s.path_separable, dir_ok);
                    }
                    Err(ScopeError::Overlap(_)) => prop_assert!(!dir_ok),
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
