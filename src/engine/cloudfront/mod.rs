//! CloudFront signed URLs and cookies, written to the letter of the
//! CloudFront Developer Guide (see `tests/fixtures/cloudfront/README.md` for
//! where the public signers differ and why we follow the rules here).
//!
//! - `encode`: CloudFront base64 and the "URL as sent on the wire" form;
//! - `policy`: canned and custom policy JSON, built by serde in the
//!   documented field order, and decoding for the verifier;
//! - `keys`: PEM parsing and the `KeyRing` (one active signer, every key a
//!   verifier, for rotation); private keys never print;
//! - `signer`: signed URLs and cookie values (OpenSSL: blinded RSA);
//! - `cookies`: `Set-Cookie` rendering;
//! - `verifier`: CloudFront's acceptance checks, used by the local edge and
//!   the URL-mode playlist endpoint.
//!
//! Nothing here knows about HTTP frameworks or the store.

pub mod cookies;
pub mod encode;
pub mod keys;
pub mod policy;
pub mod signer;
pub mod verifier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    #[default]
    Sha1,
    Sha256,
}
