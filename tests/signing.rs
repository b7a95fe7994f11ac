//! Signer and verifier properties: round trips over random URLs, times and
//! CIDRs; every tamper refused with the right reason; rotation; and the
//! `cloudfront_sign` crate as a differential oracle for canned URLs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use playgate::domain::KeyPairId;
use playgate::engine::cloudfront::HashAlg;
use playgate::engine::cloudfront::encode::wire_url;
use playgate::engine::cloudfront::keys::{KeyRing, PublicKeys, SigningKey, VerifyKey};
use playgate::engine::cloudfront::policy::Cidr;
use playgate::engine::cloudfront::signer::{SignOptions, Signature, sign_url};
use playgate::engine::cloudfront::verifier::{Rejection, verify_request};
use proptest::prelude::*;
use std::sync::OnceLock;

fn rsa_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cloudfront/test_rsa_key.pem"
        ))
        .unwrap()
    })
}

fn key(id: &str) -> SigningKey {
    SigningKey::from_pem(KeyPairId::parse(id).unwrap(), rsa_pem().as_bytes(), "test").unwrap()
}

fn ring_of(k: &SigningKey) -> PublicKeys {
    PublicKeys::new(vec![k.public().unwrap()]).unwrap()
}

fn url_strategy() -> impl Strategy<Value = String> {
    let seg = prop::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9_.~-]{1,8}",
            Just("a b".to_owned()),
            Just("élan".to_owned()),
            Just("日本".to_owned()),
            Just("a+b=c,d(1)!".to_owned()),
            Just("%2F%c3%a9".to_owned()),
        ],
        1..5,
    );
    let query = prop::option::of(prop::collection::vec(
        ("[a-z]{1,5}", "[a-zA-Z0-9 +=,é]{0,6}"),
        1..4,
    ));
    (seg, query).prop_map(|(segs, q)| {
        let mut u = format!("https://d111.cloudfront.net/{}", segs.join("/"));
        if let Some(q) = q {
            let pairs: Vec<String> = q.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            u.push('?');
            u.push_str(&pairs.join("&"));
        }
        u
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips(
        url in url_strategy(),
        expires in 1_000_000u64..4_000_000_000,
        window in prop::option::of(1u64..1_000_000),
        ip in prop::option::of((any::<[u8; 4]>(), 0u8..=32)),
        sha256 in any::<bool>(),
        wildcard in any::<bool>(),
    ) {
        let k = key("KPROP");
        let ring = ring_of(&k);
        let starts = window.map(|w| expires.saturating_sub(w)).filter(|s| *s < expires);
        let cidr = ip.map(|(a, p)| Cidr::parse(&format!("{}/{p}", std::net::Ipv4Addr::from(a))).unwrap());
        let wire = wire_url(&url).unwrap();
        let resource = wildcard.then(|| format!("{}*", &wire[..wire.len() / 2]));
        let opts = SignOptions { expires, starts, ip: cidr, resource, hash: if sha256 { HashAlg::Sha256 } else { HashAlg::Sha1 } };
        let signed = sign_url(&k, &url, &opts).unwrap();
        prop_assert!(signed.starts_with(&wire));
        let now = starts.map(|s| s + 1).unwrap_or(expires - 1).min(expires - 1);
        let client = cidr.map(|c| std::net::IpAddr::V4(c.addr));
        prop_assert!(verify_request(&ring, &signed, None, client, now).is_ok(), "refused {}", signed);
        // Expired, and (if set) before the start.
        prop_assert_eq!(verify_request(&ring, &signed, None, client, expires).unwrap_err(), Rejection::Expired);
        if let Some(s) = starts {
            prop_assert_eq!(verify_request(&ring, &signed, None, client, s).unwrap_err(), Rejection::NotYetValid);
        }
        // Outside the IP range.
        if let Some(c) = cidr && c.prefix > 0 {
            let outside = std::net::Ipv4Addr::from(u32::from(c.addr) ^ (1u32 << (32 - c.prefix)));
            prop_assert_eq!(
                verify_request(&ring, &signed, None, Some(outside.into()), now).unwrap_err(),
                Rejection::IpNotAllowed
            );
        }
    }

    #[test]
    fn every_single_field_tamper_is_refused(url in url_strategy(), pick in 0usize..6) {
        let k = key("KPROP");
        let ring = ring_of(&k);
        let opts = SignOptions { expires: 2_000_000_000, ip: Some(Cidr::parse("10.0.0.0/8").unwrap()), ..Default::default() };
        let signed = sign_url(&k, &url, &opts).unwrap();
        let now = 1_900_000_000;
        let client = Some("10.1.2.3".parse().unwrap());
        prop_assert!(verify_request(&ring, &signed, None, client, now).is_ok());
        let (tampered, want) = match pick {
            // Another path: the policy's resource no longer matches.
            0 => (signed.replacen("cloudfront.net/", "cloudfront.net/x", 1), Rejection::ResourceMismatch),
            // A flipped signature character.
            1 => {
                let i = signed.find("Signature=").unwrap() + 12;
                let mut b = signed.clone().into_bytes();
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                (String::from_utf8(b).unwrap(), Rejection::BadSignature)
            }
            // A policy with a later expiry, re-encoded: signature no longer matches.
            2 => {
                let start = signed.find("Policy=").unwrap() + 7;
                let end = signed[start..].find('&').unwrap() + start;
                let json = String::from_utf8(playgate::engine::cloudfront::encode::cf_base64_decode(&signed[start..end]).unwrap()).unwrap();
                let forged = playgate::engine::cloudfront::encode::cf_base64(json.replace("2000000000", "2100000000").as_bytes());
                (format!("{}{}{}", &signed[..start], forged, &signed[end..]), Rejection::BadSignature)
            }
            // An unknown key pair id.
            3 => (signed.replace("Key-Pair-Id=KPROP", "Key-Pair-Id=KOTHER"), Rejection::UnknownKey),
            // Signature removed.
            4 => {
                let i = signed.find("&Signature=").unwrap();
                let j = signed[i + 1..].find('&').unwrap() + i + 1;
                (format!("{}{}", &signed[..i], &signed[j..]), Rejection::Missing)
            }
            // Hash algorithm switched to SHA-256: same bytes, other digest.
            _ => (format!("{signed}&Hash-Algorithm=SHA256"), Rejection::BadSignature),
        };
        prop_assert_eq!(verify_request(&ring, &tampered, None, client, now).unwrap_err(), want);
    }

    #[test]
    fn canned_ascii_urls_equal_cloudfront_sign(
        path in "[a-zA-Z0-9_./-]{1,40}",
        query in prop::option::of("[a-z]{1,6}=[a-z0-9]{1,6}"),
        expires in 1_000_000u64..4_000_000_000,
    ) {
        let mut url = format!("https://d111.cloudfront.net/{path}");
        if let Some(q) = &query { url.push('?'); url.push_str(q); }
        let ours = sign_url(&key("KDIFF"), &url, &SignOptions { expires, ..Default::default() }).unwrap();
        let theirs = cloudfront_sign::get_signed_url(&url, &cloudfront_sign::SignedOptions {
            key_pair_id: "KDIFF".into(),
            private_key: rsa_pem().into(),
            date_less_than: expires,
            ..Default::default()
        }).unwrap();
        prop_assert_eq!(ours, theirs);
    }
}

#[test]
fn rotation_keeps_old_signatures_valid_while_the_old_key_is_in_the_ring() {
    let old = key("KOLD");
    let (new_priv, _) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    let new = SigningKey::from_pem(KeyPairId::parse("KNEW").unwrap(), &new_priv, "new").unwrap();
    let url = "https://d111.cloudfront.net/a/master.m3u8";
    let opts = SignOptions {
        expires: 2_000_000_000,
        ..Default::default()
    };
    let by_old = sign_url(&old, url, &opts).unwrap();

    let ring = KeyRing::new(new, vec![old.public().unwrap()]).unwrap();
    let by_new = sign_url(ring.active(), url, &opts).unwrap();
    assert!(
        by_new.contains("Key-Pair-Id=KNEW"),
        "new signatures use the new key"
    );
    assert!(verify_request(ring.public_keys(), &by_old, None, None, 1).is_ok());
    assert!(verify_request(ring.public_keys(), &by_new, None, None, 1).is_ok());

    // Once the old key leaves the ring, its signatures stop working.
    let (again, _) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    let only_new = KeyRing::single(
        SigningKey::from_pem(KeyPairId::parse("KNEW2").unwrap(), &again, "n").unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify_request(only_new.public_keys(), &by_old, None, None, 1).unwrap_err(),
        Rejection::UnknownKey
    );
}

#[test]
fn custom_policy_is_never_sent_as_an_expires_url() {
    let k = key("KX");
    for opts in [
        SignOptions {
            expires: 10,
            starts: Some(5),
            ..Default::default()
        },
        SignOptions {
            expires: 10,
            ip: Some(Cidr::parse("1.2.3.4").unwrap()),
            ..Default::default()
        },
        SignOptions {
            expires: 10,
            resource: Some("https://h/a/*".into()),
            ..Default::default()
        },
    ] {
        let s = sign_url(&k, "https://h/a/b.ts", &opts).unwrap();
        assert!(s.contains("?Policy=") && !s.contains("Expires="), "{s}");
    }
    let s = sign_url(
        &k,
        "https://h/a/b.ts",
        &SignOptions {
            expires: 10,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        s.contains("?Expires=10&Signature=") && !s.contains("Policy="),
        "{s}"
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let k = key("KX");
    let e = sign_url(
        &k,
        "https://h/a",
        &SignOptions {
            expires: 10,
            starts: Some(10),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("not after start"), "{e}");
    assert!(
        Cidr::parse("2001:db8::/32")
            .unwrap_err()
            .to_string()
            .contains("IPv4")
    );
    assert!(
        sign_url(
            &k,
            "not a url",
            &SignOptions {
                expires: 10,
                ..Default::default()
            }
        )
        .is_err()
    );
    let small = openssl::rsa::Rsa::generate(1024)
        .unwrap()
        .private_key_to_pem()
        .unwrap();
    let e = SigningKey::from_pem(KeyPairId::parse("K").unwrap(), &small, "small.pem").unwrap_err();
    assert!(e.to_string().contains("2048"), "{e}");
}

#[test]
fn keys_never_print() {
    let k = key("KX");
    let dbg = format!("{k:?} {:?}", KeyRing::single(key("KY")).unwrap());
    assert!(!dbg.contains("PRIVATE") && !dbg.contains("MII"), "{dbg}");
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn pkcs1_pkcs8_sec1_and_public_forms_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cloudfront/");
    let id = || KeyPairId::parse("K").unwrap();
    let rsa = SigningKey::from_file(
        id(),
        std::path::Path::new(&format!("{dir}test_rsa_key.pem")),
    )
    .unwrap();
    let ec = SigningKey::from_file(id(), std::path::Path::new(&format!("{dir}test_ec_key.pem")))
        .unwrap();
    assert_eq!(rsa.kind, playgate::engine::cloudfront::keys::KeyKind::Rsa);
    assert_eq!(
        ec.kind,
        playgate::engine::cloudfront::keys::KeyKind::EcdsaP256
    );
    let pk8 = openssl::pkey::PKey::private_key_from_pem(rsa_pem().as_bytes())
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    assert!(SigningKey::from_pem(id(), &pk8, "pk8").is_ok());
    let pkcs1_pub = openssl::rsa::Rsa::private_key_from_pem(rsa_pem().as_bytes())
        .unwrap()
        .public_key_to_pem_pkcs1()
        .unwrap();
    assert!(VerifyKey::from_pem(id(), &pkcs1_pub, "pub").is_ok());
    let _ = Signature::over_policy(&ec, "{}", HashAlg::Sha256).unwrap();
}

#[test]
fn url_parameters_take_precedence_over_cookies() {
    use playgate::engine::cloudfront::verifier::Credentials;
    let k = key("KPREC");
    let ring = ring_of(&k);
    let url = "https://d111.cloudfront.net/a/1.ts";
    let opts = SignOptions {
        expires: 2_000_000_000,
        resource: Some("https://d111.cloudfront.net/a/*".into()),
        ..Default::default()
    };
    let sig = Signature::for_resource(&k, "https://d111.cloudfront.net/a/*", &opts).unwrap();
    let cookies = Credentials::from(&sig);
    // Valid cookies alone open the object.
    assert!(verify_request(&ring, url, Some(cookies.clone()), None, 1).is_ok());
    // A request that also carries (bad) signed-URL parameters is judged by them.
    let forged = format!("{url}?Expires=2000000000&Signature=AAAA&Key-Pair-Id=KPREC");
    assert_eq!(
        verify_request(&ring, &forged, Some(cookies), None, 1).unwrap_err(),
        Rejection::BadSignature
    );
}
