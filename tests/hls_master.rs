//! Master filtering properties over generated masters and tiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::hls::master::{MasterError, filter};
use playgate::tiers::{Rendition, TierRules};
use proptest::prelude::*;

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
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

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
                let again = filter(f.playlist.as_bytes(), &r, None).unwrap();
                prop_assert_eq!(again.playlist, f.playlist);
            }
        }
    }
}
