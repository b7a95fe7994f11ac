//! Viewer and service JWTs. Each configured issuer has its own allowed
//! algorithms, key, audience, leeway and tier claim. A token is matched to
//! its issuer by the (unverified) `iss`, then verified strictly against
//! that issuer alone: the header's `alg` must be in the issuer's list and
//! must fit the key (so an HS256 token "signed" with an RSA public key is
//! refused), `exp` is required, `nbf` and `exp` are checked against our
//! `Clock` with the issuer's leeway, and with an audience configured `aud`
//! is required and must be a string or an array of strings naming it.
//!
//! Verified claims are cached by the SHA-256 of the token (bounded) and
//! re-checked for expiry on every hit. Tokens never reach logs or errors.

use crate::auth::ClaimPath;
use crate::config::IssuerConfig;
use crate::domain::TierName;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;
use std::time::Duration;

pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused (logged; clients get a generic 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token larger than 8 KiB")]
    TooLarge,
    #[error("token is malformed")]
    Malformed,
    #[error("token issuer is not trusted")]
    UnknownIssuer,
    #[error("token algorithm is not allowed for its issuer")]
    AlgorithmNotAllowed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token has no exp claim")]
    MissingExp,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token key id is unknown")]
    UnknownKid,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub issuer: String,
    pub subject: String,
    /// The tier claim (or the issuer's default); `None` when neither exists.
    pub tier: Option<TierName>,
    /// The raw tier claim when it is present but not a valid tier name.
    pub bad_tier: bool,
    pub scopes: Vec<String>,
    pub exp: u64,
}

enum KeySource {
    Static(DecodingKey),
    Jwks(Arc<Jwks>),
}

struct Issuer {
    cfg: IssuerConfig,
    algorithms: Vec<Algorithm>,
    key: KeySource,
}

/// A JWKS endpoint's keys: fetched at start, refreshed in the background,
/// and refetched (at most once per `min_interval`) when a token names a
/// `kid` we do not have. A failed fetch keeps the last good keys.
pub struct Jwks {
    pub issuer: String,
    url: String,
    client: reqwest::Client,
    keys: std::sync::RwLock<std::collections::HashMap<String, DecodingKey>>,
    last_attempt: tokio::sync::Mutex<Option<std::time::Instant>>,
    healthy: std::sync::atomic::AtomicBool,
    min_interval: Duration,
    pub refresh_every: Duration,
}

impl Jwks {
    /// Fetches and replaces the key set; on failure the old keys stay.
    pub async fn refresh(&self) -> Result<usize, String> {
        let result = async {
            let resp = self
                .client
                .get(&self.url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| format!("fetch: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("status {}", resp.status()));
            }
            let set: jsonwebtoken::jwk::JwkSet =
                resp.json().await.map_err(|e| format!("parse: {e}"))?;
            let mut keys = std::collections::HashMap::new();
            for jwk in &set.keys {
                if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                    keys.insert(kid.clone(), key);
                }
            }
            if keys.is_empty() {
                return Err("no usable keys with a kid".into());
            }
            Ok(keys)
        }
        .await;
        match result {
            Ok(keys) => {
                let n = keys.len();
                if let Ok(mut k) = self.keys.write() {
                    *k = keys;
                }
                self.healthy
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::debug!(issuer = %self.issuer, keys = n, "JWKS refreshed");
                Ok(n)
            }
            Err(e) => {
                self.healthy
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(issuer = %self.issuer, reason = %e, "JWKS refresh failed; keeping the last good keys");
                Err(e)
            }
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    /// Refetches unless another refetch happened within `min_interval`.
    /// Concurrent callers wait for one fetch rather than each making one.
    async fn refetch_for_unknown_kid(&self) {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let _ = self.refresh().await;
    }

    pub fn healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub struct Issuers {
    issuers: Vec<Issuer>,
    cache: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

#[derive(Debug, thiserror::Error)]
#[error("issuer {issuer}: {reason}")]
pub struct IssuerError {
    issuer: String,
    reason: String,
}

fn parse_alg(s: &str) -> Option<Algorithm> {
    Some(match s {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" => Algorithm::HS256,
        _ => return None,
    })
}

impl Issuers {
    pub fn from_config(cfgs: &[IssuerConfig]) -> Result<Self, IssuerError> {
        let mut issuers = Vec::new();
        for cfg in cfgs {
            let err = |reason: String| IssuerError {
                issuer: cfg.name.clone(),
                reason,
            };
            let algorithms = cfg
                .algorithms
                .iter()
                .map(|a| parse_alg(a).ok_or_else(|| err(format!("unsupported algorithm {a:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let key = if let Some(url) = &cfg.jwks_url {
                if algorithms.contains(&Algorithm::HS256) {
                    return Err(err("HS256 cannot be combined with a JWKS".into()));
                }
                KeySource::Jwks(Arc::new(Jwks {
                    issuer: cfg.name.clone(),
                    url: url.clone(),
                    client: reqwest::Client::new(),
                    keys: Default::default(),
                    last_attempt: tokio::sync::Mutex::new(None),
                    healthy: std::sync::atomic::AtomicBool::new(false),
                    min_interval: cfg.jwks_min_refetch,
                    refresh_every: cfg.jwks_refresh,
                }))
            } else if let Some(path) = &cfg.public_key_file {
                let pem =
                    std::fs::read(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
                let key = match algorithms.first() {
                    Some(Algorithm::ES256 | Algorithm::ES384) => DecodingKey::from_ec_pem(&pem),
                    Some(Algorithm::EdDSA) => DecodingKey::from_ed_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                }
                .map_err(|_| {
                    err(format!(
                        "{}: not a public key for {:?}",
                        path.display(),
                        cfg.algorithms
                    ))
                })?;
                if algorithms.contains(&Algorithm::HS256) {
                    return Err(err("HS256 cannot be combined with a public key".into()));
                }
                KeySource::Static(key)
            } else if let Some(secret) = &cfg.hs256_secret {
                if algorithms != [Algorithm::HS256] {
                    return Err(err(
                        "an HS256 secret allows only algorithms = [\"HS256\"]".into()
                    ));
                }
                if secret.expose().len() < 32 {
                    return Err(err("the HS256 secret must be at least 32 bytes".into()));
                }
                KeySource::Static(DecodingKey::from_secret(secret.expose().as_bytes()))
            } else {
                return Err(err("no key source".into()));
            };
            issuers.push(Issuer {
                cfg: cfg.clone(),
                algorithms,
                key,
            });
        }
        Ok(Issuers {
            issuers,
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
        })
    }

    /// The JWKS-backed issuers (for background refresh and readiness).
    pub fn jwks(&self) -> Vec<Arc<Jwks>> {
        self.issuers
            .iter()
            .filter_map(|i| match &i.key {
                KeySource::Jwks(j) => Some(j.clone()),
                KeySource::Static(_) => None,
            })
            .collect()
    }

    /// Verifies `token` at `now` (epoch seconds).
    pub async fn verify(&self, token: &str, now: u64) -> Result<Arc<Verified>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let digest = openssl::sha::sha256(token.as_bytes());
        if let Some(v) = self.cache.get(&digest) {
            return if now >= v.exp {
                Err(TokenError::Expired)
            } else {
                Ok(v)
            };
        }
        let verified = Arc::new(self.verify_uncached(token, now).await?);
        self.cache.insert(digest, verified.clone());
        Ok(verified)
    }

    async fn verify_uncached(&self, token: &str, now: u64) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let iss = unverified_issuer(token).ok_or(TokenError::Malformed)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.cfg.issuer == iss)
            .ok_or(TokenError::UnknownIssuer)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let jwks_key;
        let key = match &issuer.key {
            KeySource::Static(k) => k,
            KeySource::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(TokenError::Malformed)?;
                jwks_key = match jwks.key(kid) {
                    Some(k) => k,
                    None => {
                        jwks.refetch_for_unknown_kid().await;
                        jwks.key(kid).ok_or(TokenError::UnknownKid)?
                    }
                };
                &jwks_key
            }
        };
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[&issuer.cfg.issuer]);
        if issuer.cfg.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&issuer.cfg.audience);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::InvalidAudience => TokenError::WrongAudience,
                K::InvalidIssuer => TokenError::UnknownIssuer,
                K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
                    TokenError::AlgorithmNotAllowed
                }
                _ => TokenError::Malformed,
            }
        })?;
        let claims = data.claims;
        if !issuer.cfg.audience.is_empty() && !audience_ok(claims.get("aud"), &issuer.cfg.audience)
        {
            return Err(TokenError::WrongAudience);
        }
        let leeway = issuer.cfg.leeway.as_secs();
        let exp = claims
            .get("exp")
            .and_then(|e| e.as_u64())
            .ok_or(TokenError::MissingExp)?;
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(|n| n.as_u64())
            && now.saturating_add(leeway) < nbf
        {
            return Err(TokenError::NotYetValid);
        }
        let raw_tier = ClaimPath::parse(&issuer.cfg.tier_claim)
            .get(&claims)
            .and_then(|t| t.as_str());
        let (tier, bad_tier) = match raw_tier {
            Some(t) => match TierName::parse(t) {
                Ok(t) => (Some(t), false),
                Err(_) => (None, true),
            },
            None => (issuer.cfg.default_tier.clone(), false),
        };
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(serde_json::Value::String(s)), _) => {
                s.split_whitespace().map(str::to_owned).collect()
            }
            (_, Some(serde_json::Value::Array(a))) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Verified {
            issuer: issuer.cfg.name.clone(),
            subject: claims
                .get("sub")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_owned(),
            tier,
            bad_tier,
            scopes,
            exp: exp.saturating_add(leeway),
        })
    }
}

/// RFC 7519 §4.1.3: `aud` is a string or an array of strings, and with an
/// audience configured it must be present and name one of `accepted`.
/// Anything else (absent, a number, an object, a mixed array) is refused,
/// whatever the JWT library lets through.
fn audience_ok(aud: Option<&serde_json::Value>, accepted: &[String]) -> bool {
    use serde_json::Value;
    let ours = |s: &str| accepted.iter().any(|a| a == s);
    match aud {
        Some(Value::String(s)) => ours(s),
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string) && list.iter().filter_map(Value::as_str).any(ours)
        }
        _ => false,
    }
}

/// The `iss` claim, read without verification, only to pick the issuer
/// whose key then verifies the token.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}
