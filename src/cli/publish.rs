//! `playgate publish`: an encoded directory becomes an asset's next version.

use super::{Fail, load_config};
use crate::clock::{Clock, SystemClock};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn publish(
    path: &Path,
    asset: &str,
    title: Option<String>,
    encrypt: bool,
    dir: &Path,
) -> Result<ExitCode, Fail> {
    let config = load_config(path)?;
    if config.mode != crate::config::Mode::Local {
        return Err(Fail(
            "publish works in local mode; on AWS the pipeline publishes".into(),
        ));
    }
    let id = crate::domain::AssetId::parse(asset)?;
    let store = crate::backends::store::sqlite::SqliteStore::open(&config.store.sqlite_path)
        .map_err(|e| Fail(e.to_string()))?;
    let objects = crate::backends::storage::local::LocalStore::open(&config.storage.root)
        .map_err(|e| Fail(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let published = runtime.block_on(async {
        // The configured tiers, as the server seeds them, so the report
        // covers them even before the first start.
        use crate::backends::store::StoreExt;
        store
            .seed_tiers(config.tiers.iter())
            .await
            .map_err(|e| Fail(e.to_string()))?;
        let (tree, keys) = if encrypt {
            let p = crate::protect::from_config(&config, None)
                .await
                .map_err(Fail)?
                .ok_or_else(|| Fail("--encrypt needs protection.kek_file or kek_env".into()))?;
            let copy = config
                .pipeline
                .work_dir
                .join(format!("publish-{}", uuid::Uuid::new_v4().simple()));
            crate::pipeline::publish::copy_tree(dir, &copy)
                .map_err(|e| Fail(format!("cannot copy {}: {e}", dir.display())))?;
            let keys = p.encrypt_dir(&id, &copy).await;
            let keys = keys.map_err(|e| {
                let _ = std::fs::remove_dir_all(&copy);
                Fail(format!("cannot encrypt {}: {e}", dir.display()))
            })?;
            (Some(copy), keys)
        } else {
            (None, Vec::new())
        };
        let published = crate::pipeline::publish::publish_dir_with_keys(
            &store,
            &objects,
            &id,
            title,
            tree.as_deref().unwrap_or(dir),
            SystemClock.now_epoch(),
            keys,
        )
        .await;
        if let Some(t) = &tree {
            let _ = std::fs::remove_dir_all(t);
        }
        let version = published.map_err(|e| Fail(e.to_string()))?;
        let asset = store
            .get_asset(&id)
            .await
            .map_err(|e| Fail(e.to_string()))?;
        Ok::<_, Fail>((version, asset.and_then(|a| a.value.playability)))
    })?;
    let (version, playability) = published;
    let base = config.server.public_url.as_str();
    println!("{base}/v1/play/{id}/master.m3u8 (version {version})");
    for t in playability.iter().flat_map(|p| &p.tiers) {
        if !t.hls.playable || t.hls.fallback {
            eprintln!(
                "tier {}: {}{}",
                t.tier,
                if t.hls.playable {
                    "plays with URL delivery (fallback): "
                } else {
                    "cannot play: "
                },
                t.hls.problem.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
