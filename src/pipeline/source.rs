//! How an uploaded source is handed to ffprobe and ffmpeg. The upload is
//! hostile input: left to guess, ffmpeg would read an HLS playlist, a
//! concat list or an SDP file named `evil.mp4` and follow what it names
//! (another asset's segments, a file outside the storage root, a URL on
//! the gateway's network), or wait forever on a live playlist.
//!
//! So a source is opened only as one of an allow-list of containers,
//! decided from its own first bytes (`Container::sniff`) and forced with
//! `-f`, with a protocol allow-list of the one file (local) or the one
//! presigned URL's scheme (aws), and for MP4/MOV `-enable_drefs 0` (no
//! external data references). None of the allowed demuxers opens another
//! resource. Anything else is refused before ffmpeg sees it.

use std::ffi::OsString;
use std::path::Path;

/// How many first bytes `sniff` needs at most.
pub const SNIFF_BYTES: usize = 188 * 5 + 192 * 5;

/// The containers a source may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO base media (MP4, M4V) and QuickTime (MOV).
    IsoBmff,
    /// Matroska and WebM (EBML).
    Matroska,
    /// MPEG transport stream, 188-byte packets or 192-byte (M2TS).
    MpegTs,
    /// Material Exchange Format.
    Mxf,
}

/// The refusal, worded for the job's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "source is not a supported media container: {0} (accepted: MP4/MOV, Matroska/WebM, MPEG-TS, MXF)"
)]
pub struct NotAContainer(pub String);

/// ISO BMFF / QuickTime box types a file may start with.
const FIRST_BOXES: [&[u8; 4]; 7] = [
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot",
];

const MXF_PARTITION: [u8; 13] = [
    0x06, 0x0e, 0x2b, 0x34, 0x02, 0x05, 0x01, 0x01, 0x0d, 0x01, 0x02, 0x01, 0x01,
];

/// Whether `head` is a run of transport-stream packets of `size` bytes
/// whose sync byte (0x47) sits at `offset` in each: at least five
/// packets, or every whole packet of a shorter file.
fn ts_packets(head: &[u8], size: usize, offset: usize, whole_file: bool) -> bool {
    let packets = head.len().saturating_sub(offset) / size;
    let needed = if whole_file { packets.max(1) } else { 5 };
    packets >= needed && (0..needed).all(|i| head.get(offset + i * size) == Some(&0x47))
}

/// What a refused file looks like, for the message.
fn looks_like(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(&head[..head.len().min(64)]);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let what = if t.starts_with("#EXTM3U") {
        "an HLS playlist"
    } else if t.starts_with("ffconcat") || t.starts_with("file ") {
        "an ffconcat list"
    } else if t.starts_with("v=0") {
        "an SDP description"
    } else if t.starts_with("<?xml") || t.starts_with("<MPD") {
        "an XML document"
    } else if [&b"\x89PNG"[..], &[0xff, 0xd8, 0xff], b"GIF8", b"BM"]
        .iter()
        .any(|sig| head.starts_with(sig))
    {
        "an image"
    } else if head.starts_with(b"RIFF") {
        "a RIFF file (AVI, WAV)"
    } else if head.is_empty() {
        "an empty file"
    } else if head
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "a text file"
    } else {
        "unrecognised first bytes"
    };
    what.to_owned()
}

impl Container {
    /// The container of a file from its first bytes (`head`, up to
    /// `SNIFF_BYTES`; `whole_file` when the file is no longer than that).
    pub fn sniff(head: &[u8], whole_file: bool) -> Result<Container, NotAContainer> {
        if head.len() >= 8 {
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let kind = &head[4..8];
            // 0: to the end of the file; 1: a 64-bit size follows.
            if (size == 0 || size == 1 || size >= 8) && FIRST_BOXES.iter().any(|b| kind == *b) {
                return Ok(Container::IsoBmff);
            }
        }
        if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
            return Ok(Container::Matroska);
        }
        if head.starts_with(&MXF_PARTITION) {
            return Ok(Container::Mxf);
        }
        if ts_packets(head, 188, 0, whole_file) || ts_packets(head, 192, 4, whole_file) {
            return Ok(Container::MpegTs);
        }
        Err(NotAContainer(looks_like(head)))
    }

    /// ffmpeg's demuxer for it.
    pub fn demuxer(self) -> &'static str {
        match self {
            Container::IsoBmff => "mov",
            Container::Matroska => "matroska",
            Container::MpegTs => "mpegts",
            Container::Mxf => "mxf",
        }
    }
}

/// The file name extensions an upload may have (the content still decides).
pub const EXTENSIONS: [&str; 9] = [
    "mp4", "m4v", "mov", "mkv", "webm", "ts", "m2ts", "mts", "mxf",
];

/// Whether `name` ends in one of `EXTENSIONS` (any case).
pub fn has_media_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
    })
}

/// One source as ffprobe and ffmpeg open it: where, as which container,
/// through which protocols. `Debug` never shows a presigned URL's query.
#[derive(Clone)]
pub struct SourceInput {
    location: String,
    container: Container,
    protocols: &'static str,
}

impl std::fmt::Debug for SourceInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bare = self.location.split('?').next().unwrap_or_default();
        f.debug_struct("SourceInput")
            .field("location", &bare)
            .field("container", &self.container)
            .field("protocols", &self.protocols)
            .finish()
    }
}

impl SourceInput {
    /// A file on this machine, through the `file` protocol only.
    pub fn local(path: &Path, container: Container) -> Self {
        SourceInput {
            location: format!("file:{}", path.display()),
            container,
            protocols: "file",
        }
    }

    /// A presigned URL: `https` (with TLS over TCP), or `http` only where
    /// the S3 endpoint itself is plain HTTP (a local stand-in).
    pub fn remote(url: &str, container: Container) -> Result<Self, NotAContainer> {
        let protocols = if url.starts_with("https://") {
            "https,tls,tcp"
        } else if url.starts_with("http://") {
            "http,tcp"
        } else {
            return Err(NotAContainer("a URL that is not HTTP(S)".into()));
        };
        Ok(SourceInput {
            location: url.to_owned(),
            container,
            protocols,
        })
    }

    pub fn container(&self) -> Container {
        self.container
    }

    /// The input options and `-i`: the protocol allow-list, the forced
    /// demuxer (no external references for MOV), the source.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "-protocol_whitelist".into(),
            self.protocols.into(),
            "-f".into(),
            self.container.demuxer().into(),
        ];
        if self.container == Container::IsoBmff {
            a.push("-enable_drefs".into());
            a.push("0".into());
        }
        a.push("-i".into());
        a.push(self.location.clone().into());
        a
    }
}

/// The first `SNIFF_BYTES` of a local file, and whether that is all of it.
pub async fn head_of(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut head = Vec::with_capacity(SNIFF_BYTES + 1);
    file.take(SNIFF_BYTES as u64 + 1)
        .read_to_end(&mut head)
        .await?;
    let whole = head.len() <= SNIFF_BYTES;
    head.truncate(SNIFF_BYTES);
    Ok((head, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(b: &[u8]) -> Result<Container, NotAContainer> {
        Container::sniff(b, b.len() <= SNIFF_BYTES)
    }

    #[test]
    fn containers_are_told_by_their_first_bytes() {
        let mut mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0".to_vec();
        mp4.resize(64, 0);
        assert_eq!(sniff(&mp4), Ok(Container::IsoBmff));
        assert_eq!(
            sniff(b"\0\0\0\x08wide\0\0\0\x10mdat"),
            Ok(Container::IsoBmff)
        );
        assert_eq!(
            sniff(&[0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81]),
            Ok(Container::Matroska)
        );
        let mut ts = vec![0u8; 188 * 6];
        for i in 0..6 {
            ts[i * 188] = 0x47;
        }
        assert_eq!(sniff(&ts), Ok(Container::MpegTs));
        let mut m2ts = vec![0u8; 192 * 6];
        for i in 0..6 {
            m2ts[i * 192 + 4] = 0x47;
        }
        assert_eq!(sniff(&m2ts), Ok(Container::MpegTs));
        let mut mxf = MXF_PARTITION.to_vec();
        mxf.extend_from_slice(&[0x02, 0x04, 0x00]);
        assert_eq!(sniff(&mxf), Ok(Container::Mxf));
    }

    #[test]
    fn everything_else_is_refused_saying_what_it_looks_like() {
        for (bytes, like) in [
            (
                &b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n"[..],
                "an HLS playlist",
            ),
            (b"\xef\xbb\xbf#EXTM3U\n", "an HLS playlist"),
            (b"ffconcat version 1.0\nfile 'a.mp4'\n", "an ffconcat list"),
            (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n", "an SDP description"),
            (b"<?xml version=\"1.0\"?><MPD", "an XML document"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "an image"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "an image"),
            (b"hello", "a text file"),
            (b"", "an empty file"),
            // One sync byte is not a transport stream.
            (b"G\0\0\0\0\0\0\0\0\0", "unrecognised first bytes"),
            // A box-like start with a size too small to be a box.
            (b"\0\0\0\x04ftyp", "unrecognised first bytes"),
        ] {
            let e = sniff(bytes).unwrap_err();
            assert_eq!(e.0, like, "{bytes:?}");
            assert!(
                e.to_string()
                    .starts_with("source is not a supported media container: ")
            );
        }
    }

    #[test]
    fn a_transport_stream_needs_five_packets_unless_it_is_shorter() {
        let mut ts = vec![0u8; 188 * 6];
        for i in 0..4 {
            ts[i * 188] = 0x47;
        }
        assert!(Container::sniff(&ts, false).is_err(), "four of six");
        let mut short = vec![0u8; 188 * 2];
        short[0] = 0x47;
        short[188] = 0x47;
        assert_eq!(Container::sniff(&short, true), Ok(Container::MpegTs));
    }

    #[test]
    fn the_command_line_forces_the_demuxer_and_the_protocols() {
        let local =
            SourceInput::local(Path::new("/data/assets/a/source/x.mp4"), Container::IsoBmff);
        let a: Vec<String> = local
            .args()
            .into_iter()
            .map(|s| s.into_string().expect("utf-8"))
            .collect();
        assert_eq!(
            a,
            [
                "-protocol_whitelist",
                "file",
                "-f",
                "mov",
                "-enable_drefs",
                "0",
                "-i",
                "file:/data/assets/a/source/x.mp4"
            ]
        );
        let remote = SourceInput::remote(
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=secret",
            Container::Matroska,
        )
        .expect("https");
        let a: Vec<String> = remote
            .args()
            .into_iter()
            .map(|s| s.into_string().expect("utf-8"))
            .collect();
        assert_eq!(
            &a[..4],
            ["-protocol_whitelist", "https,tls,tcp", "-f", "matroska"]
        );
        assert!(!format!("{remote:?}").contains("secret"));
        assert!(SourceInput::remote("ftp://x/y", Container::Mxf).is_err());
    }

    #[test]
    fn names_need_a_media_extension() {
        for ok in ["a.mp4", "A.MOV", "x.tar.mkv", "c.webm", "d.m2ts", "e.mxf"] {
            assert!(has_media_extension(ok), "{ok}");
        }
        for bad in [
            "x.m3u8",
            "l.ffconcat",
            "noext",
            ".mp4",
            "a.sdp",
            "a.txt",
            "a.mp4.txt",
        ] {
            assert!(!has_media_extension(bad), "{bad}");
        }
    }
}
