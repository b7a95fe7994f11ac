//! `playgate check-config`: every problem at once, or a summary.

use super::Fail;
use crate::config::Config;
use crate::engine::cloudfront::keys::KeyRing;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn check_config(path: &Path) -> Result<ExitCode, Fail> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            for issue in &e.0 {
                println!("{issue}");
            }
            eprintln!("playgate: {} problem(s) in {}", e.0.len(), path.display());
            return Ok(ExitCode::from(2));
        }
    };
    // Keys are parsed as at start-up, so a bad key fails here too.
    if let Err(e) = KeyRing::from_specs(&config.signing.active, &config.signing.keys) {
        println!("signing.keys: {e}");
        eprintln!("playgate: 1 problem(s) in {}", path.display());
        return Ok(ExitCode::from(2));
    }
    let mode = match config.mode {
        crate::config::Mode::Local => "local",
        crate::config::Mode::Aws => "aws",
    };
    println!("ok: {}", path.display());
    println!("  mode: {mode}");
    println!(
        "  listen: {} (public {})",
        config.server.listen, config.server.public_url
    );
    println!("  cdn: {}", config.cdn.base_url);
    println!(
        "  signing: active {} of {} key(s), {:?}",
        config.signing.active,
        config.signing.keys.len(),
        config.signing.hash
    );
    let issuers: Vec<&str> = config
        .auth
        .issuers
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    println!(
        "  issuers: {}",
        if issuers.is_empty() {
            "none".into()
        } else {
            issuers.join(", ")
        }
    );
    let tiers: Vec<&str> = config.tiers.keys().map(|t| t.as_str()).collect();
    println!(
        "  tiers: {}",
        if tiers.is_empty() {
            "none".into()
        } else {
            tiers.join(", ")
        }
    );
    let writes: Vec<String> = config
        .writes()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "  writes: {}",
        if writes.is_empty() {
            "nothing on disk".into()
        } else {
            writes.join(", ")
        }
    );
    for w in config.warnings() {
        println!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
