//! Master filtering properties over generated masters and tiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::engine::cloudfront::policy::resource_matches;
use playgate::engine::hls::master::{MasterError, UriKind, filter, rewrite};
use playgate::engine::hls::scope::{ScopeError, scopes};
use playgate::engine::tiers::{Rendition, TierRules};
use proptest::prelude::*;

#[path = "common/fuzz.rs"]
mod fuzz;
use fuzz::cases;
use url::Url;

#[derive(Debug, Clone)]
struct Variant {
    height: u32,
    bandwidth: u64,
    codec: &'static str,
    range: &'static str,
    fps: u32,
    audio: u8,
}

fn variant() -> impl Strategy<Value = Variant> {
    (
        prop::sample::select(vec![144u32, 360, 480, 720, 1080, 2160]),
        100_000u64..25_000_000,
        prop::sample::select(vec!["avc1.64001f", "hvc1.2.4.L153.B0", "av01.0.08M.08"]),
        prop::sample::select(vec!["SDR", "PQ", "HLG"]),
        prop::sample::select(vec![24u32, 25, 30, 50, 60]),
        0u8..3,
    )
        .prop_map(|(height, bandwidth, codec, range, fps, audio)| Variant {
            height,
            bandwidth,
            codec,
            range,
            fps,
            audio,
        })
}

fn rules() -> impl Strategy<Value = TierRules> {
    (
        prop::option::of(prop::sample::select(vec![360u32, 480, 720, 1080, 2160])),
        prop::option::of(500_000u64..20_000_000),
        prop::option::of(prop::sample::subsequence(
            vec!["avc1", "hvc1", "av01", "mp4a"],
            1..4,
        )),
        prop::option::of(prop::sample::subsequence(vec!["SDR", "PQ", "HLG"], 1..3)),
        prop::option::of(prop::sample::select(vec![30.0f64, 60.0])),
    )
        .prop_map(|(h, b, c, r, f)| TierRules {
            max_height: h,
            max_bandwidth: b,
            codecs: c.map(|v| v.into_iter().map(String::from).collect()),
            video_range: r.map(|v| v.into_iter().map(String::from).collect()),
            max_frame_rate: f,
            ..Default::default()
        })
}

fn render(vs: &[Variant]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n# keep me\n");
    for a in 0..3 {
        s.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a{a}\",NAME=\"A{a}\",URI=\"audio_{a}/index.m3u8\"\n"
        ));
    }
    for (i, v) in vs.iter().enumerate() {
        s.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{},mp4a.40.2\",VIDEO-RANGE={},FRAME-RATE={},AUDIO=\"a{}\"\nv{i}/index.m3u8\n",
            v.bandwidth, v.height * 16 / 9, v.height, v.codec, v.range, v.fps, v.audio
        ));
        s.push_str(&format!(
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\",VIDEO-RANGE={},URI=\"v{i}/iframe.m3u8\"\n",
            v.bandwidth / 10, v.height * 16 / 9, v.height, v.codec, v.range
        ));
    }
    s
}

fn allowed(r: &TierRules, v: &Variant, iframe: bool) -> bool {
    r.allows(&Rendition {
        bandwidth: Some(if iframe {
            v.bandwidth / 10
        } else {
            v.bandwidth
        }),
        height: Some(v.height),
        codecs: Some(if iframe {
            vec![v.codec.into()]
        } else {
            vec![v.codec.into(), "mp4a.40.2".into()]
        }),
        frame_rate: (!iframe).then_some(v.fps as f64),
        video_range: Some(v.range.into()),
        iframe,
        image: false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(3000)))]

    #[test]
    fn filter_keeps_exactly_the_allowed_renditions(vs in prop::collection::vec(variant(), 1..8), r in rules()) {
        let master = render(&vs);
        match filter(master.as_bytes(), &r, None) {
            Err(MasterError::NoVideoVariant) => {
                prop_assert!(vs.iter().all(|v| !allowed(&r, v, false)));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
            Ok(f) => {
                for (i, v) in vs.iter().enumerate() {
                    let uri = format!("v{i}/index.m3u8");
                    prop_assert_eq!(f.playlist.contains(&uri), allowed(&r, v, false), "{}", uri);
                    let trick = format!("v{i}/iframe.m3u8");
                    prop_assert_eq!(f.playlist.contains(&trick), allowed(&r, v, true), "{}", trick);
                }
                for a in 0..3u8 {
                    let used = vs.iter().any(|v| v.audio == a && allowed(&r, v, false));
                    prop_assert_eq!(f.playlist.contains(&format!("audio_{a}/")), used);
                }
                // Every output line is an input line, in the same order.
                let mut input = master.lines();
                for line in f.playlist.lines() {
                    prop_assert!(input.any(|l| l == line), "line {} not from input", line);
                }
                prop_assert!(f.playlist.contains("# keep me"));
                // The oracle: m3u8-rs reads the output and finds exactly the
                // kept variants, before and after rewriting to absolute URLs.
                let parsed = m3u8_rs::parse_master_playlist_res(f.playlist.as_bytes())
                    .map_err(|e| TestCaseError::fail(format!("m3u8-rs: {e:?}")))?;
                let seen: Vec<&str> = parsed.variants.iter().filter(|v| !v.is_i_frame).map(|v| v.uri.as_str()).collect();
                let kept: Vec<&str> = f.variants().map(|v| v.uri.as_str()).collect();
                prop_assert_eq!(seen, kept);
                let base = url::Url::parse("https://cdn.example.com/assets/a/v1/hls/master.m3u8").unwrap();
                let absolute = rewrite(&f.playlist, &base, |_, _| None).unwrap();
                let parsed = m3u8_rs::parse_master_playlist_res(absolute.as_bytes())
                    .map_err(|e| TestCaseError::fail(format!("m3u8-rs: {e:?}")))?;
                prop_assert_eq!(parsed.variants.len(), f.kept.iter().filter(|u| u.kind != UriKind::Media).count());
                for v in &parsed.variants {
                    prop_assert!(v.uri.starts_with("https://cdn.example.com/assets/a/v1/hls/v"), "{}", v.uri);
                }
                for m in &parsed.alternatives {
                    let uri = m.uri.as_deref().unwrap_or("");
                    prop_assert!(uri.starts_with("https://cdn.example.com/assets/a/v1/hls/audio_"), "{}", uri);
                }
                let again = filter(f.playlist.as_bytes(), &r, None).unwrap();
                prop_assert_eq!(again.playlist, f.playlist);
            }
        }
    }
}

/// One rendition of a generated layout: its URIs under a common base.
fn layout_rendition() -> impl Strategy<Value = (String, bool, bool, bool)> {
    (
        prop::sample::select(vec!["360p", "720p", "720p60", "1080p", "a", "aa", "audio"]),
        any::<bool>(), // flat (name modifiers side by side) or one directory
        any::<bool>(), // uses the shared key
        any::<bool>(), // allowed
    )
        .prop_map(|(n, flat, key, allowed)| (n.to_owned(), flat, key, allowed))
}

fn uris_of(name: &str, flat: bool, key: bool) -> Vec<Url> {
    let base = "https://cdn.example.com/assets/a/v1/hls/";
    let mut out: Vec<String> = if flat {
        vec![
            format!("{base}m_{name}.m3u8"),
            format!("{base}m_{name}_00001.ts"),
            format!("{base}m_{name}_00002.ts"),
        ]
    } else {
        vec![
            format!("{base}{name}/index.m3u8"),
            format!("{base}{name}/init.mp4"),
            format!("{base}{name}/seg_1.m4s"),
        ]
    };
    if key {
        out.push(format!("{base}keys/k.bin"));
    }
    out.iter().map(|u| Url::parse(u).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(4000)))]

    /// The security property of scopes: whatever the layout (flat names
    /// that are prefixes of each other, such as `m_a` and `m_aa`, or
    /// `m_720p` and `m_720p60`), each allowed URI is covered by one of its
    /// rendition's scopes and no scope — for URL or cookie delivery —
    /// covers a URI that only a forbidden rendition uses, or a forbidden
    /// rendition's playlist. Plain names never need a refusal.
    #[test]
    fn scopes_cover_what_is_allowed_and_nothing_forbidden(rs in prop::collection::vec(layout_rendition(), 1..7)) {
        let mut seen = std::collections::HashSet::new();
        let rs: Vec<_> = rs.into_iter().filter(|r| seen.insert((r.0.clone(), r.1))).collect();
        let allowed: Vec<Vec<Url>> = rs.iter().filter(|r| r.3).map(|r| uris_of(&r.0, r.1, r.2)).collect();
        let forbidden: Vec<Url> = rs.iter().filter(|r| !r.3).flat_map(|r| uris_of(&r.0, r.1, r.2)).collect();
        let playlists: Vec<Url> = rs.iter().filter(|r| !r.3).map(|r| uris_of(&r.0, r.1, r.2).remove(0)).collect();
        let allowed_set: std::collections::HashSet<&str> = allowed.iter().flatten().map(Url::as_str).collect();
        let secret: Vec<&str> = forbidden.iter().map(Url::as_str).filter(|u| !allowed_set.contains(u)).collect();
        let s = scopes(&allowed, &forbidden, &playlists);
        prop_assert!(!matches!(s, Err(ScopeError::Overlap(_))), "refused without cause: {:?}", s);
        let s = s.unwrap();
        prop_assert_eq!(s.of_rendition.len(), allowed.len());
        for (i, uris) in allowed.iter().enumerate() {
            for u in uris {
                prop_assert!(s.covering(i, u).is_some(), "nothing covers {}", u);
            }
        }
        for scope in s.scopes.iter().chain(s.cookies.iter().flatten()) {
            for u in secret.iter().copied().chain(playlists.iter().map(Url::as_str)) {
                prop_assert!(!resource_matches(&scope.pattern(), u), "{} covers forbidden {}", scope.pattern(), u);
            }
        }
        if let Some(dirs) = &s.cookies {
            prop_assert!(s.path_separable);
            for a in dirs {
                prop_assert!(a.directory && a.prefix.ends_with('/'));
                for b in dirs {
                    prop_assert!(a == b || !a.prefix.starts_with(&b.prefix), "{} inside {}", a.prefix, b.prefix);
                }
            }
        }
    }
}

/// A well-formed MPD with hostile values: odd attribute values, missing
/// attributes, nested BaseURLs, trick-mode references, comments.
fn mpd_tree() -> impl Strategy<Value = String> {
    let value = prop::sample::select(vec![
        "",
        "0",
        "360",
        "2160",
        "99999999999999999999",
        "-1",
        "30000/1001",
        "1/0",
        "abc",
        "a&amp;b",
        "avc1.64001f",
        "hvc1,mp4a.40.2",
        "ec-3",
        "video",
        "audio",
        "image",
        "text",
        "video/mp4",
        "16",
        "18",
    ]);
    let attr = (
        prop::sample::select(vec![
            "id",
            "height",
            "width",
            "bandwidth",
            "codecs",
            "frameRate",
            "contentType",
            "mimeType",
            "maxHeight",
            "maxBandwidth",
            "maxFrameRate",
            "media",
            "initialization",
            "value",
        ]),
        value,
    )
        .prop_map(|(k, v)| format!(" {k}=\"{v}\""));
    let attrs = prop::collection::vec(attr, 0..5).prop_map(|v| v.concat());
    let child = (
        prop::sample::select(vec![
            "Representation",
            "SegmentTemplate",
            "BaseURL",
            "EssentialProperty",
            "SupplementalProperty",
            "SegmentList",
            "X-Unknown",
        ]),
        attrs.clone(),
        prop::sample::select(vec![
            "",
            "a/",
            "../b/",
            "https://x.example.com/",
            "<!-- c -->",
            "<SegmentURL media=\"s.m4s?x=1\"/>",
        ]),
    )
        .prop_map(|(n, a, inner)| format!("<{n}{a}>{inner}</{n}>"));
    let set = (attrs.clone(), prop::collection::vec(child, 0..5))
        .prop_map(|(a, c)| format!("<AdaptationSet{a}>{}</AdaptationSet>", c.concat()));
    let period =
        prop::collection::vec(set, 0..4).prop_map(|s| format!("<Period>{}</Period>", s.concat()));
    (any::<bool>(), prop::collection::vec(period, 0..3)).prop_map(|(base, p)| {
        format!(
            "<MPD>{}{}</MPD>",
            if base { "<BaseURL>m/</BaseURL>" } else { "" },
            p.concat()
        )
    })
}

/// Hostile input: soup made of the tokens the parsers look for.
fn soup(tokens: Vec<&'static str>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(3000)))]

    /// Whatever the bytes, the manifest engine answers with a value or an
    /// error, never a panic.
    #[test]
    fn hostile_playlists_and_mpds_never_panic(
        m3u8 in soup(vec!["#EXTM3U\n", "#EXT-X-STREAM-INF:", "#EXT-X-MEDIA:", "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-DEFINE:", "#EXT-X-MAP:", "#EXT-X-KEY:", "URI=", "\"", ",", "=", "{$", "}", "v", "\n", "\r\n", "BANDWIDTH=1", "RESOLUTION=1x", "GROUP-ID=\"a\"", "AUDIO=\"a\"", "TYPE=AUDIO", "NAME=\"v\"", "VALUE=\"//x\"", "../", "//", "?", "#", "\u{feff}", "é"]),
        mpd in mpd_tree(),
        rules in rules(),
    ) {
        // Past the header checks, where the work is.
        let m3u8 = format!("#EXTM3U\n{m3u8}");
        let base = Url::parse("https://cdn.example.com/assets/a/v1/hls/master.m3u8").unwrap();
        if let Ok(f) = filter(m3u8.as_bytes(), &rules, Some(&base)) {
            let _ = rewrite(&f.playlist, &base, |_, _| None);
        }
        let _ = playgate::engine::hls::media::sign_at(m3u8.as_bytes(), "P=1", Some(&base));
        let _ = playgate::engine::hls::scope::media_uris(&base, m3u8.as_bytes());
        let opts = playgate::engine::dash::mpd::MpdOptions { url: Some(&base), signed_query: Some("P=1&S=2") };
        let _ = playgate::engine::dash::mpd::filter(mpd.as_bytes(), &rules, &opts);
    }
}
