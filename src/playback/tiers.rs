//! The tier cache: tier rules read through from the store.

use crate::backends::store::{Store, StoreError, StoreExt, StoreResult};
use crate::domain::TierName;
use crate::engine::tiers::TierRules;

impl super::readthrough::Outage for StoreError {
    fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Tier rules as the request path sees them: read through a short-lived
/// cache so every replica picks up an admin change within `ttl`. When the
/// store is unavailable, the last rules read are used for `stale` more
/// (playback keeps going through a store outage; writes fail).
pub struct TierCache {
    store: std::sync::Arc<dyn Store>,
    rules: super::readthrough::ReadThrough<TierName, Option<std::sync::Arc<TierRules>>>,
}

impl TierCache {
    pub fn new(
        store: std::sync::Arc<dyn Store>,
        ttl: std::time::Duration,
        stale: std::time::Duration,
    ) -> Self {
        let timing = super::readthrough::Timing::new(ttl, stale);
        TierCache {
            store,
            rules: super::readthrough::ReadThrough::new("tier rules", 10_000, None, timing),
        }
    }

    /// A tier's rules (`None`: no such tier); while the store is
    /// unavailable, the last rules read for `stale_if_error`.
    pub async fn get(&self, name: &TierName) -> StoreResult<Option<std::sync::Arc<TierRules>>> {
        let (store, n) = (self.store.clone(), name.clone());
        self.rules
            .get(name, move || async move {
                Ok(store
                    .get_tier(&n)
                    .await?
                    .map(|v| std::sync::Arc::new(v.value)))
            })
            .await
            .map(|got| got.value)
            .map_err(std::sync::Arc::unwrap_or_clone)
    }

    /// Drops a name so this replica sees its own writes at once.
    pub async fn invalidate(&self, name: &TierName) {
        self.rules.invalidate(name).await;
    }
}
