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
