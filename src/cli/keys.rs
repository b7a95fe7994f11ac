//! `playgate keygen` and `playgate token`: dev keys and viewer tokens.

use super::{Fail, load_config};
use crate::clock::{Clock, SystemClock};
use crate::domain::TierName;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn write_new(path: &Path, bytes: &[u8], private: bool, force: bool) -> Result<(), Fail> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(if private { 0o600 } else { 0o644 });
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Fail(format!(
                "{} exists; pass --force to replace it",
                path.display()
            ))
        } else {
            Fail(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    f.write_all(bytes)?;
    if private {
        // Also tighten a file that existed before `--force`.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    Ok(())
}

pub(super) fn keygen(out: &Path, ec: bool, force: bool, kek_only: bool) -> Result<ExitCode, Fail> {
    std::fs::create_dir_all(out)
        .map_err(|e| Fail(format!("cannot create {}: {e}", out.display())))?;
    let mut kek = [0u8; 32];
    openssl::rand::rand_bytes(&mut kek).map_err(|e| Fail(format!("no randomness: {e}")))?;
    let kek = crate::domain::hex(&kek) + "\n";
    if kek_only {
        let path = out.join("content_kek");
        if !force && path.exists() {
            return Err(Fail(format!(
                "{} exists; pass --force to replace it (keys it wrapped stop unwrapping)",
                path.display()
            )));
        }
        write_new(&path, kek.as_bytes(), true, force)?;
        println!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (cf_private, cf_public) = crate::engine::cloudfront::keys::generate(ec)?;
    let (jwt_private, jwt_public) = crate::engine::cloudfront::keys::generate(false)?;
    let suffix: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase()
        .chars()
        .take(10)
        .collect();
    let id = format!("KDEV{suffix}\n");
    let files: [(&str, &[u8], bool); 6] = [
        ("cloudfront_private.pem", &cf_private, true),
        ("cloudfront_public.pem", &cf_public, false),
        ("cloudfront_key_pair_id", id.as_bytes(), false),
        ("jwt_private.pem", &jwt_private, true),
        ("jwt_public.pem", &jwt_public, false),
        ("content_kek", kek.as_bytes(), true),
    ];
    if !force && let Some((name, _, _)) = files.iter().find(|(n, _, _)| out.join(n).exists()) {
        return Err(Fail(format!(
            "{} exists; pass --force to replace the key set",
            out.join(name).display()
        )));
    }
    for (name, bytes, private) in files {
        write_new(&out.join(name), bytes, private, force)?;
    }
    println!(
        "wrote development keys to {} (key pair id {})",
        out.display(),
        id.trim()
    );
    println!("  these are for local use only: never register them with a real distribution");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn token(
    path: &Path,
    sub: &str,
    tier: &str,
    ttl: &str,
    issuer: Option<&str>,
    scopes: &[String],
) -> Result<ExitCode, Fail> {
    let config = load_config(path)?;
    let tier = TierName::parse(tier)?;
    if !config.tiers.contains_key(&tier) {
        return Err(Fail(format!("no tier named {tier} in {}", path.display())));
    }
    let ttl = humantime::parse_duration(ttl).map_err(|e| Fail(format!("--ttl {ttl:?}: {e}")))?;
    let iss = match issuer {
        Some(name) => config
            .auth
            .issuers
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| Fail(format!("no issuer named {name:?}")))?,
        None => config
            .auth
            .issuers
            .iter()
            .find(|i| i.dev)
            .ok_or_else(|| Fail("no issuer is marked dev = true; playgate mints tokens only for development issuers".into()))?,
    };
    let jwt = crate::auth::mint_dev_token(iss, sub, &tier, scopes, SystemClock.now_epoch(), ttl)?;
    println!("{jwt}");
    Ok(ExitCode::SUCCESS)
}
