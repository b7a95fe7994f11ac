//! Signing. Private-key operations go through OpenSSL (RSA blinding on,
//! constant-time), never through the `rsa` crate.
//!
//! Canned policy only when there is no start time, no IP and the resource
//! is the URL itself; custom otherwise. A custom policy is never sent as a
//! canned-style `Expires=` URL.

use super::HashAlg;
use super::encode::{UrlError, cf_base64, wire_pattern, wire_url};
use super::keys::{KeyKind, SigningKey};
use super::policy::{Cidr, Policy, PolicyError};
use crate::domain::KeyPairId;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("url: {0}")]
    Url(#[from] UrlError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("signing failed")]
    Crypto,
}

/// What to sign besides the URL.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    pub expires: u64,
    pub starts: Option<u64>,
    pub ip: Option<Cidr>,
    /// A resource pattern other than the URL (wildcards allowed).
    pub resource: Option<String>,
    pub hash: HashAlg,
}

/// Canned (`Expires`) or custom (`Policy`) — what travels with the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Canned { expires: u64 },
    Custom { policy_b64: String },
}

/// A signature and what CloudFront needs to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub grant: Grant,
    pub signature: String,
    pub key_pair_id: KeyPairId,
    pub hash: HashAlg,
}

fn digest(hash: HashAlg) -> MessageDigest {
    match hash {
        HashAlg::Sha1 => MessageDigest::sha1(),
        HashAlg::Sha256 => MessageDigest::sha256(),
    }
}

/// Signs raw bytes: RSASSA-PKCS1-v1_5 or ECDSA (DER) over SHA-1/SHA-256.
pub fn sign_bytes(key: &SigningKey, data: &[u8], hash: HashAlg) -> Result<Vec<u8>, SignError> {
    let mut signer = Signer::new(digest(hash), key.pkey()).map_err(|_| SignError::Crypto)?;
    if key.kind == KeyKind::Rsa {
        signer
            .set_rsa_padding(openssl::rsa::Padding::PKCS1)
            .map_err(|_| SignError::Crypto)?;
    }
    signer.update(data).map_err(|_| SignError::Crypto)?;
    signer.sign_to_vec().map_err(|_| SignError::Crypto)
}

impl Signature {
    /// Signs a policy given as exact bytes (custom policy).
    pub fn over_policy(
        key: &SigningKey,
        policy_json: &str,
        hash: HashAlg,
    ) -> Result<Self, SignError> {
        let sig = sign_bytes(key, policy_json.as_bytes(), hash)?;
        Ok(Signature {
            grant: Grant::Custom {
                policy_b64: cf_base64(policy_json.as_bytes()),
            },
            signature: cf_base64(&sig),
            key_pair_id: key.id.clone(),
            hash,
        })
    }

    /// Signs for `wire` (a URL already in wire form) as the options say.
    pub fn for_url(key: &SigningKey, wire: &str, opts: &SignOptions) -> Result<Self, SignError> {
        let resource = match &opts.resource {
            Some(r) => Some(wire_pattern(r)?),
            None => None,
        };
        let canned = opts.starts.is_none()
            && opts.ip.is_none()
            && resource.as_deref().is_none_or(|r| r == wire);
        let policy = Policy::new(
            resource.unwrap_or_else(|| wire.to_owned()),
            opts.expires,
            opts.starts,
            opts.ip,
        )?;
        let json = policy.to_json();
        if canned {
            let sig = sign_bytes(key, json.as_bytes(), opts.hash)?;
            Ok(Signature {
                grant: Grant::Canned {
                    expires: opts.expires,
                },
                signature: cf_base64(&sig),
                key_pair_id: key.id.clone(),
                hash: opts.hash,
            })
        } else {
            Self::over_policy(key, &json, opts.hash)
        }
    }

    /// Signs a custom policy for a resource pattern (cookies, URL delivery).
    pub fn for_resource(
        key: &SigningKey,
        pattern: &str,
        opts: &SignOptions,
    ) -> Result<Self, SignError> {
        let policy = Policy::new(wire_pattern(pattern)?, opts.expires, opts.starts, opts.ip)?;
        Self::over_policy(key, &policy.to_json(), opts.hash)
    }

    /// `Expires|Policy`, `Signature`, `Key-Pair-Id`[, `Hash-Algorithm`].
    pub fn query(&self) -> String {
        let mut q = String::with_capacity(self.signature.len() + 600);
        match &self.grant {
            Grant::Canned { expires } => {
                q.push_str("Expires=");
                q.push_str(&expires.to_string());
            }
            Grant::Custom { policy_b64 } => {
                q.push_str("Policy=");
                q.push_str(policy_b64);
            }
        }
        q.push_str("&Signature=");
        q.push_str(&self.signature);
        q.push_str("&Key-Pair-Id=");
        q.push_str(self.key_pair_id.as_str());
        if self.hash == HashAlg::Sha256 {
            q.push_str("&Hash-Algorithm=SHA256");
        }
        q
    }

    /// `url` with the signature appended after any existing query.
    pub fn append_to(&self, wire: &str) -> String {
        let sep = if wire.contains('?') { '&' } else { '?' };
        format!("{wire}{sep}{}", self.query())
    }

    /// Cookie names and values, in the order they are set.
    pub fn cookies(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(4);
        match &self.grant {
            Grant::Canned { expires } => out.push(("CloudFront-Expires", expires.to_string())),
            Grant::Custom { policy_b64 } => out.push(("CloudFront-Policy", policy_b64.clone())),
        }
        out.push(("CloudFront-Signature", self.signature.clone()));
        out.push(("CloudFront-Key-Pair-Id", self.key_pair_id.to_string()));
        if self.hash == HashAlg::Sha256 {
            out.push(("CloudFront-Hash-Algorithm", "SHA256".to_owned()));
        }
        out
    }
}

/// Signs `url` and returns the signed URL in wire form.
pub fn sign_url(key: &SigningKey, url: &str, opts: &SignOptions) -> Result<String, SignError> {
    let wire = wire_url(url)?;
    Ok(Signature::for_url(key, &wire, opts)?.append_to(&wire))
}
