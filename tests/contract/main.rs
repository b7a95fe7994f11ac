//! Backend contract tests, written once. Each suite takes any `Store` or
//! `ObjectStore`; the local backends run it here, and the AWS backends
//! (DynamoDB, S3 against the moto server) call the same functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod objects;
mod store;

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

/// The moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import moto.server"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the moto server is not installed (scripts/ensure-deps.sh installs it)"
        );
        eprintln!("moto is not installed; skipping the AWS contract run (CI installs it)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(m);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the moto server did not start on port {port}");
}

async fn moto_sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
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
