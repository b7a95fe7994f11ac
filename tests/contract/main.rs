//! Backend contract tests, written once. Each suite takes any `Store` or
//! `ObjectStore`; the local backends run it here, and the AWS backends
//! (DynamoDB, S3 against the moto server) call the same functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/moto.rs"]
mod moto;
mod objects;
mod store;

use moto::{moto, moto_sdk};

use playgate::storage::local::LocalStore;
use playgate::store::sqlite::SqliteStore;
use std::sync::Arc;

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(&dir.path().join("db/playgate.db")).unwrap());
    store::run_all(s).await;
}

#[tokio::test]
async fn sqlite_store_survives_reopen_and_is_shared_between_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("playgate.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    store::two_handles_see_each_other(a.clone(), b).await;
    drop(a);
    let reopened = SqliteStore::open(&path).unwrap();
    use playgate::store::Store;
    assert!(
        reopened
            .get(playgate::store::Kind::Tier, "shared")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn local_object_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(LocalStore::open(dir.path()).unwrap());
    objects::run_all(s).await;
}

#[tokio::test]
async fn local_object_store_never_leaves_temporary_files() {
    use playgate::storage::{ObjectKey, ObjectStore};
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(dir.path()).unwrap();
    let key = ObjectKey::parse("assets/a/v1/hls/master.m3u8").unwrap();
    for i in 0..20 {
        s.put(&key, bytes::Bytes::from(format!("#EXTM3U\n# {i}\n")))
            .await
            .unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("assets/a/v1/hls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["master.m3u8"]);
}

#[tokio::test]
async fn aws_backends_meet_the_contract_against_moto() {
    let Some(m) = moto() else { return };
    let sdk = moto_sdk(&m.url).await;
    let dynamo = playgate::store::dynamodb::DynamoStore::new(&sdk, "playgate-contract");
    dynamo.create_table().await.unwrap();
    dynamo.create_table().await.unwrap();
    store::run_all(Arc::new(dynamo)).await;
    let s3 = playgate::storage::s3::S3Store::new(&sdk, "playgate-contract", true);
    s3.create_bucket().await.unwrap();
    objects::run_all(Arc::new(s3)).await;
}

/// `playgate serve` in mode aws against the moto server: DynamoDB for
/// state, S3 for outputs, CloudFront cookies on a shared domain; uploads
/// say clearly that they are not there yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_mode_serves_playback_from_dynamodb_and_s3() {
    let Some(m) = moto() else { return };
    let sdk = moto_sdk(&m.url).await;
    let dynamo = playgate::store::dynamodb::DynamoStore::new(&sdk, "pgtest-records");
    dynamo.create_table().await.unwrap();
    let s3 = playgate::storage::s3::S3Store::new(&sdk, "pgtest-out", true);
    s3.create_bucket().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip");
    let made = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-clip.sh"))
        .arg(&clip)
        .arg("2")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let id = playgate::domain::AssetId::parse("clip").unwrap();
    playgate::publish::publish_dir(&dynamo, &s3, &id, None, &clip, 0)
        .await
        .unwrap();

    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (cf_priv, cf_pub) = playgate::cloudfront::keys::generate(false).unwrap();
    let (jwt_priv, jwt_pub) = playgate::cloudfront::keys::generate(false).unwrap();
    std::fs::write(keys.join("cf.pem"), cf_priv).unwrap();
    std::fs::write(keys.join("cf_pub.pem"), cf_pub).unwrap();
    std::fs::write(keys.join("jwt.pem"), &jwt_priv).unwrap();
    std::fs::write(keys.join("jwt_pub.pem"), jwt_pub).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let k = keys.display();
    let config = format!(
        r#"mode = "aws"
[server]
listen = "127.0.0.1:{port}"
public_url = "https://play.example.com"
[cdn]
base_url = "https://cdn.example.com"
cookie_domain = "example.com"
[[signing.keys]]
id = "KAWSTEST"
private_key_file = "{k}/cf.pem"
public_key_file = "{k}/cf_pub.pem"
[[auth.issuers]]
name = "idp"
issuer = "https://idp.example.com"
audience = "playgate"
public_key_file = "{k}/jwt_pub.pem"
[[auth.api_keys]]
name = "ingest"
sha256 = "{ingest_hash}"
scopes = ["playgate:ingest"]
[tiers.free]
max_height = 480
[aws]
region = "us-east-1"
endpoint_url = "{url}"
source_bucket = "pgtest-src"
output_bucket = "pgtest-out"
dynamodb_table_prefix = "pgtest"
mediaconvert_endpoint = "https://mediaconvert.us-east-1.amazonaws.com"
mediaconvert_role_arn = "arn:aws:iam::123456789012:role/mc"
cloudfront_distribution_id = "E2EXAMPLE"
"#,
        url = m.url,
        ingest_hash = openssl::sha::sha256(b"ingest-key")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    );
    let config_path = dir.path().join("aws.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_playgate"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !up {
        let _ = server.kill();
        let out = server.wait_with_output().unwrap();
        panic!(
            "serve did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &serde_json::json!({"iss": "https://idp.example.com", "aud": "playgate", "sub": "v",
            "exp": playgate::clock::Clock::now_epoch(&playgate::clock::SystemClock) + 600, "tier": "free"}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(&jwt_priv).unwrap(),
    )
    .unwrap();
    let master = client
        .get(format!("{base}/v1/play/clip/master.m3u8"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let upload = client
        .post(format!("{base}/v1/uploads"))
        .bearer_auth("ingest-key")
        .json(&serde_json::json!({"filename": "a.mp4", "content_type": "video/mp4", "size": 1}))
        .send()
        .await
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    assert_eq!(master.status(), 200);
    let cookies: Vec<String> = master
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 9, "360p, 480p and audio: {cookies:?}");
    assert!(cookies.iter().all(
        |c| c.contains("; Domain=example.com; Path=/assets/clip/v1/hls/")
            && c.contains("; Secure; HttpOnly; SameSite=None")
    ));
    let body = master.text().await.unwrap();
    assert!(
        body.contains("https://cdn.example.com/assets/clip/v1/hls/480p/index.m3u8"),
        "{body}"
    );
    assert!(!body.contains("720p"), "{body}");
    assert_eq!(upload.status(), 501);
    let problem: serde_json::Value = upload.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not available in mode aws yet"),
        "{problem}"
    );
}
