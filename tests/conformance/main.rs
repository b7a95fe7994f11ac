//! Conformance with the CloudFront reference vectors in
//! `tests/fixtures/cloudfront/` (made with botocore and the AWS SDK for
//! JavaScript; see that folder's README).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::domain::KeyPairId;
use playgate::engine::cloudfront::HashAlg;
use playgate::engine::cloudfront::encode::{cf_base64_decode, wire_url};
use playgate::engine::cloudfront::keys::{PublicKeys, SigningKey, VerifyKey};
use playgate::engine::cloudfront::policy::Cidr;
use playgate::engine::cloudfront::signer::{Grant, SignOptions, Signature};
use playgate::engine::cloudfront::verifier::{Credentials, verify, verify_request};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudfront")
}

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("vectors.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn pub_file(key_file: &str) -> &'static str {
    if key_file.contains("_ec_") {
        "test_ec_pub.pem"
    } else {
        "test_rsa_pub.pem"
    }
}

fn keys(input: &Value) -> (SigningKey, PublicKeys) {
    let id = KeyPairId::parse(input["key_pair_id"].as_str().unwrap()).unwrap();
    let key_file = input["key_file"].as_str().unwrap();
    let sk = SigningKey::from_file(id.clone(), &fixtures().join(key_file)).unwrap();
    let pk = VerifyKey::from_file(id, &fixtures().join(pub_file(key_file))).unwrap();
    (sk, PublicKeys::new(vec![pk]).unwrap())
}

fn hash(input: &Value) -> HashAlg {
    if input["hash"] == "SHA256" {
        HashAlg::Sha256
    } else {
        HashAlg::Sha1
    }
}

/// Our signature for a case, following our rules.
fn ours(input: &Value, key: &SigningKey) -> Signature {
    let url = wire_url(input["url"].as_str().unwrap()).unwrap();
    match input["policy_mode"].as_str().unwrap() {
        "shared_custom" => {
            Signature::over_policy(key, input["shared_policy"].as_str().unwrap(), hash(input))
                .unwrap()
        }
        _ => {
            let opts = SignOptions {
                expires: input["expires"].as_u64().unwrap(),
                starts: input["start"].as_u64(),
                ip: input["ip"].as_str().map(|s| Cidr::parse(s).unwrap()),
                resource: input["resource"].as_str().map(str::to_owned),
                hash: hash(input),
            };
            Signature::for_url(key, &url, &opts).unwrap()
        }
    }
}

fn policy_json(sig: &Signature) -> Option<String> {
    match &sig.grant {
        Grant::Custom { policy_b64 } => {
            Some(String::from_utf8(cf_base64_decode(policy_b64).unwrap()).unwrap())
        }
        Grant::Canned { .. } => None,
    }
}

/// A time inside every case's validity window, and an IP inside its range.
const NOW: u64 = 2_082_700_000;
fn client_ip(input: &Value) -> Option<std::net::IpAddr> {
    let ip = input["ip"].as_str().unwrap_or("198.51.100.1");
    Some(ip.split('/').next().unwrap().parse().unwrap())
}

fn creds_of(sig: &Signature) -> Credentials {
    Credentials::from(sig)
}

fn cookie_creds(map: &Value) -> Credentials {
    let get = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Credentials {
        expires: get("CloudFront-Expires"),
        policy: get("CloudFront-Policy"),
        signature: get("CloudFront-Signature"),
        key_pair_id: get("CloudFront-Key-Pair-Id"),
        hash_algorithm: get("CloudFront-Hash-Algorithm"),
    }
}

#[test]
fn rsa_cases_where_both_signers_agree_match_byte_for_byte() {
    let mut checked = 0;
    for case in vectors() {
        let input = &case["input"];
        if case["comparison"]["agree"] != true
            || input["key_file"].as_str().unwrap().contains("_ec_")
        {
            continue;
        }
        let (key, _) = keys(input);
        let sig = ours(input, &key);
        let boto = &case["botocore"];
        let id = case["id"].as_str().unwrap();
        assert_eq!(
            sig.signature,
            boto["signature"].as_str().unwrap(),
            "{id}: signature"
        );
        assert_eq!(
            sig.signature,
            case["npm"]["signature"].as_str().unwrap(),
            "{id}: npm signature"
        );
        assert_eq!(
            policy_json(&sig).as_deref(),
            boto["policy_json"].as_str(),
            "{id}: policy"
        );
        if input["kind"] == "url" {
            let url = wire_url(input["url"].as_str().unwrap()).unwrap();
            assert_eq!(url, boto["base_url"].as_str().unwrap(), "{id}: base URL");
            // botocore's parameter order is ours, so the whole URL matches.
            assert_eq!(
                sig.append_to(&url),
                boto["signed_url"].as_str().unwrap(),
                "{id}: URL"
            );
        } else {
            let ours: serde_json::Map<String, Value> = sig
                .cookies()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.into()))
                .collect();
            assert_eq!(
                Value::Object(ours.clone()),
                boto["cookies"],
                "{id}: cookies (botocore)"
            );
            let npm: serde_json::Map<String, Value> =
                case["npm"]["cookies"].as_object().unwrap().clone();
            assert_eq!(ours.len(), npm.len(), "{id}");
            for (k, v) in &ours {
                assert_eq!(Some(v), npm.get(k), "{id}: npm cookie {k}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} agreeing RSA cases");
}

/// Every case: our verifier accepts our output on the wire, and the
/// vectors' documented check (run by Python) accepts it too.
#[test]
fn our_output_passes_our_verifier_and_the_vectors_check() {
    let mut batch = Vec::new();
    for case in vectors() {
        let input = &case["input"];
        let id = case["id"].as_str().unwrap().to_owned();
        let (key, ring) = keys(input);
        let sig = ours(input, &key);
        let url = wire_url(input["url"].as_str().unwrap()).unwrap();
        let canned = matches!(sig.grant, Grant::Canned { .. });
        let expires = match sig.grant {
            Grant::Canned { expires } => Some(expires),
            Grant::Custom { .. } => None,
        };
        let hash_algorithm = (sig.hash == HashAlg::Sha256).then_some("SHA256");
        let pub_name = pub_file(input["key_file"].as_str().unwrap());
        if input["kind"] == "url" {
            let signed = sig.append_to(&url);
            verify_request(&ring, &signed, None, client_ip(input), NOW)
                .unwrap_or_else(|r| panic!("{id}: our verifier refused our URL: {r}"));
            batch.push(json!({"id": id, "kind": "url", "signed_url": signed, "policy_json": policy_json(&sig),
                "expires": expires, "signature": sig.signature, "hash_algorithm": hash_algorithm, "pub": pub_name}));
        } else {
            let req = wire_url(input["request_url"].as_str().unwrap()).unwrap();
            verify_request(&ring, &req, Some(creds_of(&sig)), client_ip(input), NOW)
                .unwrap_or_else(|r| panic!("{id}: our verifier refused our cookies: {r}"));
            batch.push(json!({"id": id, "kind": "cookies", "request_url": req, "policy_json": policy_json(&sig),
                "expires": expires, "signature": sig.signature, "hash_algorithm": hash_algorithm, "pub": pub_name}));
        }
        // Rule: canned only without start, IP and separate resource.
        let plain = input["start"].is_null()
            && input["ip"].is_null()
            && (input["resource"].is_null() || input["resource"] == input["url"]);
        if input["policy_mode"] != "shared_custom" {
            assert_eq!(canned, plain, "{id}: canned/custom choice");
        }
    }
    let mut child = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cf_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the vectors' check");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&batch).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cf_check.py failed (is `cryptography` installed?)"
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.as_object().unwrap().len(), batch.len());
    for (id, ok) in results.as_object().unwrap() {
        assert_eq!(
            ok,
            &Value::Bool(true),
            "{id}: the vectors' CloudFront check refused our output"
        );
    }
}

/// The public signers' outputs, where they verify on the wire, verify with
/// ours too — including both ECDSA signers.
#[test]
fn our_verifier_accepts_the_public_signers_wire_outputs() {
    let mut accepted = 0;
    for case in vectors() {
        let input = &case["input"];
        let id = case["id"].as_str().unwrap();
        let (_, ring) = keys(input);
        for signer in ["botocore", "npm"] {
            let out = &case[signer];
            if case["emulated_cloudfront_check"][signer]["wire"] != true {
                continue;
            }
            let result = if input["kind"] == "url" {
                let signed = wire_url(out["signed_url"].as_str().unwrap()).unwrap();
                verify_request(&ring, &signed, None, client_ip(input), NOW)
            } else {
                let req = wire_url(input["request_url"].as_str().unwrap()).unwrap();
                verify(
                    &ring,
                    &req,
                    &cookie_creds(&out["cookies"]),
                    client_ip(input),
                    NOW,
                )
            };
            result.unwrap_or_else(|r| panic!("{id}/{signer}: refused: {r}"));
            accepted += 1;
        }
    }
    assert!(accepted >= 30, "only {accepted} outputs checked");
}

/// Our ECDSA signatures verify with the `openssl` command line tool.
#[test]
fn ecdsa_signatures_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    for case in vectors()
        .iter()
        .filter(|c| c["input"]["key_file"].as_str().unwrap().contains("_ec_"))
    {
        let input = &case["input"];
        let (key, _) = keys(input);
        let sig = ours(input, &key);
        let message = match policy_json(&sig) {
            Some(p) => p,
            None => format!(
                r#"{{"Statement":[{{"Resource":"{}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{}}}}}}}]}}"#,
                wire_url(input["url"].as_str().unwrap()).unwrap(),
                input["expires"]
            ),
        };
        let msg = dir.path().join("msg");
        let sigf = dir.path().join("sig");
        std::fs::write(&msg, &message).unwrap();
        std::fs::write(&sigf, cf_base64_decode(&sig.signature).unwrap()).unwrap();
        let digest = if sig.hash == HashAlg::Sha256 {
            "-sha256"
        } else {
            "-sha1"
        };
        let out = std::process::Command::new("openssl")
            .args(["dgst", digest, "-verify"])
            .arg(fixtures().join("test_ec_pub.pem"))
            .arg("-signature")
            .arg(&sigf)
            .arg(&msg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            case["id"],
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
