//! Policy statements. CloudFront signs the exact policy bytes, so the JSON
//! is produced by serde from structs whose field order is CloudFront's
//! documented order (`Resource`, `Condition{DateLessThan, DateGreaterThan,
//! IpAddress}`), compact, with absent conditions left out.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// An IPv4 CIDR as CloudFront takes it (`AWS:SourceIp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0:?} is not an IPv4 address or CIDR (CloudFront policies take IPv4 only)")]
    BadCidr(String),
    #[error("expiry {expires} is not after start {starts}")]
    ExpiryNotAfterStart { expires: u64, starts: u64 },
    #[error("policy is not valid: {0}")]
    Malformed(String),
}

impl Cidr {
    /// `203.0.113.7` (→ /32) or `203.0.113.0/24`.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadCidr(s.chars().take(64).collect());
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                (a, p.parse::<u8>().map_err(|_| bad())?)
            }
            None => (s, 32),
        };
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p > 32 {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix: p })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        (u32::from(ip) & mask) == (u32::from(self.addr) & mask)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Serialize, Deserialize)]
struct Epoch {
    #[serde(rename = "AWS:EpochTime")]
    t: u64,
}

#[derive(Serialize, Deserialize)]
struct SourceIp {
    #[serde(rename = "AWS:SourceIp")]
    ip: String,
}

#[derive(Serialize, Deserialize)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    less: Epoch,
    #[serde(
        rename = "DateGreaterThan",
        skip_serializing_if = "Option::is_none",
        default
    )]
    greater: Option<Epoch>,
    #[serde(rename = "IpAddress", skip_serializing_if = "Option::is_none", default)]
    ip: Option<SourceIp>,
}

#[derive(Serialize, Deserialize)]
struct Statement {
    #[serde(rename = "Resource")]
    resource: String,
    #[serde(rename = "Condition")]
    condition: Condition,
}

#[derive(Serialize, Deserialize)]
struct Document {
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

/// A policy: what may be fetched (`resource`, wire form, `*`/`?`
/// wildcards) and when and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub resource: String,
    pub expires: u64,
    pub starts: Option<u64>,
    pub ip: Option<Cidr>,
}

impl Policy {
    pub fn new(
        resource: String,
        expires: u64,
        starts: Option<u64>,
        ip: Option<Cidr>,
    ) -> Result<Self, PolicyError> {
        if let Some(s) = starts
            && expires <= s
        {
            return Err(PolicyError::ExpiryNotAfterStart { expires, starts: s });
        }
        Ok(Policy {
            resource,
            expires,
            starts,
            ip,
        })
    }

    /// The exact JSON bytes CloudFront verifies.
    pub fn to_json(&self) -> String {
        let doc = Document {
            statement: vec![Statement {
                resource: self.resource.clone(),
                condition: Condition {
                    less: Epoch { t: self.expires },
                    greater: self.starts.map(|t| Epoch { t }),
                    ip: self.ip.map(|c| SourceIp { ip: c.to_string() }),
                },
            }],
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// Reads a policy as CloudFront would (the verifier's side).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PolicyError> {
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        let [st]: [Statement; 1] = doc
            .statement
            .try_into()
            .map_err(|_| PolicyError::Malformed("expected exactly one Statement".into()))?;
        let ip = st.condition.ip.map(|s| Cidr::parse(&s.ip)).transpose()?;
        Ok(Policy {
            resource: st.resource,
            expires: st.condition.less.t,
            starts: st.condition.greater.map(|e| e.t),
            ip,
        })
    }
}

/// `*` matches any run of characters (including `/` and `?`), `?` exactly
/// one character; everything else matches itself.
pub fn resource_matches(pattern: &str, url: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), url.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// `resource_matches(pattern, ·)` prepared once for many URLs: a plain
/// prefix (`…/720p/*`, the usual grant) or an exact URL compares bytes;
/// any other wildcard goes through `resource_matches`.
pub fn matcher(pattern: &str) -> impl Fn(&str) -> bool + '_ {
    let plain = |p: &str| !p.contains(['*', '?']);
    let prefix = pattern.strip_suffix('*').filter(|p| plain(p));
    let exact = plain(pattern);
    move |url: &str| match prefix {
        Some(p) => url.starts_with(p),
        None if exact => url == pattern,
        None => resource_matches(pattern, url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prepared_matcher_agrees_with_resource_matches() {
        let urls = [
            "https://h/a/720p/seg.ts",
            "https://h/a/720p",
            "https://h/a/720p60/x",
            "https://h/a/",
            "",
        ];
        for p in [
            "https://h/a/720p/*",
            "https://h/a/720p*",
            "https://h/a/720p",
            "https://h/a/*/seg.ts",
            "https://h/a/720p?*",
            "*",
            "",
        ] {
            let m = matcher(p);
            for u in urls {
                assert_eq!(m(u), resource_matches(p, u), "{p} on {u}");
            }
        }
    }

    #[test]
    fn json_field_order() {
        let p = Policy::new(
            "https://h/a/*".into(),
            20,
            Some(10),
            Some(Cidr::parse("1.2.3.4").unwrap()),
        )
        .unwrap();
        assert_eq!(
            p.to_json(),
            r#"{"Statement":[{"Resource":"https://h/a/*","Condition":{"DateLessThan":{"AWS:EpochTime":20},"DateGreaterThan":{"AWS:EpochTime":10},"IpAddress":{"AWS:SourceIp":"1.2.3.4/32"}}}]}"#
        );
        assert_eq!(Policy::from_json(p.to_json().as_bytes()).unwrap(), p);
    }

    #[test]
    fn canned_shape() {
        let p = Policy::new("https://h/x".into(), 5, None, None).unwrap();
        assert_eq!(
            p.to_json(),
            r#"{"Statement":[{"Resource":"https://h/x","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#
        );
    }

    #[test]
    fn cidrs() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().prefix, 8);
        assert!(
            Cidr::parse("10.0.0.0/8")
                .unwrap()
                .contains("10.9.9.9".parse().unwrap())
        );
        assert!(
            !Cidr::parse("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in [
            "::1",
            "2001:db8::/32",
            "1.2.3.4/33",
            "1.2.3/24",
            "x",
            "1.2.3.4/",
            "1.2.3.4/+1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_after_start() {
        assert!(Policy::new("r".into(), 10, Some(10), None).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(resource_matches("https://h/a/*", "https://h/a/b/c.ts?x=1"));
        assert!(resource_matches("https://h/a/?.ts", "https://h/a/1.ts"));
        assert!(!resource_matches("https://h/a/?.ts", "https://h/a/12.ts"));
        assert!(!resource_matches("https://h/a/*", "https://h/b/c"));
        assert!(resource_matches("*", ""));
        assert!(resource_matches("https://h/*/x*y", "https://h/1/2/xay"));
        assert!(!resource_matches("https://h/x", "https://h/x/"));
    }
}
