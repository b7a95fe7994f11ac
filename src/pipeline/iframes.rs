//! I-frame playlists (`EXT-X-I-FRAMES-ONLY`) for the fMP4 renditions the
//! ffmpeg backend writes. ffmpeg 5.1 writes one movie fragment per segment,
//! opening on a key frame; an I-frame entry is the byte range from that
//! fragment's `moof` to the end of its first sample (RFC 8216 wants the
//! `moof` in the range; a truncated `mdat` is what players expect). So a
//! rendition gets one I-frame per segment, read from the files written:
//! nothing is re-encoded or copied.

use std::path::Path;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Boxes in `b[from..to]`: (type, start, size).
fn boxes(b: &[u8], from: usize, to: usize) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let mut at = from;
    std::iter::from_fn(move || {
        if at.checked_add(8)? > to {
            return None;
        }
        let size = u32_at(b, at)? as usize;
        let kind: [u8; 4] = b.get(at + 4..at + 8)?.try_into().ok()?;
        // 0 (to the end) and 1 (64-bit) sizes are not what ffmpeg writes
        // for fragments; stop rather than guess.
        if size < 8 || at.checked_add(size)? > to {
            return None;
        }
        let found = (kind, at, size);
        at += size;
        Some(found)
    })
}

const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// The byte range `(offset, length)` of a segment's first movie fragment
/// through its first sample, when that sample is a sync (key) frame.
pub fn first_iframe(segment: &[u8]) -> Option<(u64, u64)> {
    let (_, moof, moof_size) = boxes(segment, 0, segment.len()).find(|(k, ..)| k == b"moof")?;
    let (_, traf, traf_size) =
        boxes(segment, moof + 8, moof + moof_size).find(|(k, ..)| k == b"traf")?;
    let (mut default_size, mut default_flags) = (None, None);
    let mut run = None;
    for (kind, at, size) in boxes(segment, traf + 8, traf + traf_size) {
        match &kind {
            b"tfhd" => {
                let flags = u32_at(segment, at + 8)? & 0x00ff_ffff;
                // Base data offset must come from the moof (default-base-is-moof).
                if flags & 0x1 != 0 {
                    return None;
                }
                let mut p = at + 16; // version/flags, track_ID
                if flags & 0x2 != 0 {
                    p += 4; // sample_description_index
                }
                if flags & 0x8 != 0 {
                    p += 4; // default_sample_duration
                }
                if flags & 0x10 != 0 {
                    default_size = Some(u32_at(segment, p)?);
                    p += 4;
                }
                if flags & 0x20 != 0 {
                    default_flags = Some(u32_at(segment, p)?);
                }
            }
            b"trun" if run.is_none() => run = Some((at, size)),
            _ => {}
        }
    }
    let (at, _) = run?;
    let flags = u32_at(segment, at + 8)? & 0x00ff_ffff;
    if u32_at(segment, at + 12)? == 0 || flags & 0x1 == 0 {
        return None; // no samples, or no data offset to find them by
    }
    let data_offset = u32_at(segment, at + 16)? as usize;
    let mut p = at + 20;
    let mut first_flags = None;
    if flags & 0x4 != 0 {
        first_flags = Some(u32_at(segment, p)?);
        p += 4;
    }
    if flags & 0x100 != 0 {
        p += 4; // sample_duration
    }
    let size = if flags & 0x200 != 0 {
        let s = u32_at(segment, p)?;
        p += 4;
        s
    } else {
        default_size?
    };
    let sample_flags = if flags & 0x400 != 0 {
        Some(u32_at(segment, p)?)
    } else {
        None
    };
    let sync = first_flags.or(sample_flags).or(default_flags)? & SAMPLE_IS_NON_SYNC == 0;
    let end = moof.checked_add(data_offset)?.checked_add(size as usize)?;
    (sync && end <= segment.len()).then(|| (moof as u64, (end - moof) as u64))
}

/// An I-frame playlist and its peak bit rate for the rendition in `dir`
/// (whose `index.m3u8` lists fMP4 segments), or `None` when a segment has
/// no key frame where one is expected.
pub fn playlist(dir: &Path) -> Option<(String, u64)> {
    let media = std::fs::read_to_string(dir.join("index.m3u8")).ok()?;
    let mut out = String::new();
    let mut map = None;
    let mut entries = Vec::new();
    let mut duration = None;
    for line in media.lines() {
        if line.starts_with("#EXT-X-MAP:") {
            map = Some(line.to_owned());
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d
                .split(',')
                .next()
                .and_then(|d| d.trim().parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let bytes = std::fs::read(dir.join(line)).ok()?;
            let (offset, length) = first_iframe(&bytes)?;
            entries.push((duration.take()?, offset, length, line.to_owned()));
        }
    }
    if entries.is_empty() {
        return None;
    }
    let target = entries
        .iter()
        .map(|e| e.0.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    out.push_str(&format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-I-FRAMES-ONLY\n"
    ));
    out.push_str(&map?);
    out.push('\n');
    let mut peak = 0f64;
    for (d, offset, length, uri) in &entries {
        if *d > 0.0 {
            peak = peak.max(*length as f64 * 8.0 / d);
        }
        out.push_str(&format!(
            "#EXTINF:{d:.6},\n#EXT-X-BYTERANGE:{length}@{offset}\n{uri}\n"
        ));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    Some((out, peak.ceil() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// styp, moof(mfhd, traf(tfhd, trun)), mdat — the shape ffmpeg writes.
    fn segment(first_flags: u32, sizes: &[u32]) -> Vec<u8> {
        let tfhd = bx(
            b"tfhd",
            &[&0x0002_0000u32.to_be_bytes()[..], &1u32.to_be_bytes()].concat(),
        );
        let mut trun_body = 0x0000_0601u32.to_be_bytes().to_vec();
        trun_body.extend((sizes.len() as u32).to_be_bytes());
        let data_offset_at = trun_body.len();
        trun_body.extend(0u32.to_be_bytes());
        for (i, s) in sizes.iter().enumerate() {
            trun_body.extend(s.to_be_bytes());
            let f = if i == 0 {
                first_flags
            } else {
                SAMPLE_IS_NON_SYNC
            };
            trun_body.extend(f.to_be_bytes());
        }
        let trun_len = trun_body.len() + 8;
        let traf_len = 8 + tfhd.len() + trun_len;
        let mfhd = bx(b"mfhd", &[0u8; 8]);
        let moof_len = 8 + mfhd.len() + traf_len;
        let offset = (moof_len + 8) as u32;
        trun_body[data_offset_at..data_offset_at + 4].copy_from_slice(&offset.to_be_bytes());
        let traf = bx(b"traf", &[tfhd, bx(b"trun", &trun_body)].concat());
        let moof = bx(b"moof", &[mfhd, traf].concat());
        let total: u32 = sizes.iter().sum();
        let mdat = bx(b"mdat", &vec![0xAB; total as usize]);
        [bx(b"styp", b"msdh\0\0\0\0"), moof, mdat].concat()
    }

    #[test]
    fn the_range_runs_from_the_moof_through_the_first_sample() {
        let seg = segment(0x0200_0000, &[1000, 300, 200]);
        let (offset, length) = first_iframe(&seg).unwrap();
        assert_eq!(offset, 16, "after styp");
        let moof_len = u32_at(&seg, 16).unwrap() as u64;
        assert_eq!(length, moof_len + 8 + 1000);
    }

    #[test]
    fn a_segment_that_opens_on_a_non_key_frame_has_no_i_frame() {
        assert_eq!(
            first_iframe(&segment(SAMPLE_IS_NON_SYNC, &[1000, 300])),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_or_any_damage_is_safe(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            at in 0usize..200,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let _ = first_iframe(&junk);
            let mut seg = segment(0, &[100, 50]);
            let i = at % seg.len();
            seg[i] = byte;
            if let Some((offset, length)) = first_iframe(&seg) {
                proptest::prop_assert!(offset + length <= seg.len() as u64);
            }
        }
    }

    #[test]
    fn broken_input_is_none_not_a_panic() {
        let seg = segment(0, &[1000, 300]);
        for cut in [0, 7, 20, 60, seg.len() - 500] {
            let _ = first_iframe(&seg[..cut]);
        }
        assert_eq!(
            first_iframe(&seg[..seg.len() - 500]),
            None,
            "sample runs past the end"
        );
        assert_eq!(first_iframe(b"\0\0\0\x01moof"), None);
        assert_eq!(first_iframe(&[0xff; 64]), None);
    }
}
