//! Key parsing and the key ring. Keys are parsed once at start-up; a bad
//! key stops start-up with a message naming the file, never the key.
//!
//! Accepted: RSA ≥ 2048 bits (PKCS#1 `RSA PRIVATE KEY`, PKCS#8 `PRIVATE
//! KEY`) and ECDSA P-256 (SEC1 `EC PRIVATE KEY`, PKCS#8); public keys as
//! SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`.

use crate::domain::KeyPairId;
use crate::secret::Secret;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcdsaP256,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{what}: not a PEM {expected} key")]
    NotPem {
        what: String,
        expected: &'static str,
    },
    #[error("{what}: unsupported key: {reason}")]
    Unsupported { what: String, reason: String },
    #[error("key {0}: has a private key and a public key that do not match")]
    Mismatch(KeyPairId),
    #[error("key {0}: the active key has no private key")]
    NoPrivateKey(KeyPairId),
    #[error("signing.active {0} is not in the key ring")]
    UnknownActive(KeyPairId),
    #[error("key pair id {0} appears twice")]
    Duplicate(KeyPairId),
}

fn kind_of<T: HasPublic>(what: &str, key: &PKeyRef<T>) -> Result<KeyKind, KeyError> {
    let unsupported = |reason: String| KeyError::Unsupported {
        what: what.to_owned(),
        reason,
    };
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if bits < 2048 {
                Err(unsupported(format!(
                    "RSA key of {bits} bits; CloudFront needs 2048 or more"
                )))
            } else {
                Ok(KeyKind::Rsa)
            }
        }
        Id::EC => {
            let ec = key
                .ec_key()
                .map_err(|_| unsupported("unreadable EC key".into()))?;
            match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyKind::EcdsaP256),
                other => Err(unsupported(format!(
                    "EC curve {:?}; only P-256 (prime256v1) is supported",
                    other.and_then(|n| n.short_name().ok()).unwrap_or("unknown")
                ))),
            }
        }
        other => Err(unsupported(format!(
            "key type {other:?}; use RSA or ECDSA P-256"
        ))),
    }
}

/// A private key for signing. `Debug` never shows key material.
pub struct SigningKey {
    pub id: KeyPairId,
    pub kind: KeyKind,
    pkey: PKey<Private>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Parses a private key PEM. `what` names its origin in errors.
    pub fn from_pem(id: KeyPairId, pem: &[u8], what: &str) -> Result<Self, KeyError> {
        let pkey = PKey::private_key_from_pem(pem).map_err(|_| KeyError::NotPem {
            what: what.to_owned(),
            expected: "private (PKCS#1, PKCS#8 or SEC1)",
        })?;
        let kind = kind_of(what, &pkey)?;
        Ok(SigningKey { id, kind, pkey })
    }

    pub fn from_file(id: KeyPairId, path: &Path) -> Result<Self, KeyError> {
        let pem = read(path)?;
        Self::from_pem(id, &pem, &path.display().to_string())
    }

    /// From a configured file or environment variable.
    pub fn from_source(id: KeyPairId, source: &Pem) -> Result<Self, KeyError> {
        Self::from_pem(id, &read_source(source)?, &source.describe())
    }

    pub(crate) fn pkey(&self) -> &PKeyRef<Private> {
        &self.pkey
    }

    /// The matching public key.
    pub fn public(&self) -> Result<VerifyKey, KeyError> {
        let der = self
            .pkey
            .public_key_to_der()
            .map_err(|e| KeyError::Unsupported {
                what: self.id.to_string(),
                reason: e.to_string(),
            })?;
        let pkey = PKey::public_key_from_der(&der).map_err(|e| KeyError::Unsupported {
            what: self.id.to_string(),
            reason: e.to_string(),
        })?;
        Ok(VerifyKey {
            id: self.id.clone(),
            kind: self.kind,
            pkey,
        })
    }
}

/// A public key for verifying.
pub struct VerifyKey {
    pub id: KeyPairId,
    pub kind: KeyKind,
    pkey: PKey<Public>,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}

impl VerifyKey {
    pub fn from_pem(id: KeyPairId, pem: &[u8], what: &str) -> Result<Self, KeyError> {
        let pkey = PKey::public_key_from_pem(pem)
            .or_else(|_| Rsa::public_key_from_pem_pkcs1(pem).and_then(PKey::from_rsa))
            .map_err(|_| KeyError::NotPem {
                what: what.to_owned(),
                expected: "public (SPKI or PKCS#1)",
            })?;
        let kind = kind_of(what, &pkey)?;
        Ok(VerifyKey { id, kind, pkey })
    }

    pub fn from_file(id: KeyPairId, path: &Path) -> Result<Self, KeyError> {
        let pem = read(path)?;
        Self::from_pem(id, &pem, &path.display().to_string())
    }

    /// From a configured file or environment variable.
    pub fn from_source(id: KeyPairId, source: &Pem) -> Result<Self, KeyError> {
        Self::from_pem(id, &read_source(source)?, &source.describe())
    }

    pub(crate) fn pkey(&self) -> &PKeyRef<Public> {
        &self.pkey
    }

    fn same_key(&self, other: &VerifyKey) -> bool {
        self.pkey.public_eq(&other.pkey)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|e| KeyError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn read_source(source: &Pem) -> Result<Vec<u8>, KeyError> {
    source.bytes().map_err(|e| KeyError::Read {
        path: source.describe(),
        reason: e.to_string(),
    })
}

/// The keys playgate signs and verifies with: one active signer, every key
/// a verifier. Rotation: add the new key, make it active, and remove the
/// old one only after its last signature has expired.
#[derive(Debug)]
pub struct KeyRing {
    active: SigningKey,
    verifiers: PublicKeys,
}

/// The keys a verifier trusts (CloudFront's trusted key group).
#[derive(Debug, Default)]
pub struct PublicKeys(HashMap<KeyPairId, VerifyKey>);

impl PublicKeys {
    pub fn new(keys: Vec<VerifyKey>) -> Result<Self, KeyError> {
        let mut map = HashMap::new();
        for k in keys {
            if map.contains_key(&k.id) {
                return Err(KeyError::Duplicate(k.id));
            }
            map.insert(k.id.clone(), k);
        }
        Ok(PublicKeys(map))
    }

    pub fn get(&self, id: &str) -> Option<&VerifyKey> {
        self.0.get(id)
    }
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(key: SigningKey) -> Result<Self, KeyError> {
        let public = key.public()?;
        Ok(KeyRing {
            active: key,
            verifiers: PublicKeys::new(vec![public])?,
        })
    }

    /// Builds a ring from an active key and extra verify-only keys.
    pub fn new(active: SigningKey, others: Vec<VerifyKey>) -> Result<Self, KeyError> {
        let mut all = vec![active.public()?];
        all.extend(others);
        Ok(KeyRing {
            active,
            verifiers: PublicKeys::new(all)?,
        })
    }

    /// From the configured keys: `active_id` signs, every key verifies.
    pub fn from_specs(active_id: &KeyPairId, keys: &[KeySpec]) -> Result<Self, KeyError> {
        let mut active = None;
        let mut others = Vec::new();
        for k in keys {
            let private = match &k.private_key {
                Some(p) if k.id == *active_id => Some(SigningKey::from_source(k.id.clone(), p)?),
                _ => None,
            };
            let public = match &k.public_key {
                Some(p) => Some(VerifyKey::from_source(k.id.clone(), p)?),
                None => None,
            };
            match private {
                Some(sk) => {
                    if let Some(pk) = &public
                        && !sk.public()?.same_key(pk)
                    {
                        return Err(KeyError::Mismatch(k.id.clone()));
                    }
                    if active.replace(sk).is_some() {
                        return Err(KeyError::Duplicate(k.id.clone()));
                    }
                }
                None => match public {
                    Some(pk) => others.push(pk),
                    None if k.id == *active_id => return Err(KeyError::NoPrivateKey(k.id.clone())),
                    None => {
                        // A non-active key given only as a private key: verify with its public half.
                        if let Some(p) = &k.private_key {
                            others.push(SigningKey::from_source(k.id.clone(), p)?.public()?);
                        }
                    }
                },
            }
        }
        let active = active.ok_or_else(|| KeyError::UnknownActive(active_id.clone()))?;
        Self::new(active, others)
    }

    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every key that verifies: the active one and the rotating ones.
    pub fn public_keys(&self) -> &PublicKeys {
        &self.verifiers
    }
}

/// Writes a new private key and its public key (PEM) for `playgate keygen`.
pub fn generate(ec: bool) -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
    let pkey = if ec {
        let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?
    } else {
        PKey::from_rsa(Rsa::generate(2048)?)?
    };
    Ok((pkey.private_key_to_pem_pkcs8()?, pkey.public_key_to_pem()?))
}
/// Where a PEM key comes from: `*_file` (a mounted secret, read when the
/// keys are loaded) or `*_env` (a variable the platform injects, e.g. ECS
/// from Secrets Manager; read with the config). `Debug` names the source,
/// never the key.
#[derive(Clone)]
pub enum Pem {
    File(PathBuf),
    Env { var: String, text: Secret<String> },
}

impl Pem {
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p),
            Pem::Env { text, .. } => Ok(text.expose().as_bytes().to_vec()),
        }
    }

    /// The file's path or `$VAR`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Env { var, .. } => format!("${var}"),
        }
    }
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pem({})", self.describe())
    }
}
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub id: KeyPairId,
    pub private_key: Option<Pem>,
    pub public_key: Option<Pem>,
}
