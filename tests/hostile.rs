//! Hostile input, property-tested: the policy decoder and verifier, the
//! cookie parser, the local edge's path handling and the MPD filter never
//! panic, and never let through what they must refuse. The master filter
//! and the media signer have theirs in `tests/hls_master.rs` and
//! `tests/hls_media.rs`. Cases per property: `PLAYGATE_FUZZ_CASES`
//! (default 2,000 here; `scripts/fuzz.sh` runs 100,000 in release mode).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::backends::storage::ObjectKey;
use playgate::engine::cloudfront::cookies::CloudFrontCookies;
use playgate::engine::cloudfront::keys::{PublicKeys, VerifyKey};
use playgate::engine::cloudfront::policy::Policy;
use playgate::engine::cloudfront::verifier::{
    Credentials, split_signed_url, verify, verify_request,
};
use playgate::engine::dash::mpd::{self, MpdOptions};
use playgate::engine::tiers::TierRules;
use proptest::prelude::*;

#[path = "common/fuzz.rs"]
mod fuzz;
use fuzz::cases;
use std::path::{Component, Path};

fn ring() -> PublicKeys {
    let (_, public) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    let id = playgate::domain::KeyPairId::parse("KFUZZ").unwrap();
    PublicKeys::new(vec![VerifyKey::from_pem(id, &public, "fuzz").unwrap()]).unwrap()
}

/// Strings made of the pieces path attacks are built from.
fn path_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("assets".to_owned()),
        Just("a".to_owned()),
        Just("v1".to_owned()),
        Just("hls".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%5c".to_owned()),
        Just("\\".to_owned()),
        Just("%00".to_owned()),
        Just("%c0%ae".to_owned()),
        Just("%c0%af".to_owned()),
        Just("%e0%80%ae".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("playgate.db".to_owned()),
        "[ -~]{0,6}",
        "\\PC{0,3}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// An MPD with representations of the given heights (0 = audio), with a
/// little noise the parser has to cope with.
fn mpd(heights: &[u32], noise: &str) -> String {
    let mut reps = String::new();
    for (i, h) in heights.iter().enumerate() {
        if *h == 0 {
            continue;
        }
        reps.push_str(&format!(
            r#"<Representation id="v{i}" bandwidth="{}" width="{}" height="{h}" codecs="avc1.64001f" frameRate="30"><SegmentTemplate media="v{i}/seg_$Number$.m4s" initialization="v{i}/init.mp4" startNumber="1" duration="2" /></Representation>"#,
            100_000 + h * 1000,
            h * 16 / 9
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011" {noise}>
<Period id="0"><AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true">{reps}</AdaptationSet>
<AdaptationSet id="1" contentType="audio" mimeType="audio/mp4"><Representation id="a" bandwidth="96000" codecs="mp4a.40.2" audioSamplingRate="48000"><SegmentTemplate media="a/seg_$Number$.m4s" initialization="a/init.mp4" startNumber="1" duration="2" /></Representation></AdaptationSet>
</Period></MPD>"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    /// Any bytes as a policy: an error or a policy, never a panic.
    #[test]
    fn the_policy_decoder_takes_anything(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                         text in "\\PC{0,200}") {
        let _ = Policy::from_json(&bytes);
        let _ = Policy::from_json(text.as_bytes());
        let json = format!(r#"{{"Statement":[{{"Resource":"{text}","Condition":{{"DateLessThan":{{"AWS:EpochTime":1}}}}}}]}}"#);
        let _ = Policy::from_json(json.as_bytes());
    }

    /// Forged credentials of any shape are refused, never accepted and
    /// never a panic, whether they come in the URL or as cookies.
    #[test]
    fn forged_credentials_are_refused(policy in "[A-Za-z0-9~_=-]{0,300}",
                                      signature in "[A-Za-z0-9~_=-]{0,400}",
                                      expires in "\\PC{0,12}",
                                      url in "https://cdn\\.example\\.com/assets/[ -~]{0,80}") {
        let ring = ring_once();
        for creds in [
            Credentials { policy: Some(policy.clone()), signature: Some(signature.clone()), key_pair_id: Some("KFUZZ".into()), expires: None, hash_algorithm: None },
            Credentials { policy: None, signature: Some(signature.clone()), key_pair_id: Some("KFUZZ".into()), expires: Some(expires.clone()), hash_algorithm: Some("SHA256".into()) },
        ] {
            prop_assert!(verify(ring, &url, &creds, None, 1).is_err());
        }
        let signed = format!("{url}?Policy={policy}&Signature={signature}&Key-Pair-Id=KFUZZ");
        let _ = split_signed_url(&signed);
        prop_assert!(verify_request(ring, &signed, None, None, 1).is_err());
    }

    /// The cookie parser reads only CloudFront's five names, whatever the
    /// header holds.
    #[test]
    fn the_cookie_parser_reads_only_cloudfront_names(header in "\\PC{0,300}",
                                                    value in "[A-Za-z0-9~_=-]{1,40}") {
        let c = CloudFrontCookies::parse([header.as_str()]);
        if let Some(sig) = &c.signature {
            prop_assert!(header.contains("CloudFront-Signature"), "{sig}");
        }
        let with = format!("{header}; CloudFront-Signature={value}");
        let c = CloudFrontCookies::parse([with.as_str()]);
        prop_assert!(c.signature.is_some());
        let renamed = format!("X-CloudFront-Signature={value}; cloudfront-signature={value}");
        prop_assert!(CloudFrontCookies::parse([renamed.as_str()]).signature.is_none());
    }

    /// The edge decodes a request path as the server does and accepts a
    /// key only when it stays inside the store's root: no dot segments,
    /// backslashes, NULs or absolute paths, however they are encoded.
    #[test]
    fn edge_paths_never_leave_the_root(raw in path_like()) {
        let decoded = percent_encoding::percent_decode_str(raw.trim_start_matches('/')).decode_utf8();
        if let Ok(decoded) = decoded
            && let Ok(key) = ObjectKey::parse(&decoded)
        {
            let k = key.as_str();
            prop_assert!(!k.contains('\\') && !k.contains('\0') && !k.starts_with('/'), "{k:?}");
            for c in Path::new("/srv/root").join(k).strip_prefix("/srv/root").unwrap().components() {
                prop_assert!(matches!(c, Component::Normal(_)), "{k:?} has {c:?}");
            }
            prop_assert!(k.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{k:?}");
        }
    }

    /// The MPD filter keeps no representation above the tier's height, in
    /// the output or in the rendition list, and copes with noise.
    #[test]
    fn the_mpd_filter_keeps_nothing_forbidden(heights in proptest::collection::vec(prop_oneof![Just(0u32), 144u32..2200], 1..7),
                                              max in 100u32..2200,
                                              noise in "[a-z]{0,6}(=\"[ -!#-~]{0,10}\")?") {
        let noise = if noise.contains('=') { noise } else { String::new() };
        let text = mpd(&heights, &noise);
        let rules = TierRules { max_height: Some(max), ..TierRules::default() };
        let url = url::Url::parse("https://cdn.example.com/assets/a/v1/dash/manifest.mpd").unwrap();
        let opts = MpdOptions { url: Some(&url), signed_query: None };
        match mpd::filter(text.as_bytes(), &rules, &opts) {
            Ok(f) => {
                for (i, h) in heights.iter().enumerate() {
                    if *h > max {
                        let id = format!("id=\"v{i}\"");
                        prop_assert!(!f.mpd.contains(&id), "v{i} ({h}p) kept for max {max}:\n{}", f.mpd);
                        let seg = format!("v{i}/seg_");
                        prop_assert!(!f.mpd.contains(&seg));
                        let rid = format!("v{i}");
                        prop_assert!(f.renditions.iter().all(|r| r.id != rid || !r.kept), "{rid}");
                    }
                }
            }
            Err(_) => {
                // Refusing is fine (nothing playable); leaking is not.
            }
        }
    }

    /// Damaged MPDs (any byte changed, cut anywhere): an error or a
    /// filtered MPD, never a panic.
    #[test]
    fn damaged_mpds_never_panic(at in 0usize..4000, byte in any::<u8>(), cut in 0usize..4000) {
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dash/multi_set.mpd")).unwrap();
        let mut damaged = fixture.clone();
        let i = at % damaged.len();
        damaged[i] = byte;
        damaged.truncate(cut % fixture.len() + 1);
        let rules = TierRules { max_height: Some(480), ..TierRules::default() };
        let _ = mpd::filter(&damaged, &rules, &MpdOptions { url: None, signed_query: None });
    }
}

/// One key ring for every case (RSA key generation is slow).
fn ring_once() -> &'static PublicKeys {
    static RING: std::sync::OnceLock<PublicKeys> = std::sync::OnceLock::new();
    RING.get_or_init(ring)
}

/// The generator above makes MPDs the filter accepts, so the property is
/// not passing on errors alone.
#[test]
fn the_generated_mpds_are_filtered_not_refused() {
    let url = url::Url::parse("https://cdn.example.com/assets/a/v1/dash/manifest.mpd").unwrap();
    let rules = TierRules {
        max_height: Some(480),
        ..TierRules::default()
    };
    let f = mpd::filter(
        mpd(&[360, 720, 0, 1080], "").as_bytes(),
        &rules,
        &MpdOptions {
            url: Some(&url),
            signed_query: None,
        },
    )
    .unwrap();
    let kept: Vec<(&str, bool)> = f
        .renditions
        .iter()
        .map(|r| (r.id.as_str(), r.kept))
        .collect();
    assert_eq!(
        kept,
        [("v0", true), ("v1", false), ("v3", false), ("a", true)]
    );
    assert!(f.mpd.contains("v0/seg_") && !f.mpd.contains("v1/seg_"));
}
