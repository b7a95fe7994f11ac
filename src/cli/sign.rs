//! `playgate sign` and `playgate verify`: CloudFront signatures by hand.

use super::{Fail, HashArg, SignCommand};
use crate::clock::{Clock, SystemClock};
use crate::domain::KeyPairId;
use crate::engine::cloudfront::HashAlg;
use crate::engine::cloudfront::keys::{SigningKey, VerifyKey};
use crate::engine::cloudfront::policy::Cidr;
use crate::engine::cloudfront::signer::{SignOptions, Signature};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn read_policy(arg: &str) -> Result<String, Fail> {
    match arg.strip_prefix('@') {
        Some(file) => {
            std::fs::read_to_string(file).map_err(|e| Fail(format!("--policy {file}: {e}")))
        }
        None => Ok(arg.to_owned()),
    }
}

pub(super) fn sign(cmd: SignCommand) -> Result<ExitCode, Fail> {
    let (args, cookies) = match cmd {
        SignCommand::Url(a) => (a, false),
        SignCommand::Cookies(a) => (a, true),
    };
    let id =
        KeyPairId::parse(&args.key_pair_id).map_err(|e| Fail(format!("--key-pair-id: {e}")))?;
    let key = SigningKey::from_file(id, &args.private_key)?;
    let hash = match args.hash {
        HashArg::Sha1 => HashAlg::Sha1,
        HashArg::Sha256 => HashAlg::Sha256,
    };
    let wire = crate::engine::cloudfront::encode::wire_url(&args.url)
        .map_err(|e| Fail(format!("URL: {e}")))?;
    let sig = match &args.policy {
        Some(p) => {
            if args.starts.is_some()
                || args.ip.is_some()
                || args.resource.is_some()
                || args.expires.is_some()
            {
                return Err(Fail("--policy signs the policy as given; do not combine it with --expires, --starts, --ip or --resource".into()));
            }
            let policy = read_policy(p)?;
            // Refuse what CloudFront would refuse, before signing it.
            crate::engine::cloudfront::policy::Policy::from_json(policy.as_bytes())?;
            Signature::over_policy(&key, &policy, hash)?
        }
        None => {
            let expires = args
                .expires
                .ok_or_else(|| Fail("--expires is required (epoch seconds)".into()))?;
            let ip = args.ip.as_deref().map(Cidr::parse).transpose()?;
            let opts = SignOptions {
                expires,
                starts: args.starts,
                ip,
                resource: args.resource.clone(),
                hash,
            };
            Signature::for_url(&key, &wire, &opts)?
        }
    };
    if cookies {
        let map: serde_json::Map<String, serde_json::Value> = sig
            .cookies()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        println!("{}", sig.append_to(&wire));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn verify_url(
    public_key: &Path,
    key_pair_id: &str,
    now: Option<u64>,
    client_ip: Option<std::net::IpAddr>,
    signed_url: &str,
) -> Result<ExitCode, Fail> {
    let id = KeyPairId::parse(key_pair_id).map_err(|e| Fail(format!("--key-pair-id: {e}")))?;
    let public = VerifyKey::from_file(id, public_key)?;
    let ring = crate::engine::cloudfront::keys::PublicKeys::new(vec![public])?;
    let wire = crate::engine::cloudfront::encode::wire_url(signed_url)
        .map_err(|e| Fail(format!("URL: {e}")))?;
    let now = now.unwrap_or_else(|| SystemClock.now_epoch());
    match crate::engine::cloudfront::verifier::verify_request(&ring, &wire, None, client_ip, now) {
        Ok(_) => {
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            println!("invalid: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}
