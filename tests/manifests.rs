//! Every manifest fixture through the manifest engine for every tier of
//! `config/local.toml`, as insta snapshots (`tests/snapshots/`): masters
//! filtered and rewritten for cookie delivery and for URL delivery (real
//! RSA signatures with the conformance test key, fixed expiry), media
//! playlists signed, MPDs filtered. Review a change with `cargo insta
//! review` or by reading the `.snap.new` files; CI fails on any difference.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::domain::KeyPairId;
use playgate::engine::authorise::{Authorised, Layout, PlaybackError, authorise_master};
use playgate::engine::cloudfront::HashAlg;
use playgate::engine::cloudfront::keys::SigningKey;
use playgate::engine::cloudfront::signer::{SignOptions, Signature};
use playgate::engine::dash::mpd::{self, MpdOptions};
use playgate::engine::hls::master::{MasterUri, filter, rewrite};
use playgate::engine::hls::{media, scope};
use playgate::engine::tiers::{Delivery, TierRules};
use std::path::Path;
use url::Url;

const CDN: &str = "https://cdn.example.com";
const GATEWAY: &str = "https://play.example.com";

const MASTERS: &[&str] = &[
    "ffmpeg_var_stream_map",
    "mediaconvert_flat",
    "mediaconvert_per_stream",
    "apple_advanced",
];
const MEDIA: &[&str] = &[
    "ffmpeg_fmp4_media",
    "ffmpeg_ts_media",
    "mediaconvert_flat_360p",
    "llhls_media",
    "byterange_media",
];
const MPDS: &[&str] = &["ffmpeg_live_profile", "multi_set"];

fn fixture(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(Path::new("tests/fixtures").join(dir).join(name)).unwrap()
}

/// The tiers exactly as `config/local.toml` defines them.
fn tiers() -> Vec<(String, TierRules)> {
    let text = std::fs::read_to_string("config/local.toml").unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let tiers = doc["tiers"].as_table().unwrap();
    tiers
        .iter()
        .map(|(name, t)| {
            let rules = playgate::config::read_tier_rules(t.as_table().unwrap().clone()).unwrap();
            (name.clone(), rules)
        })
        .collect()
}

fn master_url(name: &str) -> Url {
    let asset = name.replace('_', "-");
    let query = if name == "apple_advanced" {
        "?session=s42"
    } else {
        ""
    };
    Url::parse(&format!("{CDN}/assets/{asset}/v1/hls/master.m3u8{query}")).unwrap()
}

fn list(uris: &[MasterUri]) -> String {
    uris.iter()
        .map(|u| {
            format!(
                "{:?} {}",
                u.kind,
                u.url.as_ref().map_or("(unresolved)", Url::as_str)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The URIs a rendition uses: a plausible media playlist per rendition,
/// made from the MediaConvert flat fixture for the flat master (renamed
/// per rendition), otherwise from the rendition's own directory.
fn media_uris(master: &str, url: &Url) -> Result<Vec<Url>, PlaybackError> {
    let file = url.path().rsplit('/').next().unwrap_or("");
    let text = if master == "mediaconvert_flat" {
        let stem = file.trim_end_matches(".m3u8");
        String::from_utf8(fixture("hls", "mediaconvert_flat_360p.m3u8"))
            .unwrap()
            .replace("master_360p", stem)
    } else {
        "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6,\nseg_1.m4s\n#EXT-X-ENDLIST\n".to_owned()
    };
    Ok(scope::media_uris(url, text.as_bytes())?)
}

fn test_key() -> SigningKey {
    SigningKey::from_file(
        KeyPairId::parse("KTESTKEYPAIRID").unwrap(),
        Path::new("tests/fixtures/cloudfront/test_rsa_key.pem"),
    )
    .unwrap()
}

fn sign_scope(
    key: &SigningKey,
    s: &scope::Scope,
) -> Result<Signature, playgate::engine::cloudfront::signer::SignError> {
    Signature::for_resource(
        key,
        &s.pattern(),
        &SignOptions {
            expires: 2_000_000_000,
            hash: HashAlg::Sha1,
            ..Default::default()
        },
    )
}

#[test]
fn masters_for_every_tier_with_cookie_delivery() {
    for name in MASTERS {
        let input = fixture("hls", &format!("{name}.m3u8"));
        let url = master_url(name);
        for (tier, rules) in tiers() {
            let out = match filter(&input, &rules, Some(&url)) {
                Ok(f) => format!(
                    "{}\n--- kept\n{}\n--- removed\n{}\n",
                    rewrite(&f.playlist, &url, |_, _| None).unwrap(),
                    list(&f.kept),
                    list(&f.removed)
                ),
                Err(e) => format!("error: {e}\n"),
            };
            insta::assert_snapshot!(format!("master_cookies__{name}__{tier}"), out);
        }
    }
}

/// The master a tier's viewer gets with `delivery`, as `authorise_master`
/// composes it (real signatures with the test key).
fn authorise(name: &str, rules: &TierRules, delivery: Delivery) -> Result<Authorised, String> {
    let key = test_key();
    let layout = Layout {
        cdn_base: CDN,
        gateway: GATEWAY,
    };
    let input = fixture("hls", &format!("{name}.m3u8"));
    let url = master_url(name);
    let f = filter(&input, rules, Some(&url)).map_err(|e| e.to_string())?;
    authorise_master(
        &f,
        &url,
        delivery,
        &layout,
        |u| media_uris(name, u),
        |s| sign_scope(&key, s),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn masters_for_every_tier_with_url_delivery() {
    for name in MASTERS {
        for (tier, rules) in tiers() {
            let text = match authorise(name, &rules, Delivery::Urls) {
                Ok(a) => {
                    let scopes: Vec<String> = a.grants.iter().map(|g| g.scope.pattern()).collect();
                    format!("{}\n--- scopes\n{}\n", a.playlist, scopes.join("\n"))
                }
                Err(e) => format!("error: {e}\n"),
            };
            insta::assert_snapshot!(format!("master_urls__{name}__{tier}"), text);
        }
    }
}

#[test]
fn cookie_delivery_scopes_for_every_tier() {
    for name in MASTERS {
        let mut text = String::new();
        for (tier, rules) in tiers() {
            text.push_str(&format!("[{tier}]\n"));
            match authorise(name, &rules, Delivery::Cookies) {
                Ok(a) => {
                    for g in &a.grants {
                        text.push_str(&format!(
                            "{} Path={}\n",
                            g.scope.pattern(),
                            g.scope.cookie_path().unwrap_or("-")
                        ));
                    }
                }
                Err(e) => text.push_str(&format!("error: {e}\n")),
            }
        }
        insta::assert_snapshot!(format!("cookie_scopes__{name}"), text);
    }
}

#[test]
fn media_playlists_signed() {
    let query = "Policy=eyJTdGF0ZW1lbnQiOltdfQ__&Signature=c2lnbmF0dXJl&Key-Pair-Id=KTESTKEYPAIRID";
    for name in MEDIA {
        let input = fixture("hls", &format!("{name}.m3u8"));
        let url = Url::parse(&format!("{CDN}/assets/a/v1/hls/720p/index.m3u8")).unwrap();
        let out = media::sign_at(&input, query, Some(&url)).unwrap();
        insta::assert_snapshot!(format!("media_signed__{name}"), out);
    }
}

#[test]
fn mpds_for_every_tier() {
    for name in MPDS {
        let input = fixture("dash", &format!("{name}.mpd"));
        let url = Url::parse(&format!("{CDN}/assets/a/v1/dash/manifest.mpd")).unwrap();
        for (tier, rules) in tiers() {
            for (delivery, query) in [
                ("cookies", None),
                ("urls", Some("Policy=P&Signature=S&Key-Pair-Id=K")),
            ] {
                let opts = MpdOptions {
                    url: Some(&url),
                    signed_query: query,
                };
                let out = match mpd::filter(&input, &rules, &opts) {
                    Ok(f) => {
                        let kept: Vec<String> = f
                            .renditions
                            .iter()
                            .map(|r| format!("{} {:?} kept={}", r.id, r.kind, r.kept))
                            .collect();
                        format!("{}\n--- renditions\n{}\n", f.mpd, kept.join("\n"))
                    }
                    Err(e) => format!("error: {e}\n"),
                };
                insta::assert_snapshot!(format!("mpd_{delivery}__{name}__{tier}"), out);
            }
        }
    }
}

/// Manifests from other packagers (`tests/fixtures/README.md`, "from the
/// wild"): what each tier gets, cookie scopes and URL-delivery scopes, and
/// MPDs per tier. The two minimal cases must play with cookies for a tier
/// without limits: one cookie on the master's directory.
#[test]
fn manifests_from_the_wild() {
    let mut tiers = tiers();
    tiers.push(("unlimited".into(), TierRules::default()));
    tiers.push((
        "dolby".into(),
        TierRules {
            codecs: Some(vec!["avc1".into(), "mp4a".into(), "ec-3".into()]),
            ..TierRules::default()
        },
    ));
    for name in [
        "kept_in_master_dir",
        "unreferenced_group",
        "dolby_avc3_hev1",
    ] {
        let input = fixture("hls", &format!("{name}.m3u8"));
        let url = Url::parse(&format!("{CDN}/assets/wild/v1/hls/master.m3u8")).unwrap();
        let key = test_key();
        let layout = Layout {
            cdn_base: CDN,
            gateway: GATEWAY,
        };
        let mut text = String::new();
        for (tier, rules) in &tiers {
            text.push_str(&format!("[{tier}]\n"));
            let f = match filter(&input, rules, Some(&url)) {
                Ok(f) => f,
                Err(e) => {
                    text.push_str(&format!("error: {e}\n"));
                    continue;
                }
            };
            text.push_str(&format!(
                "kept:\n{}\nremoved:\n{}\n",
                list(&f.kept),
                list(&f.removed)
            ));
            for delivery in [Delivery::Cookies, Delivery::Urls] {
                let a = authorise_master(
                    &f,
                    &url,
                    delivery,
                    &layout,
                    |u| media_uris(name, u),
                    |s| sign_scope(&key, s),
                );
                match a {
                    Ok(a) => {
                        for g in &a.grants {
                            text.push_str(&format!(
                                "{delivery:?}: {} Path={}\n",
                                g.scope.pattern(),
                                g.scope.cookie_path().unwrap_or("-")
                            ));
                        }
                    }
                    Err(e) => text.push_str(&format!("{delivery:?}: error: {e}\n")),
                }
            }
        }
        if name != "dolby_avc3_hev1" {
            assert!(
                text.contains("[unlimited]\nkept:")
                    && text.contains("Cookies: https://cdn.example.com/assets/wild/v1/hls/* Path=/assets/wild/v1/hls/"),
                "{name}: one cookie on the master's directory:\n{text}"
            );
        }
        insta::assert_snapshot!(format!("wild__{name}"), text);
    }
    for name in ["multi_period_ad", "audio_only"] {
        let input = fixture("dash", &format!("{name}.mpd"));
        let url = Url::parse(&format!("{CDN}/assets/wild/v1/dash/manifest.mpd")).unwrap();
        let mut text = String::new();
        for (tier, rules) in &tiers {
            let opts = MpdOptions {
                url: Some(&url),
                signed_query: None,
            };
            text.push_str(&format!("[{tier}]\n"));
            match mpd::filter(&input, rules, &opts) {
                Ok(f) => {
                    let kept: Vec<String> = f
                        .renditions
                        .iter()
                        .map(|r| format!("{} {:?} kept={}", r.id, r.kind, r.kept))
                        .collect();
                    text.push_str(&format!("{}\n--- renditions\n{}\n", f.mpd, kept.join("\n")));
                }
                Err(e) => text.push_str(&format!("error: {e}\n")),
            }
        }
        insta::assert_snapshot!(format!("wild__{name}"), text);
    }
}
