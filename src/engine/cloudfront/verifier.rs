//! CloudFront's acceptance checks, as the Developer Guide describes them:
//! signed-URL parameters win over cookies; the key pair id must be in the
//! ring; the signature must verify over the canned policy rebuilt from the
//! request URL (minus our parameters) or over the decoded custom policy;
//! `DateLessThan` must be in the future, `DateGreaterThan` in the past,
//! the client IP inside the CIDR, and the resource pattern must match the
//! request URL. Used by the local edge and the URL-mode playlist endpoint.

use super::HashAlg;
use super::cookies::CloudFrontCookies;
use super::encode::cf_base64_decode;
use super::keys::{KeyKind, PublicKeys};
use super::policy::{Policy, resource_matches};
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use std::net::IpAddr;

/// Why a request was refused. The edge never tells the client which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing signature, key pair id, or policy/expires")]
    Missing,
    #[error("malformed signing parameters")]
    Malformed,
    #[error("key pair id is not in the trusted key group")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("client IP is outside the policy's range")]
    IpNotAllowed,
    #[error("resource does not match the request URL")]
    ResourceMismatch,
}

/// The signing values of one request, from its query or its cookies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub expires: Option<String>,
    pub policy: Option<String>,
    pub signature: Option<String>,
    pub key_pair_id: Option<String>,
    pub hash_algorithm: Option<String>,
}

impl From<CloudFrontCookies> for Credentials {
    fn from(c: CloudFrontCookies) -> Self {
        Credentials {
            expires: c.expires,
            policy: c.policy,
            signature: c.signature,
            key_pair_id: c.key_pair_id,
            hash_algorithm: c.hash_algorithm,
        }
    }
}

impl From<&super::signer::Signature> for Credentials {
    /// The credentials a client presents after receiving this signature.
    fn from(sig: &super::signer::Signature) -> Self {
        let (expires, policy) = match &sig.grant {
            super::signer::Grant::Canned { expires } => (Some(expires.to_string()), None),
            super::signer::Grant::Custom { policy_b64 } => (None, Some(policy_b64.clone())),
        };
        Credentials {
            expires,
            policy,
            signature: Some(sig.signature.clone()),
            key_pair_id: Some(sig.key_pair_id.to_string()),
            hash_algorithm: (sig.hash == HashAlg::Sha256).then(|| "SHA256".to_owned()),
        }
    }
}

/// Splits a wire-form URL into the URL without CloudFront's parameters and
/// the credentials those parameters carried (`None` if it had no
/// `Signature`). Other query parameters keep their order and bytes.
pub fn split_signed_url(url: &str) -> (String, Option<Credentials>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut c = Credentials::default();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "Expires" => &mut c.expires,
            "Policy" => &mut c.policy,
            "Signature" => &mut c.signature,
            "Key-Pair-Id" => &mut c.key_pair_id,
            "Hash-Algorithm" => &mut c.hash_algorithm,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        *slot = Some(v.to_owned());
    }
    let stripped = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    if c.signature.is_some() {
        (stripped, Some(c))
    } else {
        (url.to_owned(), None)
    }
}

fn verify_sig(ring: &PublicKeys, c: &Credentials, data: &[u8]) -> Result<(), Rejection> {
    let id = c.key_pair_id.as_deref().ok_or(Rejection::Missing)?;
    let key = ring.get(id).ok_or(Rejection::UnknownKey)?;
    let sig = c
        .signature
        .as_deref()
        .and_then(cf_base64_decode)
        .ok_or(Rejection::Malformed)?;
    let md = match c.hash_algorithm.as_deref() {
        None | Some("SHA1") => MessageDigest::sha1(),
        Some("SHA256") => MessageDigest::sha256(),
        Some(_) => return Err(Rejection::Malformed),
    };
    let mut v = Verifier::new(md, key.pkey()).map_err(|_| Rejection::BadSignature)?;
    if key.kind == KeyKind::Rsa {
        v.set_rsa_padding(openssl::rsa::Padding::PKCS1)
            .map_err(|_| Rejection::BadSignature)?;
    }
    v.update(data).map_err(|_| Rejection::BadSignature)?;
    match v.verify(&sig) {
        Ok(true) => Ok(()),
        _ => Err(Rejection::BadSignature),
    }
}

/// Checks `creds` for a request to `url` (wire form, without CloudFront's
/// parameters) from `client_ip` at `now`. Returns the policy that allowed it.
pub fn verify(
    ring: &PublicKeys,
    url: &str,
    creds: &Credentials,
    client_ip: Option<IpAddr>,
    now: u64,
) -> Result<Policy, Rejection> {
    if creds.signature.is_none() || creds.key_pair_id.is_none() {
        return Err(Rejection::Missing);
    }
    let policy = match (&creds.policy, &creds.expires) {
        (Some(p), _) => {
            let bytes = cf_base64_decode(p).ok_or(Rejection::Malformed)?;
            verify_sig(ring, creds, &bytes)?;
            Policy::from_json(&bytes).map_err(|_| Rejection::Malformed)?
        }
        (None, Some(e)) => {
            let expires: u64 = e.parse().map_err(|_| Rejection::Malformed)?;
            let policy = Policy {
                resource: url.to_owned(),
                expires,
                starts: None,
                ip: None,
            };
            verify_sig(ring, creds, policy.to_json().as_bytes())?;
            policy
        }
        (None, None) => return Err(Rejection::Missing),
    };
    if now >= policy.expires {
        return Err(Rejection::Expired);
    }
    if let Some(s) = policy.starts
        && now <= s
    {
        return Err(Rejection::NotYetValid);
    }
    if let Some(cidr) = policy.ip {
        match client_ip {
            Some(IpAddr::V4(ip)) if cidr.contains(ip) => {}
            Some(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_some_and(|v4| cidr.contains(v4)) => {}
            _ => return Err(Rejection::IpNotAllowed),
        }
    }
    if !resource_matches(&policy.resource, url) {
        return Err(Rejection::ResourceMismatch);
    }
    Ok(policy)
}

/// Verifies a request the way CloudFront does: signed-URL parameters first,
/// then cookies.
pub fn verify_request(
    ring: &PublicKeys,
    url: &str,
    cookies: Option<Credentials>,
    client_ip: Option<IpAddr>,
    now: u64,
) -> Result<Policy, Rejection> {
    let (stripped, from_url) = split_signed_url(url);
    match (from_url, cookies) {
        (Some(c), _) => verify(ring, &stripped, &c, client_ip, now),
        (None, Some(c)) => verify(ring, url, &c, client_ip, now),
        (None, None) => Err(Rejection::Missing),
    }
}
