//! Identifier newtypes. Each parses once at the boundary (path, config,
//! JSON) and is valid from then on, so code further in never re-checks.
//! Parsing errors say what the shape must be, never echo huge input.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must match {shape}")]
pub struct IdError {
    pub what: &'static str,
    pub shape: &'static str,
}

fn check(
    s: &str,
    max: usize,
    first: fn(u8) -> bool,
    rest: fn(u8) -> bool,
    err: IdError,
) -> Result<(), IdError> {
    let b = s.as_bytes();
    match b.split_first() {
        Some((f, tail)) if b.len() <= max && first(*f) && tail.iter().all(|c| rest(*c)) => Ok(()),
        _ => Err(err),
    }
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $what:literal, $shape:literal, $max:expr, $first:expr, $rest:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $max, $first, $rest, IdError { what: $what, shape: $shape })?;
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
        /// In the OpenAPI description: a string of the shape `parse` accepts.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($what))
                    .pattern(Some(concat!("^", $shape, "$")))
                    .max_length(Some($max))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}
fn lower_alnum_dash(c: u8) -> bool {
    lower_alnum(c) || c == b'_' || c == b'-'
}
fn rendition_char(c: u8) -> bool {
    alnum_dash(c) || c == b'.'
}

id_type!(
    /// An asset: `[A-Za-z0-9][A-Za-z0-9_-]{0,63}`.
    AssetId, "asset id", "[A-Za-z0-9][A-Za-z0-9_-]{0,63}", 64, alnum, alnum_dash
);
id_type!(
    /// A tier name: `[a-z0-9][a-z0-9_-]{0,31}`.
    TierName, "tier name", "[a-z0-9][a-z0-9_-]{0,31}", 32, lower_alnum, lower_alnum_dash
);
id_type!(
    /// A rendition directory name (`720p`, `audio_en`): `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
    RenditionName, "rendition name", "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", 64, alnum, rendition_char
);
id_type!(
    /// A CloudFront public key id (key group member), e.g. `K2JCJMDEHXQW5F`.
    KeyPairId, "key pair id", "[A-Za-z0-9][A-Za-z0-9_-]{0,127}", 128, alnum, alnum_dash
);
id_type!(
    /// A job id: `[A-Za-z0-9][A-Za-z0-9_-]{0,127}`.
    JobId, "job id", "[A-Za-z0-9][A-Za-z0-9_-]{0,127}", 128, alnum, alnum_dash
);

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits.
/// A key-encryption key written as 64 hex digits (surrounding white
/// space ignored).
pub fn kek_hex(hex: &str) -> Result<[u8; 32], String> {
    hex32(hex.trim())
        .ok_or_else(|| "the key-encryption key must be 64 hex digits (32 random bytes)".to_owned())
}

pub fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

/// A content key as stored (in the asset record): the clear key only
/// wrapped, bound to its asset, id and rendition.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContentKey {
    /// 32 lower-case hex digits; the last path segment of the key URL.
    pub id: String,
    /// The encode version whose segments it encrypts (set at publish).
    #[serde(default)]
    pub version: u32,
    /// The rendition directory (`720p`, `audio`).
    pub rendition: String,
    /// The provider's wrapped form, base64.
    pub wrapped: String,
    /// Which provider wrapped it (`local:<kek id>`, `kms:<key id>`).
    pub wrapper: String,
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentKey")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("rendition", &self.rendition)
            .field("wrapped", &format_args!("[{} bytes]", self.wrapped.len()))
            .field("wrapper", &self.wrapper)
            .finish()
    }
}

/// A duration written as `"5m"`, `"2h 30m"`, `"500ms"` or whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "String")]
pub struct HumanDuration(pub std::time::Duration);

impl From<HumanDuration> for String {
    fn from(d: HumanDuration) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"30s\" or \"5m\"")
        })? {
            Raw::Secs(s) => Ok(HumanDuration(std::time::Duration::from_secs(s))),
            Raw::Text(t) => humantime::parse_duration(&t)
                .map(HumanDuration)
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"2h\""
                    ))
                }),
        }
    }
}

/// A base URL as configured (`server.public_url`, `cdn.base_url`), kept
/// without a trailing `/`, so `format!("{base}/path")` always has one
/// slash. The config checks that it is an absolute http(s) URL.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        BaseUrl(url.trim_end_matches('/').to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for BaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for BaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let b: [u8; 32] = std::array::from_fn(|i| (i * 8) as u8);
        assert_eq!(hex32(&hex(&b)), Some(b));
        assert_eq!(&hex(&[0, 15, 255]), "000fff");
        assert_eq!(hex32("zz"), None);
    }

    #[test]
    fn asset_ids() {
        assert!(AssetId::parse("a").is_ok());
        assert!(AssetId::parse("Big_Buck-Bunny1").is_ok());
        assert!(AssetId::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "-a",
            "_a",
            "a/b",
            "a..b",
            "a.b",
            "é",
            &"a".repeat(65),
            "a b",
        ] {
            assert!(AssetId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tier_names_are_lower_case() {
        assert!(TierName::parse("premium").is_ok());
        assert!(TierName::parse("Premium").is_err());
    }

    #[test]
    fn serde_rejects_bad_ids() {
        let r: Result<AssetId, _> = serde_json::from_str("\"../etc\"");
        assert!(r.is_err());
        let ok: AssetId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
    }
}
