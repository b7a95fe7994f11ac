//! Content protection (HLS `METHOD=AES-128`): one content key per
//! (asset, version, rendition), generated here, stored only wrapped, and
//! released by the gateway's key endpoint only to a viewer whose tier has
//! that rendition — so a segment fetched any other way does not decode.
//!
//! - `KeyProvider`: where content keys come from and how they are wrapped
//!   (envelope encryption). `LocalKek` wraps with AES-256-GCM under a
//!   key-encryption key from a `*_file`/`*_env` secret; `kms::Kms` asks
//!   KMS for data keys (mode aws). A SPEKE v2 provider would take this
//!   place (README, "Content protection").
//! - `ContentKey`: the stored record (on the asset): id, version,
//!   rendition, the wrapped bytes and which provider wrapped them. Never
//!   the clear key.
//! - `token`: the short-lived grant a viewer presents for a key (a query
//!   parameter in URL delivery, an HttpOnly cookie in cookie delivery).
//! - `encrypt`: segment encryption of an encoded HLS tree (AES-128-CBC,
//!   IV = media sequence number, RFC 8216 §5.2) and its `EXT-X-KEY` lines.
//!
//! Clear keys live in `Secret` (never printed) and only in memory.

pub mod encrypt;
pub mod kms;
pub mod token;

use crate::domain::AssetId;
use crate::secret::Secret;
use async_trait::async_trait;
use base64::Engine;

use std::sync::Arc;

/// A clear content key: 16 bytes, never printed.
pub type ClearKey = Secret<[u8; 16]>;

/// The query parameter that carries a key token in URL delivery.
pub const TOKEN_PARAM: &str = "kt";
/// The cookie that carries a key token in cookie delivery.
pub const COOKIE: &str = "playgate-keys";

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the key provider is unavailable: {0}")]
    Unavailable(String),
    /// Wrong key-encryption key, a tampered blob or another asset's key.
    #[error("a stored content key does not unwrap: {0}")]
    Unwrap(String),
    #[error("content key {0} was wrapped by {1}, which this deployment does not have")]
    UnknownWrapper(String, String),
    #[error("content keys cannot be made: {0}")]
    Generate(String),
}

pub use crate::domain::ContentKey;

/// What a wrapped key is bound to: unwrapping under another context fails
/// (AES-GCM additional data locally, the encryption context in KMS), so a
/// stored key moved to another asset or rendition is useless.
#[derive(Debug, Clone, Copy)]
pub struct KeyContext<'a> {
    pub asset: &'a AssetId,
    pub key_id: &'a str,
    pub rendition: &'a str,
}

impl KeyContext<'_> {
    pub fn aad(&self) -> String {
        format!(
            "playgate content key v1\nasset={}\nkey={}\nrendition={}",
            self.asset, self.key_id, self.rendition
        )
    }
}

/// Where content keys come from and how they are kept.
#[async_trait]
pub trait KeyProvider: Send + Sync + 'static {
    /// Recorded as `ContentKey::wrapper`.
    fn wrapper(&self) -> String;
    /// A new clear key and its wrapped form.
    async fn generate(&self, cx: KeyContext<'_>) -> Result<(ClearKey, Vec<u8>), KeyError>;
    async fn unwrap(&self, wrapped: &[u8], cx: KeyContext<'_>) -> Result<ClearKey, KeyError>;
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b).map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(b)
}

/// A new key id: 32 random hex digits.
pub fn new_key_id() -> Result<String, KeyError> {
    Ok(crate::domain::hex(&random::<16>()?))
}

/// Whether `s` has the shape of a key id.
pub fn is_key_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Envelope encryption under a local key-encryption key: the stored form
/// is `nonce (12) ‖ AES-256-GCM(kek, nonce, key, aad = context) ‖ tag (16)`.
pub struct LocalKek {
    kek: Secret<[u8; 32]>,
    id: String,
}

impl LocalKek {
    /// From 64 hex digits (`playgate keygen` writes `content_kek`).
    pub fn from_hex(hex: &Secret<String>) -> Result<Self, String> {
        let kek = crate::domain::kek_hex(hex.expose())?;
        // An id that names the key without revealing it: the first bytes
        // of its SHA-256, as KMS names a key by id, not by material.
        let digest = openssl::sha::sha256(&kek);
        let id = crate::domain::hex(&digest[..6]);
        Ok(LocalKek {
            kek: Secret::new(kek),
            id,
        })
    }
}

#[async_trait]
impl KeyProvider for LocalKek {
    fn wrapper(&self) -> String {
        format!("local:{}", self.id)
    }

    async fn generate(&self, cx: KeyContext<'_>) -> Result<(ClearKey, Vec<u8>), KeyError> {
        use openssl::symm::{Cipher, encrypt_aead};
        let key = random::<16>()?;
        let nonce = random::<12>()?;
        let mut tag = [0u8; 16];
        let sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            self.kek.expose(),
            Some(&nonce),
            cx.aad().as_bytes(),
            &key,
            &mut tag,
        )
        .map_err(|e| KeyError::Generate(e.to_string()))?;
        let mut out = Vec::with_capacity(12 + sealed.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out.extend_from_slice(&tag);
        Ok((Secret::new(key), out))
    }

    async fn unwrap(&self, wrapped: &[u8], cx: KeyContext<'_>) -> Result<ClearKey, KeyError> {
        use openssl::symm::{Cipher, decrypt_aead};
        if wrapped.len() != 12 + 16 + 16 {
            return Err(KeyError::Unwrap(
                "the wrapped key has the wrong length".into(),
            ));
        }
        let (nonce, rest) = wrapped.split_at(12);
        let (sealed, tag) = rest.split_at(16);
        let clear = decrypt_aead(
            Cipher::aes_256_gcm(),
            self.kek.expose(),
            Some(nonce),
            cx.aad().as_bytes(),
            sealed,
            tag,
        )
        .map_err(|_| KeyError::Unwrap("authentication failed".into()))?;
        let key: [u8; 16] = clear
            .try_into()
            .map_err(|_| KeyError::Unwrap("the clear key is not 16 bytes".into()))?;
        Ok(Secret::new(key))
    }
}

/// The content-protection service: makes keys, unwraps them (a clear key
/// is kept in memory for `CLEAR_TTL` so the key endpoint does not call KMS
/// per request), and issues and checks key tokens.
pub struct Protection {
    provider: Arc<dyn KeyProvider>,
    pub tokens: token::KeyTokens,
    /// `{public_url}/v1/keys/`.
    key_base: String,
    clear: moka::sync::Cache<String, ClearKey>,
}

const CLEAR_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protection")
            .field("wrapper", &self.provider.wrapper())
            .field("key_base", &self.key_base)
            .finish_non_exhaustive()
    }
}

impl Protection {
    pub fn new(provider: Arc<dyn KeyProvider>, tokens: token::KeyTokens, public_url: &str) -> Self {
        Protection {
            provider,
            tokens,
            key_base: format!("{}/v1/keys/", public_url.trim_end_matches('/')),
            clear: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CLEAR_TTL)
                .build(),
        }
    }

    /// The gateway URL of a key (what `EXT-X-KEY` names).
    pub fn key_url(&self, asset: &AssetId, key_id: &str) -> String {
        format!("{}{asset}/{key_id}", self.key_base)
    }

    /// Whether `url` is under this gateway's key endpoint.
    pub fn is_key_url(&self, url: &str) -> bool {
        url.starts_with(self.key_base.as_str())
    }

    /// The key id when `url` is one of this gateway's key URLs for `asset`.
    pub fn key_id_of<'u>(&self, asset: &AssetId, url: &'u str) -> Option<&'u str> {
        let id = url
            .strip_prefix(self.key_base.as_str())?
            .strip_prefix(asset.as_str())?
            .strip_prefix('/')?;
        let id = id.split(['?', '#']).next()?;
        is_key_id(id).then_some(id)
    }

    /// A new key for `rendition` of `asset` (version 0 until published).
    pub async fn new_key(
        &self,
        asset: &AssetId,
        rendition: &str,
    ) -> Result<(ContentKey, ClearKey), KeyError> {
        let id = new_key_id()?;
        let cx = KeyContext {
            asset,
            key_id: &id,
            rendition,
        };
        let (clear, wrapped) = self.provider.generate(cx).await?;
        Ok((
            ContentKey {
                wrapped: base64::engine::general_purpose::STANDARD.encode(wrapped),
                wrapper: self.provider.wrapper(),
                rendition: rendition.to_owned(),
                version: 0,
                id,
            },
            clear,
        ))
    }

    /// The clear form of a stored key.
    pub async fn clear_key(&self, asset: &AssetId, key: &ContentKey) -> Result<ClearKey, KeyError> {
        let cached_as = format!("{asset}/{}", key.id);
        if let Some(k) = self.clear.get(&cached_as) {
            return Ok(k);
        }
        if key.wrapper != self.provider.wrapper() {
            return Err(KeyError::UnknownWrapper(
                key.id.clone(),
                key.wrapper.clone(),
            ));
        }
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(&key.wrapped)
            .map_err(|_| KeyError::Unwrap("the stored form is not base64".into()))?;
        let cx = KeyContext {
            asset,
            key_id: &key.id,
            rendition: &key.rendition,
        };
        let clear = self.provider.unwrap(&wrapped, cx).await?;
        self.clear.insert(cached_as, clear.clone());
        Ok(clear)
    }

    /// Forgets the clear keys of `asset` held in memory (after a delete).
    pub fn forget(&self, asset: &AssetId, keys: &[ContentKey]) {
        for k in keys {
            self.clear.invalidate(&format!("{asset}/{}", k.id));
        }
    }

    /// Encrypts every rendition of the encoded tree `dir` (`hls/…`) with
    /// a new key each; the keys to store with the version.
    pub async fn encrypt_dir(
        &self,
        asset: &AssetId,
        dir: &std::path::Path,
    ) -> Result<Vec<ContentKey>, encrypt::EncryptError> {
        let renditions = encrypt::renditions(dir)?;
        let mut stored = Vec::with_capacity(renditions.len());
        let mut clear = Vec::with_capacity(renditions.len());
        for r in &renditions {
            let (key, k) = self
                .new_key(asset, r)
                .await
                .map_err(|e| encrypt::EncryptError::Key(e.to_string()))?;
            clear.push((r.clone(), self.key_url(asset, &key.id), k));
            stored.push(key);
        }
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || encrypt::encrypt_tree(&dir, &clear))
            .await
            .map_err(|e| encrypt::EncryptError::Io(e.to_string()))??;
        Ok(stored)
    }
}

/// The configured protection, if any: a local key-encryption key, or a
/// KMS key (mode aws).
pub async fn from_config(
    config: &crate::config::Config,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<Protection>>, String> {
    let p = &config.protection;
    let provider: Arc<dyn KeyProvider> = match (&p.kek, &p.kms_key_id) {
        (Some(hex), _) => Arc::new(LocalKek::from_hex(hex)?),
        (None, Some(key)) => {
            let sdk = sdk.ok_or("protection.kms_key_id needs mode aws")?;
            Arc::new(kms::Kms::new(sdk, key.clone()))
        }
        (None, None) => return Ok(None),
    };
    let tokens = match (&p.token_secret, &p.kek) {
        (Some(s), _) => token::KeyTokens::new(s.expose().as_bytes()),
        (None, Some(kek)) => token::KeyTokens::derived_from(kek.expose().trim().as_bytes()),
        (None, None) => {
            return Err(
                "protection.kms_key_id needs protection.token_secret_file/_env for key tokens"
                    .into(),
            );
        }
    };
    Ok(Some(Arc::new(Protection::new(
        provider,
        tokens,
        &config.server.public_url,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> LocalKek {
        LocalKek::from_hex(&Secret::new("11".repeat(32))).unwrap()
    }

    #[tokio::test]
    async fn a_wrapped_key_unwraps_only_in_its_own_context() {
        let a = AssetId::parse("a").unwrap();
        let b = AssetId::parse("b").unwrap();
        let cx = KeyContext {
            asset: &a,
            key_id: "k1",
            rendition: "720p",
        };
        let (clear, wrapped) = kek().generate(cx).await.unwrap();
        assert!(
            !wrapped.windows(16).any(|w| w == clear.expose()),
            "the stored form holds the clear key"
        );
        let back = kek().unwrap(&wrapped, cx).await.unwrap();
        assert_eq!(back.expose(), clear.expose());
        for other in [
            KeyContext { asset: &b, ..cx },
            KeyContext {
                rendition: "360p",
                ..cx
            },
            KeyContext { key_id: "k2", ..cx },
        ] {
            assert!(kek().unwrap(&wrapped, other).await.is_err(), "{other:?}");
        }
        let other_kek = LocalKek::from_hex(&Secret::new("22".repeat(32))).unwrap();
        assert!(other_kek.unwrap(&wrapped, cx).await.is_err());
        let mut flipped = wrapped.clone();
        flipped[20] ^= 1;
        assert!(kek().unwrap(&flipped, cx).await.is_err());
    }

    #[test]
    fn a_kek_must_be_32_bytes_of_hex() {
        for bad in ["", "11", &"zz".repeat(32), &"11".repeat(31)] {
            assert!(LocalKek::from_hex(&Secret::new(bad.to_owned())).is_err());
        }
    }

    #[tokio::test]
    async fn key_urls_name_their_asset_and_id() {
        let p = Protection::new(
            Arc::new(kek()),
            token::KeyTokens::new(b"secret"),
            "https://gw.example/",
        );
        let a = AssetId::parse("a").unwrap();
        let (key, _) = p.new_key(&a, "720p").await.unwrap();
        assert!(is_key_id(&key.id));
        let url = p.key_url(&a, &key.id);
        assert_eq!(url, format!("https://gw.example/v1/keys/a/{}", key.id));
        assert_eq!(p.key_id_of(&a, &url), Some(key.id.as_str()));
        assert_eq!(
            p.key_id_of(&a, &format!("{url}?kt=x")),
            Some(key.id.as_str())
        );
        let other = AssetId::parse("ab").unwrap();
        assert_eq!(p.key_id_of(&other, &url), None);
        assert_eq!(p.key_id_of(&a, "https://gw.example/v1/keys/a/../x"), None);
        assert!(!format!("{key:?} {p:?}").contains(&key.wrapped));
    }
}
