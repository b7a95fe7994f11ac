//! What a source is, from `ffprobe -print_format json -show_streams
//! -show_format`: display size (rotation applied), frame rate, bit rate,
//! duration, codecs, whether it has audio. A file ffprobe cannot read, or
//! one without a video stream, is a `ProbeError` whose text is fit to show
//! as the asset's failure reason.

use super::process::RunError;
use super::source::SourceInput;
use crate::engine::ladder::Source;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("ffprobe could not be run: {0}")]
    Tool(String),
    #[error("the file is not a playable media file ({0})")]
    Unreadable(String),
    /// The file could not be fetched (refused, reset, timed out, a 5xx):
    /// no verdict on the file itself.
    #[error("the file could not be fetched ({0})")]
    Unreachable(String),
    /// ffprobe ran past `pipeline.probe_timeout` and was stopped.
    #[error("the probe passed its time limit: ffprobe {0}")]
    TimedOut(String),
    #[error("the file has no video stream")]
    NoVideo,
    #[error("the video stream has no usable size or frame rate")]
    BadVideo,
}

/// The probe's findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    pub source: Source,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub rotation: i32,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    streams: Vec<Stream>,
    #[serde(default)]
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    tags: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    disposition: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Format {
    duration: Option<String>,
    bit_rate: Option<String>,
}

fn rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0)
        .then(|| n / d)
        .filter(|r| r.is_finite())
}

fn rotation(s: &Stream) -> i32 {
    let from_side = s
        .side_data_list
        .iter()
        .find_map(|d| d.get("rotation")?.as_i64());
    let from_tag = || s.tags.get("rotate")?.as_str()?.parse::<i64>().ok();
    let r = from_side.or_else(from_tag).unwrap_or(0);
    i32::try_from(r.rem_euclid(360)).unwrap_or(0)
}

/// Reads ffprobe's JSON.
pub fn parse(json: &[u8]) -> Result<Probed, ProbeError> {
    let out: Output =
        serde_json::from_slice(json).map_err(|e| ProbeError::Unreadable(e.to_string()))?;
    let is = |s: &&Stream, t: &str| s.codec_type.as_deref() == Some(t);
    // Cover art is a "video" stream too; it is not the picture.
    let video = out
        .streams
        .iter()
        .find(|s| {
            is(s, "video")
                && s.disposition
                    .get("attached_pic")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0)
                    == 0
        })
        .ok_or(ProbeError::NoVideo)?;
    let audio = out.streams.iter().find(|s| is(s, "audio"));
    let (w, h) = match (video.width, video.height) {
        (Some(w), Some(h)) if w >= 2 && h >= 2 => (w, h),
        _ => return Err(ProbeError::BadVideo),
    };
    let rot = rotation(video);
    let (width, height) = if rot == 90 || rot == 270 {
        (h, w)
    } else {
        (w, h)
    };
    let frame_rate = video
        .avg_frame_rate
        .as_deref()
        .and_then(rate)
        .or_else(|| video.r_frame_rate.as_deref().and_then(rate))
        .ok_or(ProbeError::BadVideo)?;
    let format = out.format.as_ref();
    let bit_rate = video
        .bit_rate
        .as_deref()
        .or(format.and_then(|f| f.bit_rate.as_deref()))
        .and_then(|b| b.parse().ok());
    let duration = format
        .and_then(|f| f.duration.as_deref())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    Ok(Probed {
        source: Source {
            width,
            height,
            frame_rate,
            bit_rate,
            has_audio: audio.is_some(),
            duration,
        },
        video_codec: video.codec_name.clone().unwrap_or_default(),
        audio_codec: audio.and_then(|a| a.codec_name.clone()),
        rotation: rot,
    })
}

/// Whether ffprobe's reason is about getting the bytes (the network, the
/// server), as ffmpeg 5's HTTP and TCP protocols word it, rather than about
/// the bytes themselves.
fn is_transport_failure(reason: &str) -> bool {
    [
        "Connection refused",
        "Connection reset",
        "Connection timed out",
        "timed out",
        "Network is unreachable",
        "Server returned 5XX",
        // 429 (throttled) and other unnamed 4xx: S3 uses only 429 of them.
        "Server returned 4XX Client Error, but not one of",
        "Input/output error",
    ]
    .iter()
    .any(|p| reason.contains(p))
}

/// Runs ffprobe on `input` (a local file, or a presigned S3 GET: ffprobe
/// reads only the headers it needs) as its forced container, for at most
/// `limit`. Its messages never carry the input's location.
pub async fn probe(input: &SourceInput, limit: Duration) -> Result<Probed, ProbeError> {
    let mut cmd = tokio::process::Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_streams",
        "-show_format",
    ])
    // Network reads (a presigned URL) give up after 30 s of silence.
    .args(["-rw_timeout", "30000000"])
    .args(input.args());
    let out = super::process::output(&mut cmd, limit, super::process::KILL_GRACE)
        .await
        .map_err(|e| match e {
            RunError::TimedOut(_) => ProbeError::TimedOut(e.to_string()),
            RunError::Spawn(e) => ProbeError::Tool(e.to_string()),
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let line = why.lines().last().unwrap_or("ffprobe failed").trim();
        // ffprobe names the file in its message; keep only the reason.
        let reason: String = line
            .rsplit(": ")
            .next()
            .unwrap_or(line)
            .chars()
            .take(200)
            .collect();
        return Err(if is_transport_failure(&reason) {
            ProbeError::Unreachable(reason)
        } else {
            ProbeError::Unreadable(reason)
        });
    }
    parse(&out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_swaps_the_display_size() {
        let json = br#"{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,
            "avg_frame_rate":"30000/1001","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]},
            {"codec_type":"audio","codec_name":"aac"}],"format":{"duration":"12.5","bit_rate":"5000000"}}"#;
        let p = parse(json).unwrap();
        assert_eq!((p.source.width, p.source.height), (1080, 1920));
        assert_eq!(p.rotation, 270);
        assert!((p.source.frame_rate - 29.97).abs() < 0.01);
        assert_eq!(p.source.bit_rate, Some(5_000_000));
        assert!(p.source.has_audio);
        assert_eq!(p.source.duration, 12.5);
        assert_eq!(p.audio_codec.as_deref(), Some("aac"));
    }

    #[test]
    fn transport_failures_are_told_from_bad_files() {
        for fetch in [
            "Connection refused",
            "Server returned 5XX Server Error reply",
            "Server returned 4XX Client Error, but not one of 40{0,1,3,4}",
            "Connection timed out",
        ] {
            assert!(is_transport_failure(fetch), "{fetch}");
        }
        for file in [
            "Invalid data found when processing input",
            "moov atom not found",
            "Server returned 403 Forbidden (access denied)",
            "Server returned 404 Not Found",
        ] {
            assert!(!is_transport_failure(file), "{file}");
        }
    }

    /// A server that refuses the connection is Unreachable, not a bad file.
    #[tokio::test]
    async fn a_dead_url_is_unreachable() {
        if std::process::Command::new("ffprobe")
            .arg("-version")
            .output()
            .is_err()
        {
            return;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let input = SourceInput::remote(
            &format!("http://127.0.0.1:{port}/source.mp4"),
            crate::pipeline::source::Container::IsoBmff,
        )
        .unwrap();
        let e = probe(&input, Duration::from_secs(30)).await.unwrap_err();
        assert!(matches!(e, ProbeError::Unreachable(_)), "{e:?}");
    }

    #[test]
    fn no_picture_is_an_error() {
        let audio_only = br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"},
            {"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,"disposition":{"attached_pic":1}}]}"#;
        assert_eq!(parse(audio_only), Err(ProbeError::NoVideo));
        let bad =
            br#"{"streams":[{"codec_type":"video","width":0,"height":0,"avg_frame_rate":"0/0"}]}"#;
        assert_eq!(parse(bad), Err(ProbeError::BadVideo));
        assert!(matches!(parse(b"not json"), Err(ProbeError::Unreadable(_))));
    }
}
