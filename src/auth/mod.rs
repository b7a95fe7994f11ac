//! Authentication: who is calling. Viewers present JWTs; backends and
//! operators present JWTs with scopes or static API keys (stored as
//! SHA-256 hashes, compared in constant time). `Authenticator` turns a
//! credential into a `Principal`; the HTTP extractors decide what each
//! route requires. Also: tier-claim paths and dev token minting.

pub mod jwt;

use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The scopes playgate understands.
pub const SCOPE_SIGN: &str = "playgate:sign";
pub const SCOPE_INGEST: &str = "playgate:ingest";
pub const SCOPE_ADMIN: &str = "playgate:admin";

/// A verified caller.
#[derive(Debug, Clone)]
pub enum Principal {
    Token(Arc<jwt::Verified>),
    ApiKey { name: String, scopes: Vec<String> },
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        let scopes = match self {
            Principal::Token(v) => &v.scopes,
            Principal::ApiKey { scopes, .. } => scopes,
        };
        scopes.iter().any(|s| s == scope)
    }

    /// A name for audit logs (never the credential).
    pub fn who(&self) -> String {
        match self {
            Principal::Token(v) => format!("{}:{}", v.issuer, v.subject),
            Principal::ApiKey { name, .. } => format!("api-key:{name}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    Missing,
    #[error(transparent)]
    Token(#[from] jwt::TokenError),
    #[error("API key not recognised")]
    BadApiKey,
}

struct ApiKey {
    name: String,
    sha256: [u8; 32],
    scopes: Vec<String>,
}

pub struct Authenticator {
    pub issuers: jwt::Issuers,
    api_keys: Vec<ApiKey>,
}

impl Authenticator {
    pub fn from_config(auth: &crate::config::AuthConfig) -> Result<Self, jwt::IssuerError> {
        let issuers = jwt::Issuers::from_config(&auth.issuers)?;
        let api_keys = auth
            .api_keys
            .iter()
            .filter_map(|k| {
                crate::domain::hex32(k.sha256.expose()).map(|sha256| ApiKey {
                    name: k.name.clone(),
                    sha256,
                    scopes: k.scopes.clone(),
                })
            })
            .collect();
        Ok(Authenticator { issuers, api_keys })
    }

    /// A JWT has two dots; anything else is tried as an API key.
    pub async fn authenticate(&self, credential: &str, now: u64) -> Result<Principal, AuthFailure> {
        if credential.len() > jwt::MAX_TOKEN_BYTES {
            return Err(jwt::TokenError::TooLarge.into());
        }
        if credential.bytes().filter(|b| *b == b'.').count() == 2 {
            return Ok(Principal::Token(
                self.issuers.verify(credential, now).await?,
            ));
        }
        let presented = openssl::sha::sha256(credential.as_bytes());
        // Compare against every key without stopping early.
        let mut found: Option<&ApiKey> = None;
        for k in &self.api_keys {
            if bool::from(k.sha256.ct_eq(&presented)) {
                found = Some(k);
            }
        }
        found
            .map(|k| Principal::ApiKey {
                name: k.name.clone(),
                scopes: k.scopes.clone(),
            })
            .ok_or(AuthFailure::BadApiKey)
    }
}

use crate::config::IssuerConfig;
use crate::domain::TierName;
use serde_json::{Map, Value};

/// A claim path such as `tier`, `app_metadata.tier` or the namespaced
/// `https://example.com/claims.tier`. A path that starts with `http://` or
/// `https://` keeps everything up to the first `.` after its last `/` as
/// one segment (namespaced claim names contain dots of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    pub fn parse(s: &str) -> Self {
        if s.starts_with("https://") || s.starts_with("http://") {
            let slash = s.rfind('/').unwrap_or(0);
            match s[slash..].find('.') {
                Some(dot) => {
                    let (ns, rest) = s.split_at(slash + dot);
                    let mut segs = vec![ns.to_owned()];
                    segs.extend(rest[1..].split('.').map(str::to_owned));
                    ClaimPath(segs)
                }
                None => ClaimPath(vec![s.to_owned()]),
            }
        } else {
            ClaimPath(s.split('.').map(str::to_owned).collect())
        }
    }

    pub fn get<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(claims, |v, k| v.get(k))
    }

    pub fn insert(&self, claims: &mut Map<String, Value>, value: Value) {
        let Some((last, parents)) = self.0.split_last() else {
            return;
        };
        let mut cur = claims;
        for p in parents {
            let entry = cur
                .entry(p.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(m) = entry else { return };
            cur = m;
        }
        cur.insert(last.clone(), value);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(
        "issuer {0:?} is not marked dev = true; playgate mints tokens only for development issuers"
    )]
    NotDev(String),
    #[error("issuer {0:?} has no private_key_file")]
    NoKey(String),
    #[error("cannot read the issuer's private key: {0}")]
    Key(String),
    #[error("issuer {name:?} allows {allowed:?}; dev tokens are RS256 or ES256")]
    Algorithm { name: String, allowed: Vec<String> },
}

/// Mints a viewer JWT with a dev issuer's private key.
pub fn mint_dev_token(
    issuer: &IssuerConfig,
    subject: &str,
    tier: &TierName,
    scopes: &[String],
    now: u64,
    ttl: std::time::Duration,
) -> Result<String, MintError> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    if !issuer.dev {
        return Err(MintError::NotDev(issuer.name.clone()));
    }
    let path = issuer
        .private_key_file
        .as_ref()
        .ok_or_else(|| MintError::NoKey(issuer.name.clone()))?;
    let pem =
        std::fs::read(path).map_err(|e| MintError::Key(format!("{}: {e}", path.display())))?;
    let (alg, key) = if issuer.algorithms.iter().any(|a| a == "RS256") {
        (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem))
    } else if issuer.algorithms.iter().any(|a| a == "ES256") {
        (Algorithm::ES256, EncodingKey::from_ec_pem(&pem))
    } else {
        return Err(MintError::Algorithm {
            name: issuer.name.clone(),
            allowed: issuer.algorithms.clone(),
        });
    };
    let key =
        key.map_err(|_| MintError::Key(format!("{}: not a PEM key for {alg:?}", path.display())))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.issuer.clone().into());
    claims.insert("sub".into(), subject.into());
    match issuer.audience.as_slice() {
        [] => {}
        [one] => {
            claims.insert("aud".into(), one.clone().into());
        }
        many => {
            claims.insert("aud".into(), many.to_vec().into());
        }
    }
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl.as_secs()).into());
    if !scopes.is_empty() {
        claims.insert("scope".into(), scopes.join(" ").into());
    }
    ClaimPath::parse(&issuer.tier_claim).insert(&mut claims, tier.as_str().into());
    encode(&Header::new(alg), &Value::Object(claims), &key)
        .map_err(|e| MintError::Key(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_paths() {
        let c = json!({"tier": "a", "app": {"tier": "b"}, "https://ex.com/claims": {"tier": "c"}, "https://ex.com/tier": "d"});
        assert_eq!(ClaimPath::parse("tier").get(&c), Some(&json!("a")));
        assert_eq!(ClaimPath::parse("app.tier").get(&c), Some(&json!("b")));
        assert_eq!(
            ClaimPath::parse("https://ex.com/claims.tier").get(&c),
            Some(&json!("c"))
        );
        assert_eq!(
            ClaimPath::parse("https://ex.com/tier").get(&c),
            Some(&json!("d"))
        );
        let mut m = Map::new();
        ClaimPath::parse("https://ex.com/claims.tier").insert(&mut m, json!("x"));
        assert_eq!(
            Value::Object(m),
            json!({"https://ex.com/claims": {"tier": "x"}})
        );
    }
}
