//! Media playlist signing properties over generated playlists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::engine::hls::media::{sign, sign_at};
use proptest::prelude::*;

#[path = "common/fuzz.rs"]
mod fuzz;
use fuzz::cases;

const Q: &str = "Policy=eyJQ&Signature=c2ln~_-&Key-Pair-Id=KTEST";

#[derive(Debug, Clone)]
enum Item {
    Segment(String, bool),
    Map(String),
    Key(String),
    Byterange,
    Comment(String),
    Unknown(String),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        ("[a-z0-9_/.-]{1,20}", any::<bool>()).prop_map(|(u, q)| Item::Segment(u, q)),
        "[a-z0-9_]{1,10}\\.mp4".prop_map(Item::Map),
        prop_oneof![
            Just("skd://k1".to_owned()),
            Just("key.bin".to_owned()),
            Just("data:;base64,AA".to_owned())
        ]
        .prop_map(Item::Key),
        Just(Item::Byterange),
        "[ a-zA-Z0-9,]{0,20}".prop_map(Item::Comment),
        "[A-Z-]{1,12}:[A-Z0-9=,]{0,12}".prop_map(Item::Unknown),
    ]
}

fn render(items: &[Item], crlf: bool) -> String {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut s = format!("#EXTM3U{nl}#EXT-X-VERSION:7{nl}#EXT-X-TARGETDURATION:6{nl}");
    for it in items {
        match it {
            Item::Segment(u, q) => {
                s.push_str(&format!(
                    "#EXTINF:6.006,{nl}{u}{}{nl}",
                    if *q { "?v=1" } else { "" }
                ));
            }
            Item::Map(u) => s.push_str(&format!("#EXT-X-MAP:URI=\"{u}\"{nl}")),
            Item::Key(u) => s.push_str(&format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{u}\"{nl}")),
            Item::Byterange => s.push_str(&format!("#EXT-X-BYTERANGE:100@0{nl}")),
            Item::Comment(c) => s.push_str(&format!("# {c}{nl}")),
            Item::Unknown(t) => s.push_str(&format!("#X-{t}{nl}")),
        }
    }
    s.push_str("#EXT-X-ENDLIST");
    s.push_str(nl);
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn every_http_uri_is_signed_exactly_once_and_nothing_else_changes(items in prop::collection::vec(item(), 0..40), crlf in any::<bool>()) {
        let input = render(&items, crlf);
        let out = sign(input.as_bytes(), Q).unwrap();
        let in_lines: Vec<&str> = input.split('\n').collect();
        let out_lines: Vec<&str> = out.split('\n').collect();
        prop_assert_eq!(in_lines.len(), out_lines.len());
        for (a, b) in in_lines.iter().zip(&out_lines) {
            let signed_here = b.matches(Q).count();
            let is_uri_line = !a.starts_with('#') && !a.trim().is_empty();
            let has_signable_attr = (a.starts_with("#EXT-X-MAP:") || a.starts_with("#EXT-X-KEY:"))
                && !a.contains("skd://") && !a.contains("data:");
            if is_uri_line || has_signable_attr {
                prop_assert_eq!(signed_here, 1, "{} -> {}", a, b);
                prop_assert_eq!(b.replacen(&format!("?{Q}"), "", 1).replacen(&format!("&{Q}"), "", 1), a.to_string());
            } else {
                prop_assert_eq!(a, b, "untouched line changed");
            }
        }
        // The oracle: m3u8-rs reads the output, and every segment and map
        // URI it sees carries the signature exactly once.
        let parsed = m3u8_rs::parse_media_playlist_res(out.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("m3u8-rs: {e:?}")))?;
        let segments = items.iter().filter(|i| matches!(i, Item::Segment(..))).count();
        prop_assert_eq!(parsed.segments.len(), segments);
        for seg in &parsed.segments {
            prop_assert_eq!(seg.uri.matches(Q).count(), 1, "{}", seg.uri);
            if let Some(map) = &seg.map {
                prop_assert_eq!(map.uri.matches(Q).count(), 1, "{}", map.uri);
            }
        }
    }

    #[test]
    fn with_a_base_every_same_origin_uri_is_absolute_and_signed_once(items in prop::collection::vec(item(), 0..40)) {
        let base = url::Url::parse("https://cdn.example.com/assets/a/v1/hls/720p/index.m3u8").unwrap();
        let input = render(&items, false);
        let out = sign_at(input.as_bytes(), Q, Some(&base)).unwrap();
        let parsed = m3u8_rs::parse_media_playlist_res(out.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("m3u8-rs: {e:?}")))?;
        let inputs: Vec<String> = items.iter().filter_map(|i| match i {
            Item::Segment(u, q) => Some(format!("{u}{}", if *q { "?v=1" } else { "" })),
            _ => None,
        }).collect();
        prop_assert_eq!(parsed.segments.len(), inputs.len());
        for (seg, written) in parsed.segments.iter().zip(&inputs) {
            match base.join(written) {
                // Ours: absolute as a player would resolve it, signed once.
                Ok(u) if u.origin() == base.origin() => {
                    prop_assert_eq!(seg.uri.matches(Q).count(), 1, "{}", seg.uri);
                    let unsigned = seg.uri.replacen(&format!("?{Q}"), "", 1).replacen(&format!("&{Q}"), "", 1);
                    prop_assert_eq!(unsigned, u.to_string());
                }
                // Another host (`//x/seg`): as written, no signature.
                _ => prop_assert_eq!(&seg.uri, written),
            }
        }
    }
}
