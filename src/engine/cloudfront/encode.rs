//! CloudFront's base64 variant and the wire form of a URL.
//!
//! CloudFront compares the signed resource with the URL it receives, so
//! we sign the URL as an HTTP client sends it: raw spaces, controls,
//! quotes, angle brackets, backticks, braces and non-ASCII characters are
//! percent-encoded as UTF-8 with upper-case hex; everything else — existing
//! escapes (and their case), `+ = , ( ) ! ' * ~` — is left as given. This
//! follows the WHATWG URL percent-encode sets (what browsers and most HTTP
//! clients apply) without their normalisation of dot segments or hosts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Standard base64 with CloudFront's substitutions (`+`→`-`, `=`→`_`, `/`→`~`).
pub fn cf_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// Reverses `cf_base64`; `None` for anything that is not valid.
pub fn cf_base64_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > 64 * 1024 {
        return None;
    }
    let std: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    STANDARD.decode(std.as_bytes()).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an absolute http(s) URL")]
    NotHttp,
    #[error("URL has a #fragment, which is never sent to CloudFront")]
    Fragment,
    #[error("URL is longer than 8 KiB")]
    TooLong,
}

const MAX_URL: usize = 8 * 1024;

fn must_encode_path(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}')
}

fn must_encode_query(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'\'')
}

fn push_encoded(out: &mut String, part: &str, must: fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in part.as_bytes() {
        if must(b) {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push(b as char);
        }
    }
}

/// The URL as an HTTP client sends it (see the module docs). Checks that
/// it is an absolute http(s) URL without a fragment.
pub fn wire_url(url: &str) -> Result<String, UrlError> {
    if url.len() > MAX_URL {
        return Err(UrlError::TooLong);
    }
    if url.contains('#') {
        return Err(UrlError::Fragment);
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest_at = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return Err(UrlError::NotHttp);
    };
    let host_end = url[rest_at..]
        .find(['/', '?'])
        .map(|i| i + rest_at)
        .unwrap_or(url.len());
    let authority = &url[rest_at..host_end];
    if authority.is_empty() || authority.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
        return Err(UrlError::NotHttp);
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..host_end]);
    let rest = &url[host_end..];
    match rest.find('?') {
        Some(q) => {
            push_encoded(&mut out, &rest[..q], must_encode_path);
            out.push('?');
            push_encoded(&mut out, &rest[q + 1..], must_encode_query);
        }
        None => push_encoded(&mut out, rest, must_encode_path),
    }
    Ok(out)
}

/// Like `wire_url` for a resource pattern: `*` and `?` are wildcards and
/// kept; the pattern must still start with a scheme (or be `*`-prefixed).
pub fn wire_pattern(pattern: &str) -> Result<String, UrlError> {
    if pattern.len() > MAX_URL {
        return Err(UrlError::TooLong);
    }
    if pattern.contains('#') {
        return Err(UrlError::Fragment);
    }
    // A pattern has no structure we may rely on (`?` is a wildcard), so
    // encode with the path set, which leaves `?` and `*` alone.
    let mut out = String::with_capacity(pattern.len() + 16);
    push_encoded(&mut out, pattern, must_encode_path);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_alphabet() {
        let b = cf_base64(&[0xfb, 0xff, 0xfe, 0x01]);
        assert!(!b.contains(['+', '/', '=']));
        assert_eq!(cf_base64_decode(&b).unwrap(), vec![0xfb, 0xff, 0xfe, 0x01]);
        assert!(cf_base64_decode("not base64!").is_none());
    }

    #[test]
    fn wire_form() {
        assert_eq!(
            wire_url("https://h/a b/é.m3u8?x=1 2&y=é").unwrap(),
            "https://h/a%20b/%C3%A9.m3u8?x=1%202&y=%C3%A9"
        );
        assert_eq!(
            wire_url("https://h/a%2fb+c=d,(e)!").unwrap(),
            "https://h/a%2fb+c=d,(e)!"
        );
        assert_eq!(wire_url("https://h").unwrap(), "https://h");
        assert_eq!(wire_url("ftp://h/x"), Err(UrlError::NotHttp));
        assert_eq!(wire_url("https://h/x#f"), Err(UrlError::Fragment));
        assert_eq!(wire_url("/relative"), Err(UrlError::NotHttp));
    }
}
