//! Key tokens: what a viewer presents to the key endpoint. A token names
//! the asset, the renditions whose keys it opens, its expiry and, for a
//! tier that binds grants to the viewer's address, that address; it is
//! `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`.
//!
//! The gateway issues one with the master (cookie delivery: the
//! `playgate-keys` cookie, all the tier's renditions) or per media playlist
//! (URL delivery: `?kt=` on the key URI, that rendition only), expiring
//! with the CDN grant it goes with. Nothing but the MAC is trusted: the
//! payload is parsed only after the MAC matches.

use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::net::IpAddr;

/// Why a key token was refused (the problem body says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no key token: the master's cookie or the key URI's kt parameter carries one")]
    Missing,
    #[error("the key token is malformed or its signature does not match")]
    Invalid,
    #[error("the key token has expired; fetch the master again")]
    Expired,
    #[error("the key token is for another asset")]
    OtherAsset,
    #[error("the key token does not grant this rendition")]
    Rendition,
    #[error("the key token is bound to another client address")]
    OtherAddress,
}

pub struct KeyTokens {
    secret: Secret<Vec<u8>>,
}

/// A checked token's grant.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant<'a> {
    pub asset: &'a str,
    pub expires: u64,
    pub ip: Option<&'a str>,
    pub renditions: Vec<&'a str>,
}

impl KeyTokens {
    pub fn new(secret: &[u8]) -> Self {
        KeyTokens {
            secret: Secret::new(secret.to_vec()),
        }
    }

    /// A token secret derived from the key-encryption key (its own label,
    /// so a token MAC never equals anything the KEK computes elsewhere).
    pub fn derived_from(kek: &[u8]) -> Self {
        KeyTokens::new(&mac(kek, b"playgate key-token secret v1"))
    }

    /// A token for `renditions` of `asset` until `expires`.
    pub fn issue(
        &self,
        asset: &str,
        renditions: &[&str],
        expires: u64,
        ip: Option<IpAddr>,
    ) -> String {
        let ip = ip.map(|i| i.to_string()).unwrap_or_default();
        let payload = format!("1|{asset}|{expires}|{ip}|{}", renditions.join(","));
        let sig = mac(self.secret.expose(), payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(sig))
    }

    /// The grant of `token` if its MAC matches.
    fn open(&self, token: &str) -> Result<String, Refusal> {
        let (payload, sig) = token.split_once('.').ok_or(Refusal::Invalid)?;
        let payload = B64.decode(payload).map_err(|_| Refusal::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| Refusal::Invalid)?;
        let want = mac(self.secret.expose(), &payload);
        if sig.len() != want.len()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(&sig[..], &want[..]))
        {
            return Err(Refusal::Invalid);
        }
        String::from_utf8(payload).map_err(|_| Refusal::Invalid)
    }

    /// Whether `token` opens `rendition`'s key of `asset` for a client at
    /// `client` at time `now`.
    pub fn check(
        &self,
        token: &str,
        asset: &str,
        rendition: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<(), Refusal> {
        let payload = self.open(token)?;
        let g = parse(&payload).ok_or(Refusal::Invalid)?;
        if g.asset != asset {
            return Err(Refusal::OtherAsset);
        }
        if now >= g.expires {
            return Err(Refusal::Expired);
        }
        if let Some(ip) = g.ip {
            let same = client.is_some_and(|c| canonical(c).to_string() == ip);
            if !same {
                return Err(Refusal::OtherAddress);
            }
        }
        if !g.renditions.contains(&rendition) {
            return Err(Refusal::Rendition);
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address as IPv4 (how a dual-stack socket reports
/// an IPv4 client), as the CDN grant's address condition is written.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse(payload: &str) -> Option<Grant<'_>> {
    let mut f = payload.split('|');
    let (version, asset, expires, ip, renditions) =
        (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    if version != "1" || f.next().is_some() {
        return None;
    }
    Some(Grant {
        asset,
        expires: expires.parse().ok()?,
        ip: (!ip.is_empty()).then_some(ip),
        renditions: renditions.split(',').filter(|r| !r.is_empty()).collect(),
    })
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    PKey::hmac(key)
        .and_then(|k| {
            let mut s = Signer::new(MessageDigest::sha256(), &k)?;
            s.update(data)?;
            s.sign_to_vec()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_exactly_what_it_names_until_it_expires() {
        let t = KeyTokens::new(b"0123456789abcdef0123456789abcdef");
        let tok = t.issue("a", &["360p", "audio"], 1000, None);
        assert_eq!(t.check(&tok, "a", "360p", None, 999), Ok(()));
        assert_eq!(t.check(&tok, "a", "audio", None, 0), Ok(()));
        assert_eq!(
            t.check(&tok, "a", "720p", None, 999),
            Err(Refusal::Rendition)
        );
        assert_eq!(
            t.check(&tok, "a", "360", None, 999),
            Err(Refusal::Rendition),
            "a prefix of a granted name is another rendition"
        );
        assert_eq!(
            t.check(&tok, "b", "360p", None, 999),
            Err(Refusal::OtherAsset)
        );
        assert_eq!(
            t.check(&tok, "a", "360p", None, 1000),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn an_edited_or_foreign_token_is_invalid() {
        let t = KeyTokens::new(b"one secret");
        let tok = t.issue("a", &["360p"], 1000, None);
        let (p, s) = tok.split_once('.').unwrap();
        // The payload widened to another rendition, the MAC kept.
        let widened = B64.encode("1|a|1000||360p,720p");
        for bad in [
            format!("{widened}.{s}"),
            format!("{p}."),
            format!("{p}.{}", &s[1..]),
            p.to_owned(),
            String::new(),
            "..".to_owned(),
            "é.é".to_owned(),
        ] {
            assert_eq!(
                t.check(&bad, "a", "720p", None, 0),
                Err(Refusal::Invalid),
                "{bad}"
            );
        }
        let other = KeyTokens::new(b"another secret");
        assert_eq!(
            other.check(&tok, "a", "360p", None, 0),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn a_bound_token_needs_the_same_client() {
        let t = KeyTokens::derived_from(b"kek");
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let tok = t.issue("a", &["360p"], 1000, Some(ip));
        assert_eq!(t.check(&tok, "a", "360p", Some(ip), 0), Ok(()));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(t.check(&tok, "a", "360p", Some(mapped), 0), Ok(()));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            t.check(&tok, "a", "360p", Some(other), 0),
            Err(Refusal::OtherAddress)
        );
        assert_eq!(
            t.check(&tok, "a", "360p", None, 0),
            Err(Refusal::OtherAddress)
        );
    }
}
