//! Copies a directory tree into an object store under a prefix: what an
//! encoder (ffmpeg, MediaConvert) leaves behind. Shared through `#[path]`.

use std::path::Path;

/// Every file under `root/sub` as `{prefix}/{path relative to root}`.
pub async fn put_tree(
    objects: &dyn playgate::backends::storage::ObjectStore,
    root: &Path,
    sub: &str,
    prefix: &str,
) {
    let mut stack = vec![root.join(sub)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap();
            let key =
                playgate::backends::storage::ObjectKey::parse(&format!("{prefix}/{rel}")).unwrap();
            objects
                .put(&key, std::fs::read(&p).unwrap().into())
                .await
                .unwrap();
        }
    }
}
