//! HTTP API tests: one binary, a real server per test on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod helpers;
mod ops;
mod problems;
mod shutdown;
mod tiers;
