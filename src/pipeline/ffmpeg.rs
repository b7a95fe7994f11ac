//! The local encoder: one ffmpeg process writes every rendition of a plan
//! into the output layout (`hls/{rendition}/index.m3u8`, `init_N.mp4`,
//! `seg_NNNNN.m4s`, fMP4; `hls/audio/` for AAC; `thumbs/thumb.NNNNNNN.jpg`
//! from 0, one frame every 10 s, as MediaConvert names frame captures),
//! then playgate writes the
//! master itself with every attribute tiers filter on (`RESOLUTION`,
//! `FRAME-RATE`, `CODECS`, and `BANDWIDTH`/`AVERAGE-BANDWIDTH` measured
//! from the segments written) — ffmpeg's own master has no `FRAME-RATE`.
//!
//! `args` and `master` are pure (and unit-tested); `encode` runs ffmpeg
//! with `-progress` and stops it when cancelled.

use super::source::SourceInput;
use crate::engine::ladder::{Codec, Plan, Rendition};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("ffmpeg could not be run: {0}")]
    Tool(String),
    #[error("ffmpeg failed: {0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
    #[error(
        "the encode passed its time limit of {} (pipeline.encode_timeout + encode_timeout_factor × the source's duration) and was stopped",
        humantime::format_duration(*.0)
    )]
    TimedOut(Duration),
    #[error("output: {0}")]
    Output(String),
}

/// H.264 levels: (level_idc, max macroblocks/s, max frame size in macroblocks).
const H264_LEVELS: [(u8, u64, u64); 9] = [
    (30, 40_500, 1_620),
    (31, 108_000, 3_600),
    (32, 216_000, 5_120),
    (40, 245_760, 8_192),
    (42, 522_240, 8_704),
    (50, 589_824, 22_080),
    (51, 983_040, 36_864),
    (52, 2_073_600, 36_864),
    (62, 16_711_680, 139_264),
];

/// The smallest H.264 level that holds this size and rate.
pub fn h264_level(r: &Rendition) -> u8 {
    let mbs = u64::from(r.width.div_ceil(16)) * u64::from(r.height.div_ceil(16));
    let per_sec = (mbs as f64 * r.frame_rate).ceil() as u64;
    H264_LEVELS
        .iter()
        .find(|(_, mbps, fs)| per_sec <= *mbps && mbs <= *fs)
        .map_or(62, |(l, _, _)| *l)
}

/// The `CODECS` value of a rendition's video (High profile for H.264,
/// Main for H.265).
pub fn video_codecs(r: &Rendition) -> String {
    match r.codec {
        Codec::H264 => format!("avc1.6400{:02x}", h264_level(r)),
        Codec::H265 => "hvc1.1.6.L153.90".to_owned(),
    }
}

fn level_arg(level: u8) -> String {
    format!("{}.{}", level / 10, level % 10)
}

/// The ffmpeg command line (after the program name).
pub fn args(source: &SourceInput, plan: &Plan, out: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for s in ["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"] {
        push(s);
    }
    push("-progress");
    push("pipe:1");
    push("-y");
    a.extend(source.args());
    let n = plan.renditions.len();
    let mut graph = format!("[0:v]split={}", n + 1);
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    // Frame captures: one every 10 s from the start, 180 pixels high.
    graph.push_str(
        "[st];[st]select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,10)',scale=-2:180,setsar=1[thumbs]",
    );
    for (i, r) in plan.renditions.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={}:{}:flags=bicubic,setsar=1,fps={}[v{i}]",
            r.width,
            r.height,
            crate::engine::ladder::fraction_arg(r.frame_rate)
        ));
    }
    let mut push = |s: String| a.push(s.into());
    push("-filter_complex".into());
    push(graph);
    for (i, r) in plan.renditions.iter().enumerate() {
        let gop = plan.gop_frames[i].to_string();
        push("-map".into());
        push(format!("[v{i}]"));
        match r.codec {
            Codec::H264 => {
                push(format!("-c:v:{i}"));
                push("libx264".into());
                push(format!("-profile:v:{i}"));
                push("high".into());
                push(format!("-level:v:{i}"));
                push(level_arg(h264_level(r)));
            }
            Codec::H265 => {
                push(format!("-c:v:{i}"));
                push("libx265".into());
                push(format!("-tag:v:{i}"));
                push("hvc1".into());
            }
        }
        for (k, v) in [
            ("b", r.bitrate.to_string()),
            ("maxrate", (r.bitrate * 11 / 10).to_string()),
            ("bufsize", (r.bitrate * 2).to_string()),
            ("g", gop.clone()),
            ("keyint_min", gop),
            ("sc_threshold", "0".into()),
        ] {
            push(format!("-{k}:v:{i}"));
            push(v);
        }
        push(format!("-preset:v:{i}"));
        push("veryfast".into());
        push(format!("-pix_fmt:v:{i}"));
        push("yuv420p".into());
    }
    let mut stream_map: Vec<String> = plan
        .renditions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if plan.audio_bitrate.is_some() {
                format!("v:{i},agroup:aud,name:{}", r.name)
            } else {
                format!("v:{i},name:{}", r.name)
            }
        })
        .collect();
    if let Some(ab) = plan.audio_bitrate {
        for s in ["-map", "0:a:0", "-c:a", "aac", "-ac", "2"] {
            push(s.into());
        }
        push("-b:a".into());
        push(ab.to_string());
        stream_map.push("a:0,agroup:aud,name:audio".into());
    }
    for s in [
        "-f",
        "hls",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "independent_segments",
    ] {
        push(s.into());
    }
    push("-hls_time".into());
    push(plan.segment_seconds.to_string());
    push("-hls_segment_filename".into());
    push(out.join("hls/%v/seg_%05d.m4s").display().to_string());
    push("-var_stream_map".into());
    push(stream_map.join(" "));
    push(out.join("hls/%v/index.m3u8").display().to_string());
    for s in [
        "-map",
        "[thumbs]",
        "-fps_mode",
        "vfr",
        "-q:v",
        "5",
        "-f",
        "image2",
        "-start_number",
        "0",
    ] {
        push(s.into());
    }
    // MediaConvert's frame-capture naming: `thumb.NNNNNNN.jpg` from 0.
    push(out.join("thumbs/thumb.%07d.jpg").display().to_string());
    a
}

/// Peak and average bit rate of a written media playlist, from its
/// `EXTINF` durations and the segment files' sizes.
pub fn measured_bandwidth(dir: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(dir.join("index.m3u8")).ok()?;
    let (mut peak, mut bytes, mut secs) = (0f64, 0u64, 0f64);
    let mut duration = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d
                .split(',')
                .next()
                .and_then(|d| d.trim().parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.is_empty() {
            let size = std::fs::metadata(dir.join(line)).ok()?.len();
            if let Some(d) = duration.take().filter(|d| *d > 0.0) {
                peak = peak.max(size as f64 * 8.0 / d);
                bytes += size;
                secs += d;
            }
        }
    }
    (secs > 0.0).then(|| {
        (
            peak.ceil() as u64,
            (bytes as f64 * 8.0 / secs).ceil() as u64,
        )
    })
}

/// The master for an encoded plan. `bandwidth(name)` gives a rendition's
/// measured (peak, average); the plan's nominal rates stand in without it.
/// `iframes(name)` is the peak bit rate of the rendition's
/// `iframes.m3u8`, when one was written.
pub fn master(
    plan: &Plan,
    bandwidth: impl Fn(&str) -> Option<(u64, u64)>,
    iframes: impl Fn(&str) -> Option<u64>,
) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let audio = plan.audio_bitrate.map(|nominal| {
        let (peak, avg) = bandwidth("audio").unwrap_or((nominal, nominal));
        m.push_str("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n");
        (peak, avg)
    });
    for r in &plan.renditions {
        let (mut peak, mut avg) = bandwidth(&r.name).unwrap_or((r.bitrate * 11 / 10, r.bitrate));
        let mut codecs = video_codecs(r);
        if let Some((ap, aa)) = audio {
            peak += ap;
            avg += aa;
            codecs.push_str(",mp4a.40.2");
        }
        m.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},RESOLUTION={}x{},FRAME-RATE={:.3},CODECS=\"{codecs}\"{}\n{}/index.m3u8\n",
            r.width,
            r.height,
            r.frame_rate,
            if audio.is_some() { ",AUDIO=\"aud\"" } else { "" },
            r.name
        ));
    }
    for r in &plan.renditions {
        if let Some(peak) = iframes(&r.name) {
            m.push_str(&format!(
                "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},RESOLUTION={}x{},CODECS=\"{}\",URI=\"{}/iframes.m3u8\"\n",
                r.width,
                r.height,
                video_codecs(r),
                r.name
            ));
        }
    }
    m
}

/// Runs the encode of `source` into `out` (emptied first), reporting
/// progress in percent of `duration` seconds, until done, `cancel` turns
/// true or `limit` passes (then ffmpeg's process group is stopped); then
/// writes `out/hls/master.m3u8`.
pub async fn encode(
    source: &SourceInput,
    plan: &Plan,
    out: &Path,
    duration: f64,
    limit: Duration,
    mut progress: impl FnMut(u8),
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<(), EncodeError> {
    use super::process::{Group, KILL_GRACE};
    use tokio::io::AsyncBufReadExt;
    // A cancel sent before this receiver was made is already "seen": look.
    if *cancel.borrow() {
        return Err(EncodeError::Cancelled);
    }
    let _ = std::fs::remove_dir_all(out);
    let hls = out.join("hls");
    std::fs::create_dir_all(out.join("thumbs")).map_err(|e| EncodeError::Output(e.to_string()))?;
    for name in plan
        .renditions
        .iter()
        .map(|r| r.name.as_str())
        .chain(plan.audio_bitrate.map(|_| "audio"))
    {
        std::fs::create_dir_all(hls.join(name)).map_err(|e| EncodeError::Output(e.to_string()))?;
    }
    let deadline = tokio::time::Instant::now() + limit;
    let mut group = Group::spawn(
        tokio::process::Command::new("ffmpeg")
            .args(args(source, plan, out))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .map_err(|e| EncodeError::Tool(e.to_string()))?;
    let child = group.child();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| EncodeError::Tool("no stdout".into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| EncodeError::Tool("no stderr".into()))?;
    let errors = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await;
        buf
    });
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut last = 0u8;
    loop {
        if *cancel.borrow() {
            group.stop(KILL_GRACE).await;
            return Err(EncodeError::Cancelled);
        }
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(l)) => {
                    if let Some(us) = l.strip_prefix("out_time_us=").and_then(|v| v.parse::<f64>().ok())
                        && duration > 0.0
                    {
                        let pct = ((us / 1e6 / duration) * 100.0).clamp(0.0, 99.0) as u8;
                        if pct > last {
                            last = pct;
                            progress(pct);
                        }
                    }
                }
                _ => break,
            },
            changed = cancel.changed() => {
                if changed.is_err() || *cancel.borrow() {
                    group.stop(KILL_GRACE).await;
                    return Err(EncodeError::Cancelled);
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                group.stop(KILL_GRACE).await;
                return Err(EncodeError::TimedOut(limit));
            }
        }
    }
    let status = match tokio::time::timeout_at(deadline, group.child().wait()).await {
        Ok(status) => status,
        Err(_) => {
            group.stop(KILL_GRACE).await;
            return Err(EncodeError::TimedOut(limit));
        }
    };
    let status = status.map_err(|e| EncodeError::Tool(e.to_string()))?;
    let stderr = errors.await.unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(EncodeError::Failed(last.chars().take(300).collect()));
    }
    let mut iframes = std::collections::HashMap::new();
    for r in &plan.renditions {
        let dir = hls.join(&r.name);
        if let Some((text, peak)) = super::iframes::playlist(&dir) {
            std::fs::write(dir.join("iframes.m3u8"), text)
                .map_err(|e| EncodeError::Output(e.to_string()))?;
            iframes.insert(r.name.clone(), peak);
        }
    }
    let m = master(
        plan,
        |name| measured_bandwidth(&hls.join(name)),
        |name| iframes.get(name).copied(),
    );
    std::fs::write(hls.join("master.m3u8"), m).map_err(|e| EncodeError::Output(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ladder::{LadderConfig, Source, plan};

    fn hd() -> Plan {
        plan(
            &Source {
                width: 1280,
                height: 720,
                frame_rate: 30.0,
                bit_rate: None,
                has_audio: true,
                duration: 10.0,
            },
            &LadderConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn levels_follow_size_and_rate() {
        let p = hd();
        let by = |n: &str| p.renditions.iter().find(|r| r.name == n).unwrap();
        assert_eq!(video_codecs(by("270p")), "avc1.64001e");
        assert_eq!(video_codecs(by("720p")), "avc1.64001f");
        let mut r = by("720p").clone();
        r.frame_rate = 60.0;
        assert_eq!(h264_level(&r), 32);
        r.width = 1920;
        r.height = 1080;
        assert_eq!(h264_level(&r), 42);
    }

    #[test]
    fn the_master_carries_what_tiers_filter_on() {
        let m = master(&hd(), |_| None, |_| Some(90_000));
        assert!(m.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\""));
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=4010000,AVERAGE-BANDWIDTH=3660000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\"\n720p/index.m3u8\n"
        ), "{m}");
        assert!(m.contains("FRAME-RATE=15.000"), "the 270p rung: {m}");
        let rules = crate::engine::tiers::TierRules {
            max_height: Some(480),
            max_frame_rate: Some(30.0),
            ..Default::default()
        };
        let url = url::Url::parse("https://cdn.example.com/assets/a/v1/hls/master.m3u8").unwrap();
        let f = crate::engine::hls::master::filter(m.as_bytes(), &rules, Some(&url)).unwrap();
        let kept: Vec<&str> = f.kept.iter().map(|u| u.uri.as_str()).collect();
        assert_eq!(
            kept,
            [
                "audio/index.m3u8",
                "270p/index.m3u8",
                "360p/index.m3u8",
                "480p/index.m3u8",
                "270p/iframes.m3u8",
                "360p/iframes.m3u8",
                "480p/iframes.m3u8"
            ],
            "the manifest engine reads what this writes, I-frame playlists included"
        );
    }

    #[test]
    fn the_command_maps_every_rendition_and_the_audio() {
        let input = SourceInput::local(
            Path::new("/in/src.mov"),
            crate::pipeline::source::Container::IsoBmff,
        );
        let a: Vec<String> = args(&input, &hd(), Path::new("/out"))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let at = |k: &str| a.iter().position(|x| x == k).map(|i| a[i + 1].as_str());
        assert_eq!(
            at("-var_stream_map"),
            Some(
                "v:0,agroup:aud,name:270p v:1,agroup:aud,name:360p v:2,agroup:aud,name:480p v:3,agroup:aud,name:720p a:0,agroup:aud,name:audio"
            )
        );
        assert_eq!(at("-hls_time"), Some("6"));
        assert_eq!(at("-g:v:0"), Some("30"), "2 s at the 270p rung's 15 fps");
        assert_eq!(at("-g:v:3"), Some("60"));
        assert_eq!(at("-b:a"), Some("160000"));
        assert_eq!(at("-f"), Some("mov"), "the demuxer is forced");
        assert_eq!(at("-protocol_whitelist"), Some("file"));
        assert_eq!(at("-i"), Some("file:/in/src.mov"));
        assert!(
            at("-filter_complex")
                .unwrap()
                .contains("[s3]scale=1280:720")
        );
    }
}
