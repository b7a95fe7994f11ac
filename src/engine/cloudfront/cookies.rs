//! `Set-Cookie` rendering for CloudFront cookies, and parsing of a
//! `Cookie` header into the CloudFront values the verifier needs.

/// Attributes shared by one cookie triple.
#[derive(Debug, Clone)]
pub struct CookieAttrs<'a> {
    pub domain: Option<&'a str>,
    pub path: &'a str,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
    /// Absolute expiry (epoch seconds) and, optionally, the max-age from now.
    pub expires: u64,
    pub max_age: Option<u64>,
}

/// The last second an HTTP date can name (9999-12-31T23:59:59Z):
/// `httpdate` panics past it.
pub const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// An HTTP date, clamped to year 9999 (lifetimes are capped long before).
pub fn http_date(epoch: u64) -> String {
    let epoch = epoch.min(LAST_HTTP_DATE);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
}

/// One `Set-Cookie` header value.
pub fn set_cookie(name: &str, value: &str, a: &CookieAttrs<'_>) -> String {
    let mut s = format!("{name}={value}");
    if let Some(d) = a.domain {
        s.push_str("; Domain=");
        s.push_str(d);
    }
    s.push_str("; Path=");
    s.push_str(a.path);
    s.push_str("; Expires=");
    s.push_str(&http_date(a.expires));
    if let Some(age) = a.max_age {
        s.push_str("; Max-Age=");
        s.push_str(&age.to_string());
    }
    if a.secure {
        s.push_str("; Secure");
    }
    if a.http_only {
        s.push_str("; HttpOnly");
    }
    s.push_str(match a.same_site {
        SameSite::None => "; SameSite=None",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::Strict => "; SameSite=Strict",
    });
    s
}

/// The CloudFront values found in `Cookie` headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CloudFrontCookies {
    pub expires: Option<String>,
    pub policy: Option<String>,
    pub signature: Option<String>,
    pub key_pair_id: Option<String>,
    pub hash_algorithm: Option<String>,
}

impl CloudFrontCookies {
    /// Reads `name=value; name=value` pairs; other cookies are ignored.
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = CloudFrontCookies::default();
        for h in headers {
            for pair in h.split(';') {
                let Some((k, v)) = pair.trim().split_once('=') else {
                    continue;
                };
                let v = Some(v.trim().to_owned());
                match k.trim() {
                    "CloudFront-Expires" => out.expires = v,
                    "CloudFront-Policy" => out.policy = v,
                    "CloudFront-Signature" => out.signature = v,
                    "CloudFront-Key-Pair-Id" => out.key_pair_id = v,
                    "CloudFront-Hash-Algorithm" => out.hash_algorithm = v,
                    _ => {}
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
pub enum SameSite {
    #[default]
    None,
    Lax,
    Strict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_attributes() {
        let c = set_cookie(
            "CloudFront-Policy",
            "abc",
            &CookieAttrs {
                domain: Some("example.com"),
                path: "/assets/a/v1/hls/720p/",
                secure: true,
                http_only: true,
                same_site: SameSite::None,
                expires: 2082758400,
                max_age: Some(7200),
            },
        );
        assert_eq!(
            c,
            "CloudFront-Policy=abc; Domain=example.com; Path=/assets/a/v1/hls/720p/; Expires=Tue, 01 Jan 2036 00:00:00 GMT; Max-Age=7200; Secure; HttpOnly; SameSite=None"
        );
    }

    #[test]
    fn dates_past_year_9999_do_not_panic() {
        assert_eq!(http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(LAST_HTTP_DATE + 1), http_date(LAST_HTTP_DATE));
    }

    #[test]
    fn parses_cookie_header() {
        let c = CloudFrontCookies::parse([
            "a=b; CloudFront-Policy=P; CloudFront-Signature=S",
            "CloudFront-Key-Pair-Id=K",
        ]);
        assert_eq!(c.policy.as_deref(), Some("P"));
        assert_eq!(c.signature.as_deref(), Some("S"));
        assert_eq!(c.key_pair_id.as_deref(), Some("K"));
        assert_eq!(c.expires, None);
    }
}
