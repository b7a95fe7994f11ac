use bytes::Bytes;
use playgate::backends::storage::{ObjectKey, ObjectStore, StorageError};
use std::sync::Arc;

fn k(s: &str) -> ObjectKey {
    ObjectKey::parse(s).unwrap()
}

pub async fn run_all(s: Arc<dyn ObjectStore>) {
    s.check().await.unwrap();
    put_get_head_delete(&*s).await;
    missing_objects_are_not_found(&*s).await;
    list_by_prefix(&*s).await;
    overwrite_changes_etag(&*s).await;
    ranged_reads_stream_exactly_the_range(&*s).await;
    copies_are_whole_and_independent(&*s).await;
}

/// `copy` (S3: server-side CopyObject) gives the same bytes under the new
/// key, leaves the original, and a missing source is NotFound.
async fn copies_are_whole_and_independent(s: &dyn ObjectStore) {
    let from = k("assets/c/v1/hls/master_360p_00001.ts");
    let to = k("assets/c/v1/hls/360p/master_360p_00001.ts");
    s.put(&from, Bytes::from_static(b"a segment's bytes"))
        .await
        .unwrap();
    let meta = s.copy(&from, &to).await.unwrap();
    assert_eq!(meta.size, 17);
    assert_eq!(
        s.get(&to).await.unwrap(),
        Bytes::from_static(b"a segment's bytes")
    );
    assert!(s.delete(&from).await.unwrap());
    assert_eq!(
        s.get(&to).await.unwrap().len(),
        17,
        "independent of the source"
    );
    assert!(matches!(
        s.copy(&k("assets/c/v1/none"), &k("assets/c/v1/x")).await,
        Err(StorageError::NotFound(_))
    ));
}

async fn read_all(
    s: &dyn ObjectStore,
    key: &ObjectKey,
    r: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut stream = s.read(key, r).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// `read` is what the edge streams: the whole object, a range, a range
/// cut at the end, nothing past the end, and NotFound for no object.
async fn ranged_reads_stream_exactly_the_range(s: &dyn ObjectStore) {
    let key = k("assets/r/v1/hls/720p/seg_00001.m4s");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    s.put(&key, Bytes::from(bytes.clone())).await.unwrap();
    assert_eq!(read_all(s, &key, None).await, bytes);
    assert_eq!(read_all(s, &key, Some(0..1)).await, &bytes[..1]);
    assert_eq!(
        read_all(s, &key, Some(70_000..140_001)).await,
        &bytes[70_000..140_001]
    );
    assert_eq!(
        read_all(s, &key, Some(199_990..300_000)).await,
        &bytes[199_990..],
        "cut at the end"
    );
    assert!(read_all(s, &key, Some(250_000..260_000)).await.is_empty());
    assert_eq!(
        playgate::backends::storage::read_head(s, &key, 16)
            .await
            .unwrap(),
        &bytes[..16]
    );
    assert!(matches!(
        s.read(&k("assets/r/v1/none"), None).await,
        Err(StorageError::NotFound(_))
    ));
}

async fn put_get_head_delete(s: &dyn ObjectStore) {
    let key = k("assets/a1/v1/hls/720p/seg_00001.m4s");
    let meta = s
        .put(&key, Bytes::from_static(b"segment-bytes"))
        .await
        .unwrap();
    assert_eq!(meta.size, 13);
    assert_eq!(
        s.get(&key).await.unwrap(),
        Bytes::from_static(b"segment-bytes")
    );
    let head = s.head(&key).await.unwrap();
    assert_eq!((head.size, head.etag), (13, meta.etag));
    assert!(s.delete(&key).await.unwrap());
    assert!(!s.delete(&key).await.unwrap());
}

async fn missing_objects_are_not_found(s: &dyn ObjectStore) {
    let key = k("assets/none/v1/hls/master.m3u8");
    assert!(matches!(s.get(&key).await, Err(StorageError::NotFound(_))));
    assert!(matches!(s.head(&key).await, Err(StorageError::NotFound(_))));
    // A "directory" is not an object.
    s.put(&k("assets/dir/v1/x"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(matches!(
        s.get(&k("assets/dir/v1")).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.head(&k("assets/dir/v1")).await,
        Err(StorageError::NotFound(_))
    ));
}

async fn list_by_prefix(s: &dyn ObjectStore) {
    for key in [
        "assets/l/v1/hls/master.m3u8",
        "assets/l/v1/hls/480p/index.m3u8",
        "assets/l/v2/hls/master.m3u8",
        "assets/lx/v1/a",
    ] {
        s.put(&k(key), Bytes::from_static(b"#")).await.unwrap();
    }
    let v1: Vec<String> = s
        .list("assets/l/v1/")
        .await
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        v1,
        [
            "assets/l/v1/hls/480p/index.m3u8",
            "assets/l/v1/hls/master.m3u8"
        ]
    );
    let all_l: Vec<String> = s
        .list("assets/l/")
        .await
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(all_l.len(), 3, "{all_l:?}");
    assert!(s.list("assets/nothing/").await.unwrap().is_empty());
}

async fn overwrite_changes_etag(s: &dyn ObjectStore) {
    let key = k("assets/e/v1/hls/master.m3u8");
    let a = s
        .put(&key, Bytes::from_static(b"#EXTM3U\n1"))
        .await
        .unwrap();
    let b = s
        .put(&key, Bytes::from_static(b"#EXTM3U\n22"))
        .await
        .unwrap();
    assert_ne!(a.etag, b.etag);
    assert_eq!(
        s.get(&key).await.unwrap(),
        Bytes::from_static(b"#EXTM3U\n22")
    );
}
