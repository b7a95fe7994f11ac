//! Cold signing cost (no caches): what a cache miss pays.
//! Run through `make bench-sign`, which prints signs/s next to
//! `openssl speed rsa2048` from the same run.

use criterion::{Criterion, criterion_group, criterion_main};
use playgate::domain::KeyPairId;
use playgate::engine::cloudfront::HashAlg;
use playgate::engine::cloudfront::keys::SigningKey;
use playgate::engine::cloudfront::signer::{SignOptions, Signature};
use std::hint::black_box;

fn key(file: &str) -> SigningKey {
    let path = format!(
        "{}/tests/fixtures/cloudfront/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let pem = std::fs::read(path).unwrap_or_default();
    match KeyPairId::parse("KBENCH").map(|id| SigningKey::from_pem(id, &pem, file)) {
        Ok(Ok(k)) => k,
        _ => panic!("bench key {file} unreadable"),
    }
}

fn bench(c: &mut Criterion) {
    let rsa = key("test_rsa_key.pem");
    let ec = key("test_ec_key.pem");
    let url = "https://d111111abcdef8.cloudfront.net/assets/bbb/v1/hls/720p/index.m3u8";
    let canned = SignOptions {
        expires: 2_082_758_400,
        hash: HashAlg::Sha1,
        ..Default::default()
    };
    let custom = SignOptions {
        resource: Some("https://d111111abcdef8.cloudfront.net/assets/bbb/v1/hls/720p/*".into()),
        ..canned.clone()
    };
    c.bench_function("canned_rsa_sha1", |b| {
        b.iter(|| Signature::for_url(&rsa, black_box(url), &canned))
    });
    c.bench_function("custom_rsa_sha1", |b| {
        b.iter(|| Signature::for_url(&rsa, black_box(url), &custom))
    });
    c.bench_function("custom_ecdsa_p256", |b| {
        b.iter(|| Signature::for_url(&ec, black_box(url), &custom))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
