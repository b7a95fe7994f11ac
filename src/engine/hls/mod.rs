//! HLS playlists, handled as text: a line-preserving tokenizer that keeps
//! every byte it has no reason to change (comments, unknown tags,
//! attribute order and quoting, CRLF per line) and rewrites only URI
//! bytes. m3u8-rs is a test oracle only: it reorders and drops what we
//! must keep (see issue 6).
//!
//! - `master`: filter a master playlist for a tier; rewrite its URIs.
//! - `scope`: the resource pattern each allowed rendition is signed for.
//! - `media`: append a signed query to every URI of a media playlist.
//!
//! Input rules: at most 10 MB, UTF-8, `#EXTM3U` first (after an optional
//! BOM, which is stripped and never emitted). Errors, never panics.

pub mod master;
pub mod media;
pub mod scope;

pub const MAX_PLAYLIST_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlsError {
    #[error("playlist is larger than 10 MB")]
    TooLarge,
    #[error("playlist is not valid UTF-8")]
    NotUtf8,
    #[error("playlist does not start with #EXTM3U")]
    MissingHeader,
}

/// One line: its text without the line ending, and the ending itself
/// (`"\n"`, `"\r\n"`, or `""` for a last line without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub text: &'a str,
    pub ending: &'a str,
}

/// Checks the input and splits it into lines (BOM removed).
pub fn lines(input: &[u8]) -> Result<Vec<Line<'_>>, HlsError> {
    if input.len() > MAX_PLAYLIST_BYTES {
        return Err(HlsError::TooLarge);
    }
    let text = std::str::from_utf8(input).map_err(|_| HlsError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() / 24 + 1);
    let mut rest = text;
    while !rest.is_empty() {
        let (line, ending, next) = match rest.find('\n') {
            Some(i) if i > 0 && rest.as_bytes()[i - 1] == b'\r' => {
                (&rest[..i - 1], &rest[i - 1..=i], &rest[i + 1..])
            }
            Some(i) => (&rest[..i], &rest[i..=i], &rest[i + 1..]),
            None => (rest, "", ""),
        };
        out.push(Line { text: line, ending });
        rest = next;
    }
    match out.first() {
        Some(l) if l.text.trim_end() == "#EXTM3U" => Ok(out),
        _ => Err(HlsError::MissingHeader),
    }
}

/// The tag name of a `#EXT…` line (`EXT-X-MAP` for `#EXT-X-MAP:URI=…`).
pub fn tag_name(line: &str) -> Option<&str> {
    let body = line.strip_prefix('#')?;
    if !body.starts_with("EXT") {
        return None;
    }
    Some(body.split_once(':').map_or(body, |(n, _)| n))
}

/// One attribute of a tag's attribute list, as raw spans of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub name: &'a str,
    /// The value as written, quotes included.
    pub raw: &'a str,
    /// Byte offset of `raw` within the attribute list.
    pub offset: usize,
}

impl<'a> Attr<'a> {
    /// The value without surrounding quotes.
    pub fn value(&self) -> &'a str {
        self.raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(self.raw)
    }
    pub fn quoted(&self) -> bool {
        self.raw.len() >= 2 && self.raw.starts_with('"') && self.raw.ends_with('"')
    }
}

/// Splits `NAME=VALUE,NAME="quoted, value",…` keeping order and spans.
/// Malformed pieces are skipped, never fatal.
pub fn attributes(list: &str) -> Vec<Attr<'_>> {
    let b = list.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let name_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        if i >= b.len() || b[i] == b',' {
            i += 1;
            continue;
        }
        let name = list[name_start..i].trim();
        i += 1;
        let value_start = i;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            i = (i + 1).min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        } else {
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        }
        out.push(Attr {
            name,
            raw: &list[value_start..i],
            offset: value_start,
        });
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_endings_and_drop_the_bom() {
        let l = lines(b"\xef\xbb\xbf#EXTM3U\r\n#EXT-X-VERSION:7\nseg.ts").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].text, l[0].ending), ("#EXTM3U", "\r\n"));
        assert_eq!((l[1].text, l[1].ending), ("#EXT-X-VERSION:7", "\n"));
        assert_eq!((l[2].text, l[2].ending), ("seg.ts", ""));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(lines(b"#EXTINF:1,\nx.ts"), Err(HlsError::MissingHeader));
        assert_eq!(lines(b""), Err(HlsError::MissingHeader));
        assert_eq!(lines(b"#EXTM3U\n\xff"), Err(HlsError::NotUtf8));
        assert_eq!(
            lines(&vec![b'#'; MAX_PLAYLIST_BYTES + 1]),
            Err(HlsError::TooLarge)
        );
    }

    #[test]
    fn attributes_keep_order_quotes_and_commas() {
        let a = attributes(
            r#"BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,NAME="""#,
        );
        let names: Vec<&str> = a.iter().map(|a| a.name).collect();
        assert_eq!(names, ["BANDWIDTH", "CODECS", "RESOLUTION", "NAME"]);
        assert_eq!(a[1].value(), "avc1.4d401f,mp4a.40.2");
        assert!(a[1].quoted());
        assert_eq!(a[3].value(), "");
        assert_eq!(a[2].raw, "1280x720");
    }

    #[test]
    fn tag_names() {
        assert_eq!(tag_name("#EXT-X-MAP:URI=\"init.mp4\""), Some("EXT-X-MAP"));
        assert_eq!(tag_name("#EXT-X-ENDLIST"), Some("EXT-X-ENDLIST"));
        assert_eq!(tag_name("# a comment"), None);
        assert_eq!(tag_name("seg.ts"), None);
    }
}
