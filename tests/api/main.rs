//! HTTP API tests: one binary, a real server per test on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assets;
mod attacks;
mod auth;
mod cache;
mod clip;
mod helpers;
mod hooks;
mod jwks;
mod keys;
mod layouts;
#[path = "../common/media.rs"]
mod media;
mod openapi;
mod ops;
mod pipeline;
mod play;
mod players;
mod problems;
mod shutdown;
mod tiers;
#[path = "../common/tree.rs"]
mod tree;
