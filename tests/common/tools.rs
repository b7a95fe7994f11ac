//! A tool a test needs (moto, nginx, …) is installed, or the test skips:
//! under `CI` a missing tool fails the run instead; and a free loopback
//! port. Shared via `#[path]`.
#![allow(dead_code)]

/// A loopback port free a moment ago, for a server the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `installed`, or a skip message (and a failure under `CI`).
pub fn installed_or_skip(installed: bool, tool: &str) -> bool {
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed (scripts/ensure-deps.sh installs it)"
        );
        eprintln!("{tool} is not installed; skipping (CI installs it)");
    }
    installed
}
