//! The ladder planner: which renditions to encode for a source. Pure.
//!
//! Rules (DESIGN.md, "Pipeline"): never upscale, never above the source's
//! bit rate or frame rate; portrait sources are planned on their short
//! side (a 1080×1920 phone video gets a "1080p" rung 1080 wide); a source
//! without audio gets no audio rendition; 2 s GOPs and 6 s segments by
//! default. Every rung is named by its short side (`720p`), which is also
//! its directory in the output layout.
//!
//! Key frames line up across rungs, so players switch renditions at the
//! same instants and segment boundaries match: a rung below the source's
//! frame rate runs at the source's rate divided by a whole number (a 15 fps
//! cap on 29.97 gives 14.985, i.e. 15000/1001, not 15), and every rung's
//! GOP spans the same time (60 frames at 29.97, 30 at 14.985: 2.002 s).

use serde::{Deserialize, Serialize};

/// Video codec of a rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    H265,
}

/// One configured rung: the ceiling it encodes at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungSpec {
    /// The short side in pixels (`720` for 1280×720 and for 720×1280).
    pub height: u32,
    /// Target video bit rate, bits/s.
    pub bitrate: u64,
    /// A frame-rate ceiling for this rung (the smallest rung: 15).
    #[serde(default)]
    pub max_frame_rate: Option<f64>,
    #[serde(default = "h264")]
    pub codec: Codec,
}

fn h264() -> Codec {
    Codec::H264
}

/// The configurable ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderConfig {
    pub rungs: Vec<RungSpec>,
    pub gop_seconds: f64,
    pub segment_seconds: u32,
    pub audio_bitrate: u64,
}

impl Default for LadderConfig {
    /// 270p 400k 15 fps, 360p 700k, 480p 1M, 720p 3.5M, 1080p 6M, 2160p
    /// 20M H.265; 2 s GOP, 6 s segments, AAC 160k.
    fn default() -> Self {
        let rung = |height, bitrate, fps: Option<f64>, codec| RungSpec {
            height,
            bitrate,
            max_frame_rate: fps,
            codec,
        };
        LadderConfig {
            rungs: vec![
                rung(270, 400_000, Some(15.0), Codec::H264),
                rung(360, 700_000, None, Codec::H264),
                rung(480, 1_000_000, None, Codec::H264),
                rung(720, 3_500_000, None, Codec::H264),
                rung(1080, 6_000_000, None, Codec::H264),
                rung(2160, 20_000_000, None, Codec::H265),
            ],
            gop_seconds: 2.0,
            segment_seconds: 6,
            audio_bitrate: 160_000,
        }
    }
}

/// What the probe found that planning needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Display size (rotation already applied).
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    /// Total or video bit rate, when known.
    pub bit_rate: Option<u64>,
    pub has_audio: bool,
    pub duration: f64,
}

/// One rendition to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// Directory and display name: `720p`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u64,
    pub frame_rate: f64,
    pub codec: Codec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub renditions: Vec<Rendition>,
    /// Keyframe interval in frames, per rendition (same order).
    pub gop_frames: Vec<u32>,
    pub segment_seconds: u32,
    /// AAC bit rate of the audio rendition; `None` without audio.
    pub audio_bitrate: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the source has no usable picture size ({0}×{1})")]
    NoPicture(u32, u32),
    #[error("the source has no usable frame rate")]
    NoFrameRate,
    #[error("the ladder has no rungs")]
    EmptyLadder,
}

/// `fps` as an exact fraction: NTSC rates and those derived from them
/// (`30000/1001`, `15000/1001`), otherwise to the thousandth.
pub fn fraction(fps: f64) -> (u32, u32) {
    let ntsc = (fps * 1001.0).round();
    if ntsc >= 1.0 && (ntsc / 1001.0 - fps).abs() < 1e-6 * fps.max(1.0) && ntsc % 1000.0 == 0.0 {
        return (ntsc as u32, 1001);
    }
    for (n, d) in [(24_000u32, 1001u32), (30_000, 1001), (60_000, 1001)] {
        if (fps - f64::from(n) / f64::from(d)).abs() < 0.005 {
            return (n, d);
        }
    }
    let n = (fps * 1000.0).round().clamp(1.0, 240_000.0) as u32;
    let g = gcd(n, 1000);
    (n / g, 1000 / g)
}

/// `num/den`, as ffmpeg's `fps` filter and `-r` take it.
pub fn fraction_arg(fps: f64) -> String {
    let (n, d) = fraction(fps);
    if d == 1 {
        n.to_string()
    } else {
        format!("{n}/{d}")
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// Even, at least 2 (H.264 with 4:2:0 needs even dimensions), and never
/// above `limit` (the source's own size, rounded down to even).
fn even(x: f64, limit: u32) -> u32 {
    let v = (x / 2.0).round() as u32 * 2;
    v.min(limit / 2 * 2).max(2)
}

/// Plans the renditions of `source` from `config`.
pub fn plan(source: &Source, config: &LadderConfig) -> Result<Plan, PlanError> {
    if source.width < 2 || source.height < 2 {
        return Err(PlanError::NoPicture(source.width, source.height));
    }
    if !(source.frame_rate.is_finite() && source.frame_rate > 0.0) {
        return Err(PlanError::NoFrameRate);
    }
    let mut specs = config.rungs.clone();
    specs.sort_by_key(|r| r.height);
    let lowest = specs.first().cloned().ok_or(PlanError::EmptyLadder)?;
    let portrait = source.height > source.width;
    let short = source.width.min(source.height);
    let long_per_short = f64::from(source.width.max(source.height)) / f64::from(short);
    // Never upscale; a source below the lowest rung gets one rung at its own size.
    let mut chosen: Vec<RungSpec> = specs
        .iter()
        .filter(|r| r.height <= short)
        .cloned()
        .collect();
    if chosen.is_empty() {
        chosen.push(RungSpec {
            height: short,
            ..lowest
        });
    }
    // Never above the source's bit rate: keep the rungs below it and the
    // first one that reaches it (capped), drop the rest — they would all
    // encode at the same rate, only bigger.
    if let Some(max) = source.bit_rate.filter(|b| *b > 0) {
        let mut kept = Vec::new();
        for mut r in chosen {
            if r.bitrate >= max {
                r.bitrate = max;
                kept.push(r);
                break;
            }
            kept.push(r);
        }
        chosen = kept;
    }
    // A capped rung runs at the source's rate over a whole divisor, and the
    // full-rate GOP is a multiple of every divisor, so all GOPs span the
    // same time.
    let divisor = |r: &RungSpec| match r.max_frame_rate {
        Some(cap) if cap > 0.0 && cap < source.frame_rate => {
            (source.frame_rate / cap - 1e-9).ceil().max(1.0) as u32
        }
        _ => 1,
    };
    let lcm = chosen
        .iter()
        .map(divisor)
        .fold(1u32, |a, k| a / gcd(a, k) * k);
    let full_gop =
        (((source.frame_rate * config.gop_seconds) / f64::from(lcm)).round() as u32).max(1) * lcm;
    let mut renditions = Vec::with_capacity(chosen.len());
    let mut gop_frames = Vec::with_capacity(chosen.len());
    for r in chosen {
        let short_side = even(f64::from(r.height), short);
        let long_side = even(
            f64::from(short_side) * long_per_short,
            source.width.max(source.height),
        );
        let (width, height) = if portrait {
            (short_side, long_side)
        } else {
            (long_side, short_side)
        };
        let k = divisor(&r);
        let frame_rate = source.frame_rate / f64::from(k);
        gop_frames.push(full_gop / k);
        renditions.push(Rendition {
            name: format!("{}p", r.height),
            width,
            height,
            bitrate: r.bitrate,
            frame_rate,
            codec: r.codec,
        });
    }
    Ok(Plan {
        renditions,
        gop_frames,
        segment_seconds: config.segment_seconds,
        audio_bitrate: source.has_audio.then_some(config.audio_bitrate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(width: u32, height: u32, fps: f64, bit_rate: Option<u64>) -> Source {
        Source {
            width,
            height,
            frame_rate: fps,
            bit_rate,
            has_audio: true,
            duration: 60.0,
        }
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.renditions.iter().map(|r| r.name.as_str()).collect()
    }

    fn planned(s: &Source) -> Plan {
        plan(s, &LadderConfig::default()).unwrap()
    }

    #[test]
    fn uhd_gets_every_rung_and_hevc_on_top() {
        let p = planned(&src(3840, 2160, 24.0, Some(40_000_000)));
        assert_eq!(
            names(&p),
            ["270p", "360p", "480p", "720p", "1080p", "2160p"]
        );
        let top = p.renditions.last().unwrap();
        assert_eq!(
            (top.width, top.height, top.codec),
            (3840, 2160, Codec::H265)
        );
        assert_eq!(p.renditions[0].frame_rate, 12.0, "24 / 2: at most 15");
        assert_eq!(p.renditions[1].frame_rate, 24.0);
        assert_eq!(p.gop_frames[1], 48, "2 s at 24 fps");
        assert_eq!(p.gop_frames[0], 24, "2 s at 12 fps");
        assert_eq!(p.segment_seconds, 6);
        assert_eq!(p.audio_bitrate, Some(160_000));
    }

    #[test]
    fn never_upscales() {
        assert_eq!(
            names(&planned(&src(1920, 1080, 30.0, None))),
            ["270p", "360p", "480p", "720p", "1080p"]
        );
        assert_eq!(
            names(&planned(&src(1280, 720, 30.0, None))),
            ["270p", "360p", "480p", "720p"]
        );
        assert_eq!(
            names(&planned(&src(960, 540, 30.0, None))),
            ["270p", "360p", "480p"]
        );
    }

    #[test]
    fn odd_sizes_give_even_dimensions_with_the_aspect_kept() {
        let p = planned(&src(1279, 719, 30.0, None));
        for r in &p.renditions {
            assert!(r.width % 2 == 0 && r.height % 2 == 0, "{r:?}");
        }
        let r480 = p.renditions.iter().find(|r| r.name == "480p").unwrap();
        assert_eq!((r480.width, r480.height), (854, 480));
        // Below the lowest rung: one rendition at the source's own size.
        let tiny = planned(&src(321, 181, 30.0, None));
        assert_eq!(names(&tiny), ["181p"]);
        assert_eq!(
            (tiny.renditions[0].width, tiny.renditions[0].height),
            (320, 180),
            "rounded down to even: never a pixel larger than the source"
        );
    }

    #[test]
    fn portrait_is_planned_on_its_short_side() {
        let p = planned(&src(1080, 1920, 30.0, None));
        assert_eq!(names(&p), ["270p", "360p", "480p", "720p", "1080p"]);
        let r720 = p.renditions.iter().find(|r| r.name == "720p").unwrap();
        assert_eq!((r720.width, r720.height), (720, 1280));
    }

    #[test]
    fn never_above_the_source_bit_rate() {
        let p = planned(&src(1920, 1080, 30.0, Some(2_000_000)));
        assert_eq!(names(&p), ["270p", "360p", "480p", "720p"]);
        assert_eq!(p.renditions.last().unwrap().bitrate, 2_000_000);
        assert!(p.renditions.iter().all(|r| r.bitrate <= 2_000_000));
        let low = planned(&src(1920, 1080, 30.0, Some(250_000)));
        assert_eq!(names(&low), ["270p"]);
        assert_eq!(low.renditions[0].bitrate, 250_000);
    }

    #[test]
    fn never_above_the_source_frame_rate_and_60_fps_is_kept() {
        let p = planned(&src(1920, 1080, 60.0, None));
        assert_eq!(
            p.renditions[0].frame_rate, 15.0,
            "the smallest rung is capped"
        );
        assert!(p.renditions[1..].iter().all(|r| r.frame_rate == 60.0));
        assert_eq!(p.gop_frames[4], 120);
        let slow = planned(&src(1280, 720, 10.0, None));
        assert!(slow.renditions.iter().all(|r| r.frame_rate == 10.0));
        assert_eq!(slow.gop_frames[0], 20);
    }

    /// Every rung's GOP spans the same time, so key frames (and segment
    /// boundaries) line up: at 29.97 the 15 fps cap gives 15000/1001, and
    /// its 30 frames last 2.002 s like the others' 60.
    #[test]
    fn key_frames_line_up_across_rungs() {
        for fps in [
            30_000.0 / 1001.0,
            24_000.0 / 1001.0,
            25.0,
            30.0,
            50.0,
            60_000.0 / 1001.0,
        ] {
            let p = planned(&src(1920, 1080, fps, None));
            let spans: Vec<f64> = p
                .renditions
                .iter()
                .zip(&p.gop_frames)
                .map(|(r, g)| f64::from(*g) / r.frame_rate)
                .collect();
            assert!(
                spans.iter().all(|s| (s - spans[0]).abs() < 1e-9),
                "{fps}: GOP spans {spans:?}"
            );
            assert!(p.renditions[0].frame_rate <= 15.0 + 1e-9, "{fps}");
        }
        let ntsc = planned(&src(1920, 1080, 30_000.0 / 1001.0, None));
        assert_eq!(fraction(ntsc.renditions[0].frame_rate), (15_000, 1001));
        assert_eq!(fraction_arg(ntsc.renditions[0].frame_rate), "15000/1001");
        assert_eq!((ntsc.gop_frames[0], ntsc.gop_frames[1]), (30, 60));
    }

    #[test]
    fn frame_rates_become_exact_fractions() {
        assert_eq!(fraction(29.97), (30_000, 1001));
        assert_eq!(fraction(30_000.0 / 1001.0), (30_000, 1001));
        assert_eq!(fraction(15_000.0 / 1001.0), (15_000, 1001));
        assert_eq!(fraction(23.976), (24_000, 1001));
        assert_eq!(fraction(59.94), (60_000, 1001));
        assert_eq!(fraction(25.0), (25, 1));
        assert_eq!(fraction(15.0), (15, 1));
        assert_eq!(fraction(12.5), (25, 2));
    }

    #[test]
    fn no_audio_no_audio_rendition_and_bad_sources_are_errors() {
        let mut s = src(1280, 720, 30.0, None);
        s.has_audio = false;
        assert_eq!(planned(&s).audio_bitrate, None);
        assert_eq!(
            plan(&src(0, 0, 30.0, None), &LadderConfig::default()),
            Err(PlanError::NoPicture(0, 0))
        );
        assert_eq!(
            plan(&src(640, 360, 0.0, None), &LadderConfig::default()),
            Err(PlanError::NoFrameRate)
        );
        let empty = LadderConfig {
            rungs: vec![],
            ..LadderConfig::default()
        };
        assert_eq!(
            plan(&src(640, 360, 30.0, None), &empty),
            Err(PlanError::EmptyLadder)
        );
    }
}
