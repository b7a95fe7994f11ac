//! The engine: what a tier's viewer may have, worked out from bytes and
//! rules, with no I/O framework in sight. Nothing here imports axum, the
//! AWS SDK, tokio or `crate::config` (`scripts/check-layers.py`, run by
//! `make test`, fails if one does).
//!
//! - `cloudfront`: policies, signing, verifying, cookies, key parsing;
//! - `tiers`: tier rules and their evaluation;
//! - `hls`: playlist tokenizer, master filtering and URI rewriting,
//!   rendition scopes, media playlist signing;
//! - `dash`: MPD filtering;
//! - `authorise`: what a tier's viewer receives (filtered, rewritten,
//!   signed), for HLS and DASH;
//! - `playability`: the per-tier report on a published version.

pub mod authorise;
pub mod cloudfront;
pub mod dash;
pub mod hls;
pub mod ladder;
pub mod playability;
pub mod tiers;
