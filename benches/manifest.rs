//! Manifest engine benches, each next to a reference measured in the same
//! run (`scripts/bench-manifest.sh` prints the ratios):
//! - media playlist signing, 1,200 segments (a two-hour VOD at 6 s) with the
//!   full signed query on every URI, as given and made absolute against the
//!   CDN URL (what URL delivery serves). Target (DESIGN.md): ≤ 150 µs.
//! - m3u8-rs parsing and serialising the same playlist (the reference: what
//!   a parser-based rewrite would cost before doing any work).
//! - the Apple-style advanced master filtered for the free tier and
//!   rewritten to absolute CDN URLs.
//! - URL delivery's media playlist as the gateway serves it now: checked
//!   against the viewer's pattern as it is signed (one pattern covers
//!   the rendition: one pass), and, for a rendition whose name is a prefix
//!   of a forbidden one (`title_360p` beside `title_360p_hi`), the second
//!   pass that puts another signature on the URIs the viewer's does not
//!   cover; both next to plain absolute signing.
//! - the rendition plan of such a layout (three renditions of 1,200
//!   segments, names prefixes of each other), built once per version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use playgate::engine::tiers::TierRules;
use std::hint::black_box;

fn playlist(segments: usize) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    for i in 0..segments {
        s.push_str(&format!("#EXTINF:6.006,\nseg_{i:05}.m4s\n"));
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

fn bench(c: &mut Criterion) {
    let p = playlist(1200);
    // A realistic custom-policy query: ~180 B policy, 344 B RSA signature.
    let query = format!(
        "Policy={}&Signature={}&Key-Pair-Id=K2JCJMDEHXQW5F",
        "e".repeat(240),
        "s".repeat(344)
    );
    let base = url::Url::parse("https://cdn.example.com/assets/a1/v3/hls/720p/index.m3u8").unwrap();
    c.bench_function("media_sign_1200_segments", |b| {
        b.iter(|| playgate::engine::hls::media::sign(black_box(p.as_bytes()), black_box(&query)))
    });
    c.bench_function("media_sign_1200_segments_absolute", |b| {
        b.iter(|| {
            playgate::engine::hls::media::sign_at(
                black_box(p.as_bytes()),
                black_box(&query),
                Some(&base),
            )
        })
    });
    // The viewer's pattern covers every URI: one pass with the check.
    let pattern = "https://cdn.example.com/assets/a1/v3/hls/720p/*";
    c.bench_function("media_sign_1200_segments_checked", |b| {
        b.iter(|| {
            let covered = playgate::engine::cloudfront::policy::matcher(pattern);
            let mut missed = 0;
            let out = playgate::engine::hls::media::sign_each(
                black_box(p.as_bytes()),
                Some(&base),
                query.len(),
                |abs, _| {
                    // As `Play::signed_media` checks.
                    if !covered(abs) && !covered(&abs[..abs.find(['?', '#']).unwrap_or(abs.len())])
                    {
                        missed += 1;
                    }
                    Some(query.as_str())
                },
            );
            assert_eq!(missed, 0);
            out
        })
    });
    // The playlist is granted exactly and the segments by another pattern:
    // the second pass, every segment's signature from a map.
    let other = format!(
        "Policy={}&Signature={}&Key-Pair-Id=K2JCJMDEHXQW5F",
        "o".repeat(240),
        "t".repeat(344)
    );
    let split: std::collections::HashMap<String, String> = (0..1200)
        .map(|i| {
            (
                format!("https://cdn.example.com/assets/a1/v3/hls/720p/seg_{i:05}.m4s"),
                other.clone(),
            )
        })
        .collect();
    c.bench_function("media_sign_1200_segments_split", |b| {
        b.iter(|| {
            playgate::engine::hls::media::sign_each(
                black_box(p.as_bytes()),
                Some(&base),
                query.len(),
                |abs, _| {
                    let k = &abs[..abs.find('?').unwrap_or(abs.len())];
                    Some(split.get(k).map_or(query.as_str(), String::as_str))
                },
            )
        })
    });
    let flat = |name: &str| {
        let base = "https://cdn.example.com/assets/a1/v3/hls/";
        let mut v = vec![url::Url::parse(&format!("{base}{name}.m3u8")).unwrap()];
        v.extend((0..1200).map(|i| url::Url::parse(&format!("{base}{name}_{i:05}.ts")).unwrap()));
        (v[0].clone(), v)
    };
    let renditions = vec![
        flat("title_240p"),
        flat("title_360p"),
        flat("title_360p_hi"),
    ];
    c.bench_function("rendition_plan_flat_prefixes_3x1200", |b| {
        b.iter(|| playgate::playback::RenditionPlan::new(black_box(&renditions)).unwrap())
    });
    c.bench_function("m3u8rs_parse_serialise_1200_segments", |b| {
        b.iter(|| {
            let parsed = m3u8_rs::parse_media_playlist_res(black_box(p.as_bytes())).unwrap();
            let mut out = Vec::with_capacity(p.len());
            parsed.write_to(&mut out).unwrap();
            out
        })
    });

    let master = std::fs::read("tests/fixtures/hls/apple_advanced.m3u8").unwrap();
    let master_url =
        url::Url::parse("https://cdn.example.com/assets/a1/v3/hls/master.m3u8").unwrap();
    let free = TierRules {
        max_height: Some(480),
        max_bandwidth: Some(1_500_000),
        codecs: Some(vec!["avc1".into(), "mp4a".into()]),
        video_range: Some(vec!["SDR".into()]),
        max_frame_rate: Some(30.0),
        ..Default::default()
    };
    c.bench_function("master_filter_rewrite_apple_advanced", |b| {
        b.iter(|| {
            let f =
                playgate::engine::hls::master::filter(black_box(&master), &free, Some(&master_url))
                    .unwrap();
            playgate::engine::hls::master::rewrite(&f.playlist, &master_url, |_, _| None).unwrap()
        })
    });
    c.bench_function("m3u8rs_parse_serialise_apple_advanced", |b| {
        b.iter(|| {
            let parsed = m3u8_rs::parse_master_playlist_res(black_box(&master)).unwrap();
            let mut out = Vec::with_capacity(master.len());
            parsed.write_to(&mut out).unwrap();
            out
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
