//! Media playlist signing (URL delivery): append the signed query
//! (`Policy=…&Signature=…&Key-Pair-Id=…[&Hash-Algorithm=SHA256]`) to every
//! segment URI and to the `URI` attribute of `EXT-X-MAP`, `EXT-X-KEY`
//! (http(s) or relative only), `EXT-X-PART`, `EXT-X-PRELOAD-HINT` and
//! `EXT-X-RENDITION-REPORT` — with `&` when the URI already has a query.
//! Never to `skd://`, `data:` or any other non-HTTP scheme. Everything else
//! (including `EXT-X-BYTERANGE`) is copied byte for byte. One pass, output
//! preallocated.

use super::{HlsError, lines, tag_name};

const URI_TAGS: &[&str] = &[
    "EXT-X-MAP",
    "EXT-X-KEY",
    "EXT-X-PART",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
];

/// Whether a URI is fetched over HTTP from the CDN (relative, or http(s)).
fn signable(uri: &str) -> bool {
    let uri = uri.trim();
    if uri.is_empty() {
        return false;
    }
    match uri.find(':') {
        // A colon before any '/', '?' or '#' means a scheme.
        Some(c) if !uri[..c].contains(['/', '?', '#']) => {
            let scheme = &uri[..c];
            scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
        }
        _ => true,
    }
}

fn push_signed(out: &mut String, uri: &str, query: &str) {
    out.push_str(uri);
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(query);
}

/// Signs every URI in `playlist` with `query` (already URL-safe).
pub fn sign(playlist: &[u8], query: &str) -> Result<String, HlsError> {
    let lines = lines(playlist)?;
    let uris = lines.iter().filter(|l| !l.text.starts_with('#')).count();
    let mut out = String::with_capacity(playlist.len() + (uris + 8) * (query.len() + 1));
    for line in lines {
        let text = line.text;
        if text.starts_with('#') {
            match tag_name(text) {
                Some(tag) if URI_TAGS.contains(&tag) => {
                    sign_uri_attribute(&mut out, text, tag, query)
                }
                _ => out.push_str(text),
            }
        } else if signable(text) {
            let trimmed = text.trim_end();
            push_signed(&mut out, trimmed, query);
            out.push_str(&text[trimmed.len()..]);
        } else {
            out.push_str(text);
        }
        out.push_str(line.ending);
    }
    Ok(out)
}

fn sign_uri_attribute(out: &mut String, text: &str, tag: &str, query: &str) {
    let prefix_len = 1 + tag.len() + 1; // '#' + tag + ':'
    let Some(list) = text.get(prefix_len..) else {
        out.push_str(text);
        return;
    };
    let uri = super::attributes(list)
        .into_iter()
        .find(|a| a.name == "URI" && a.quoted());
    match uri {
        Some(a) if signable(a.value()) => {
            // Insert the query just before the closing quote.
            let close = prefix_len + a.offset + a.raw.len() - 1;
            out.push_str(&text[..close]);
            out.push(if a.value().contains('?') { '&' } else { '?' });
            out.push_str(query);
            out.push_str(&text[close..]);
        }
        _ => out.push_str(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "Policy=P&Signature=S&Key-Pair-Id=K";

    #[test]
    fn signs_segments_maps_keys_parts_and_hints() {
        let input = "#EXTM3U\r\n#EXT-X-VERSION:9\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x1\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://asset\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n#EXTINF:6.006,\nseg_1.m4s?v=2\n#EXT-X-BYTERANGE:1000@720\nseg_all.m4s\n#EXT-X-PART:DURATION=1.0,URI=\"part_1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_2.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=5\n#EXTINF:6,\ndata:text/plain,abc\n#EXTINF:6,\nhttps://cdn.example.com/a/seg_9.m4s\n";
        let out = sign(input.as_bytes(), Q).unwrap();
        let expected = "#EXTM3U\r\n#EXT-X-VERSION:9\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin?Policy=P&Signature=S&Key-Pair-Id=K\",IV=0x1\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://asset\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXT-X-MAP:URI=\"init.mp4?Policy=P&Signature=S&Key-Pair-Id=K\",BYTERANGE=\"720@0\"\n#EXTINF:6.006,\nseg_1.m4s?v=2&Policy=P&Signature=S&Key-Pair-Id=K\n#EXT-X-BYTERANGE:1000@720\nseg_all.m4s?Policy=P&Signature=S&Key-Pair-Id=K\n#EXT-X-PART:DURATION=1.0,URI=\"part_1.m4s?Policy=P&Signature=S&Key-Pair-Id=K\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_2.m4s?Policy=P&Signature=S&Key-Pair-Id=K\"\n#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8?Policy=P&Signature=S&Key-Pair-Id=K\",LAST-MSN=5\n#EXTINF:6,\ndata:text/plain,abc\n#EXTINF:6,\nhttps://cdn.example.com/a/seg_9.m4s?Policy=P&Signature=S&Key-Pair-Id=K\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn schemes() {
        assert!(signable("seg.ts"));
        assert!(signable("../a/seg.ts"));
        assert!(signable("/abs/seg.ts"));
        assert!(signable("HTTPS://h/x"));
        assert!(
            signable("a/b:c.ts"),
            "a colon after a slash is not a scheme"
        );
        assert!(!signable("skd://x"));
        assert!(!signable("data:application/octet-stream;base64,AAAA"));
        assert!(!signable("ftp://h/x"));
        assert!(!signable("   "));
    }
}
