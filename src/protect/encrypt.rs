//! Encrypting an encoded HLS tree in place: each `hls/{rendition}/`'s
//! media segments become AES-128-CBC with PKCS#7 padding under the
//! rendition's key, and its `index.m3u8` gets
//! `#EXT-X-KEY:METHOD=AES-128,URI="{gateway key URL}"` after the
//! `EXT-X-MAP` (the initialisation section holds no media and stays clear,
//! as RFC 8216 allows). There is no `IV` attribute: "the Media Sequence
//! Number is to be used as the IV when decrypting a Media Segment"
//! (RFC 8216 §5.2), so every segment has its own IV.
//!
//! Why not ffmpeg's own `-hls_key_info_file`: with `-var_stream_map` one
//! muxer writes every variant and reads one key info file, so every
//! rendition would share one key — and a lower tier's key would open the
//! top rendition. Encrypting after the encode gives each its own.
//!
//! I-frame playlists go: they address byte ranges inside whole segments,
//! and a range of a CBC-encrypted file does not decrypt on its own.

use super::ClearKey;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("{0}")]
    Io(String),
    #[error("{path}: {why}")]
    Playlist { path: PathBuf, why: String },
    #[error("{0}")]
    Key(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> EncryptError + '_ {
    move |e| EncryptError::Io(format!("{}: {e}", path.display()))
}

/// The renditions of an encoded tree: the directories under `hls/` with
/// an `index.m3u8`, sorted.
pub fn renditions(dir: &Path) -> Result<Vec<String>, EncryptError> {
    let hls = dir.join("hls");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&hls).map_err(io(&hls))? {
        let e = e.map_err(io(&hls))?;
        if e.path().join("index.m3u8").is_file()
            && let Some(name) = e.file_name().to_str()
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// The IV of media sequence number `n` (RFC 8216 §5.2).
pub fn sequence_iv(n: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&n.to_be_bytes());
    iv
}

/// AES-128-CBC with PKCS#7 padding.
pub fn encrypt_segment(key: &[u8; 16], iv: &[u8; 16], clear: &[u8]) -> Result<Vec<u8>, String> {
    openssl::symm::encrypt(openssl::symm::Cipher::aes_128_cbc(), key, Some(iv), clear)
        .map_err(|e| e.to_string())
}

/// The inverse (a player's side; the tests check segments with it).
pub fn decrypt_segment(key: &[u8; 16], iv: &[u8; 16], sealed: &[u8]) -> Result<Vec<u8>, String> {
    openssl::symm::decrypt(openssl::symm::Cipher::aes_128_cbc(), key, Some(iv), sealed)
        .map_err(|e| e.to_string())
}

/// A segment URI the encoder wrote: a plain file name in the playlist's
/// own directory (anything else is not ours to rewrite).
fn own_file(uri: &str) -> bool {
    !uri.is_empty() && !uri.starts_with('.') && !uri.contains(['/', '\\', ':', '?', '#', '%'])
}

/// Encrypts one rendition directory; returns the new playlist text.
fn encrypt_rendition(dir: &Path, key: &ClearKey, url: &str) -> Result<String, EncryptError> {
    let path = dir.join("index.m3u8");
    let bad = |why: &str| EncryptError::Playlist {
        path: path.clone(),
        why: why.to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let key_line = format!(
        "#EXT-X-KEY:METHOD=AES-128,URI=\"{}\"",
        url.replace('"', "%22")
    );
    let mut out = String::with_capacity(text.len() + key_line.len() + 1);
    let mut sequence: u64 = 0;
    let mut keyed = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = n
                .trim()
                .parse()
                .map_err(|_| bad("a bad EXT-X-MEDIA-SEQUENCE"))?;
        } else if t.starts_with("#EXT-X-KEY:") || t.starts_with("#EXT-X-SESSION-KEY:") {
            return Err(bad("the playlist is already encrypted"));
        } else if t.starts_with("#EXT-X-BYTERANGE") {
            return Err(bad(
                "byte-range segments cannot be encrypted one file at a time",
            ));
        } else if t.starts_with("#EXTINF") && !keyed {
            out.push_str(&key_line);
            out.push('\n');
            keyed = true;
        } else if !t.is_empty() && !t.starts_with('#') {
            if !own_file(t) {
                return Err(bad(&format!(
                    "segment {t:?} is not a file beside the playlist"
                )));
            }
            let seg = dir.join(t);
            let clear = std::fs::read(&seg).map_err(io(&seg))?;
            let sealed = encrypt_segment(key.expose(), &sequence_iv(sequence), &clear)
                .map_err(EncryptError::Key)?;
            let tmp = dir.join(format!(".{t}.enc"));
            std::fs::write(&tmp, sealed).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &seg).map_err(io(&seg))?;
            sequence += 1;
        }
        out.push_str(line);
        out.push('\n');
        if t.starts_with("#EXT-X-MAP:") && !keyed {
            out.push_str(&key_line);
            out.push('\n');
            keyed = true;
        }
    }
    if !keyed {
        return Err(bad("the playlist has no segments"));
    }
    Ok(out)
}

/// The media playlists a master names (variants and `EXT-X-MEDIA`
/// renditions; not I-frame playlists, which encryption drops).
fn master_playlists(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("#EXT-X-I-FRAME-STREAM-INF") {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line);
        } else if line.starts_with("#EXT-X-MEDIA:")
            && let Some(uri) = line
                .split("URI=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
        {
            out.push(uri);
        }
    }
    out
}

/// Encrypts every rendition named in `keys` (rendition, key URL, key)
/// under `dir/hls/`; drops I-frame playlists from the tree and the master.
/// A rendition is rewritten only after all its segments are; an error
/// leaves the tree unpublishable (the caller publishes nothing).
pub fn encrypt_tree(dir: &Path, keys: &[(String, String, ClearKey)]) -> Result<(), EncryptError> {
    let hls = dir.join("hls");
    // Clear-key HLS only: a DASH tree beside it would play in the clear.
    if dir.join("dash").exists() {
        return Err(EncryptError::Playlist {
            path: dir.join("dash"),
            why: "an encrypted version has no DASH (clear-key protection is HLS AES-128)".into(),
        });
    }
    // Every playlist the master names must be one of these renditions'
    // `index.m3u8`: anything else would be published in the clear.
    let master = hls.join("master.m3u8");
    let text = std::fs::read_to_string(&master).map_err(io(&master))?;
    for uri in master_playlists(&text) {
        let ours = uri
            .strip_suffix("/index.m3u8")
            .is_some_and(|r| keys.iter().any(|(k, _, _)| k == r));
        if !ours {
            return Err(EncryptError::Playlist {
                path: master.clone(),
                why: format!(
                    "{uri} is not a rendition directory's index.m3u8; only that layout (the local encoder's) is encrypted"
                ),
            });
        }
    }
    for (rendition, url, key) in keys {
        let rdir = hls.join(rendition);
        let playlist = encrypt_rendition(&rdir, key, url)?;
        let path = rdir.join("index.m3u8");
        std::fs::write(&path, playlist).map_err(io(&path))?;
        let iframes = rdir.join("iframes.m3u8");
        if iframes.exists() {
            std::fs::remove_file(&iframes).map_err(io(&iframes))?;
        }
    }
    if text.contains("#EXT-X-I-FRAME-STREAM-INF") {
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with("#EXT-X-I-FRAME-STREAM-INF"))
            .flat_map(|l| [l, "\n"])
            .collect();
        std::fs::write(&master, kept).map_err(io(&master))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("hls/360p");
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(
            d.path().join("hls/master.m3u8"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"360p/iframes.m3u8\"\n",
        )
        .unwrap();
        std::fs::write(
            r.join("index.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:1.0,\nseg_00005.m4s\n#EXTINF:1.0,\nseg_00006.m4s\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        std::fs::write(r.join("init_0.mp4"), b"init").unwrap();
        std::fs::write(r.join("seg_00005.m4s"), b"five five five five").unwrap();
        std::fs::write(r.join("seg_00006.m4s"), b"six").unwrap();
        std::fs::write(r.join("iframes.m3u8"), b"#EXTM3U\n").unwrap();
        d
    }

    #[test]
    fn segments_are_encrypted_with_their_sequence_number_as_iv() {
        let d = tree();
        let key = Secret::new([7u8; 16]);
        encrypt_tree(
            d.path(),
            &[("360p".into(), "https://gw/v1/keys/a/k".into(), key.clone())],
        )
        .unwrap();
        let r = d.path().join("hls/360p");
        let playlist = std::fs::read_to_string(r.join("index.m3u8")).unwrap();
        assert_eq!(
            playlist,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://gw/v1/keys/a/k\"\n#EXTINF:1.0,\nseg_00005.m4s\n#EXTINF:1.0,\nseg_00006.m4s\n#EXT-X-ENDLIST\n"
        );
        let five = std::fs::read(r.join("seg_00005.m4s")).unwrap();
        assert_ne!(five, b"five five five five");
        assert_eq!(five.len(), 32, "PKCS#7 pads to the next block");
        assert_eq!(
            decrypt_segment(&[7; 16], &sequence_iv(5), &five).unwrap(),
            b"five five five five"
        );
        assert_ne!(
            decrypt_segment(&[7; 16], &sequence_iv(6), &five).ok(),
            Some(b"five five five five".to_vec()),
            "another segment's IV does not open it"
        );
        let six = std::fs::read(r.join("seg_00006.m4s")).unwrap();
        assert_eq!(
            decrypt_segment(&[7; 16], &sequence_iv(6), &six).unwrap(),
            b"six"
        );
        assert_eq!(std::fs::read(r.join("init_0.mp4")).unwrap(), b"init");
        assert!(!r.join("iframes.m3u8").exists());
        let master = std::fs::read_to_string(d.path().join("hls/master.m3u8")).unwrap();
        assert!(!master.contains("I-FRAME"), "{master}");
    }

    #[test]
    fn an_encrypted_or_foreign_playlist_is_refused() {
        for (body, why) in [
            (
                "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:1,\nseg_00005.m4s\n",
                "already",
            ),
            ("#EXTM3U\n#EXTINF:1,\n../480p/seg.m4s\n", "beside"),
            ("#EXTM3U\n#EXTINF:1,\n/etc/passwd\n", "beside"),
            ("#EXTM3U\n#EXTINF:1,\nhttp://x/seg.m4s\n", "beside"),
            (
                "#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:10@0\nseg_00005.m4s\n",
                "byte-range",
            ),
            ("#EXTM3U\n#EXT-X-ENDLIST\n", "no segments"),
        ] {
            let d = tree();
            std::fs::write(d.path().join("hls/360p/index.m3u8"), body).unwrap();
            let err = encrypt_tree(
                d.path(),
                &[("360p".into(), "u".into(), Secret::new([1; 16]))],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(why), "{body:?}: {err}");
        }
    }

    #[test]
    fn a_dash_tree_is_refused_rather_than_left_clear() {
        let d = tree();
        std::fs::create_dir_all(d.path().join("dash")).unwrap();
        let err = encrypt_tree(
            d.path(),
            &[("360p".into(), "u".into(), Secret::new([1; 16]))],
        )
        .unwrap_err();
        assert!(err.to_string().contains("no DASH"), "{err}");
        assert_eq!(
            std::fs::read(d.path().join("hls/360p/seg_00005.m4s")).unwrap(),
            b"five five five five",
            "nothing was encrypted"
        );
    }

    #[test]
    fn a_master_naming_any_other_playlist_is_refused() {
        for master in [
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\n720p/index.m3u8\n",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmaster_360p.m3u8\n",
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n",
        ] {
            let d = tree();
            std::fs::write(d.path().join("hls/master.m3u8"), master).unwrap();
            let err = encrypt_tree(
                d.path(),
                &[("360p".into(), "u".into(), Secret::new([1; 16]))],
            )
            .unwrap_err();
            assert!(err.to_string().contains("only that layout"), "{err}");
            assert_eq!(
                std::fs::read(d.path().join("hls/360p/seg_00005.m4s")).unwrap(),
                b"five five five five",
                "nothing was encrypted"
            );
        }
    }

    #[test]
    fn renditions_are_the_directories_with_a_playlist() {
        let d = tree();
        std::fs::create_dir_all(d.path().join("hls/empty")).unwrap();
        assert_eq!(renditions(d.path()).unwrap(), vec!["360p"]);
    }
}
