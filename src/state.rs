//! `AppState`: the services built once at start-up and shared (`Arc`) by
//! every request. Building it is where config turns into live objects:
//! the store is opened and migrated, keys are parsed, tiers are seeded.

use crate::backends::storage::ObjectStore;
use crate::backends::storage::local::LocalStore;
use crate::backends::store::sqlite::SqliteStore;
use crate::backends::store::{Store, StoreExt};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, Mode};
use crate::engine::cloudfront::keys::KeyRing;
use crate::metrics::Metrics;
use std::sync::Arc;

/// The services, behind one `Arc`: axum clones the state for every
/// extractor and middleware that asks for it, so a clone must be one
/// reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub objects: Arc<dyn ObjectStore>,
    pub keys: Arc<KeyRing>,
    pub auth: Arc<crate::auth::Authenticator>,
    pub tiers: Arc<crate::playback::tiers::TierCache>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub play: Arc<crate::playback::Play>,
    pub pipeline: Arc<crate::pipeline::runner::Pipeline>,
    /// Mode aws: direct-to-S3 uploads into the source bucket.
    pub uploads: Option<Arc<crate::backends::storage::s3::S3Uploads>>,
    pub cdn: Arc<dyn crate::backends::cdn::Invalidator>,
    /// Content keys and key tokens; `None` when nothing wraps keys.
    pub protection: Option<Arc<crate::protect::Protection>>,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// Why the service could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("keys: {0}")]
    Keys(#[from] crate::engine::cloudfront::keys::KeyError),
    #[error("auth: {0}")]
    Auth(#[from] crate::auth::jwt::IssuerError),
    #[error("store: {0}")]
    Store(#[from] crate::backends::store::StoreError),
    #[error("object storage: {0}")]
    Storage(#[from] crate::backends::storage::StorageError),
    #[error("origin: {0}")]
    Origin(#[from] crate::playback::origin::OriginError),
    #[error("mode = \"aws\" needs an [aws] section")]
    AwsModeUnavailable,
    #[error("protection: {0}")]
    Protection(String),
}

impl AppState {
    pub async fn build(config: Config) -> Result<AppState, StartupError> {
        let keys = KeyRing::from_specs(&config.signing.active, &config.signing.keys)?;
        let auth = crate::auth::Authenticator::from_config(&config.auth)?;
        let mut uploads = None;
        let mut backend = crate::pipeline::runner::Backend::Local;
        let mut sns = None;
        let mut cdn: Arc<dyn crate::backends::cdn::Invalidator> =
            Arc::new(crate::backends::cdn::NoCdnCache);
        let mut sdk_config = None;
        let (store, objects): (Arc<dyn Store>, Arc<dyn ObjectStore>) = match config.mode {
            Mode::Local => (
                Arc::new(SqliteStore::open(&config.store.sqlite_path)?),
                Arc::new(LocalStore::open(&config.storage.root)?),
            ),
            Mode::Aws => {
                let aws = config
                    .aws
                    .as_ref()
                    .ok_or(StartupError::AwsModeUnavailable)?;
                let sdk = crate::backends::aws::sdk_config(aws).await;
                sdk_config = Some(sdk.clone());
                cdn = Arc::new(crate::backends::cdn::CloudFrontInvalidator::new(
                    &sdk,
                    aws.cloudfront_distribution_id.clone(),
                ));
                sns = aws
                    .sns_topic_arn
                    .as_ref()
                    .map(|arn| crate::pipeline::notify::Sns::new(&sdk, arn.clone()));
                let sources = Arc::new(crate::backends::storage::s3::S3Uploads::new(
                    &sdk,
                    aws.source_bucket.clone(),
                    aws.endpoint_url.is_some(),
                ));
                backend = crate::pipeline::runner::Backend::MediaConvert {
                    mc: crate::pipeline::mediaconvert::MediaConvert::new(&sdk, aws),
                    sources: sources.clone(),
                };
                uploads = Some(sources);
                (
                    Arc::new(crate::backends::store::dynamodb::DynamoStore::new(
                        &sdk,
                        format!("{}-records", aws.dynamodb_table_prefix),
                    )),
                    Arc::new(crate::backends::storage::s3::S3Store::new(
                        &sdk,
                        aws.output_bucket.clone(),
                        aws.endpoint_url.is_some(),
                    )),
                )
            }
        };
        let seeded = store.seed_tiers(config.tiers.iter()).await?;
        if !seeded.is_empty() {
            let names: Vec<&str> = seeded.iter().map(|t| t.as_str()).collect();
            tracing::info!(tiers = ?names, "seeded tiers from config");
        }
        for jwks in auth.issuers.jwks() {
            if let Err(e) = jwks.refresh().await {
                tracing::warn!(issuer = %jwks.issuer, reason = %e, "JWKS unreachable at start; tokens from this issuer fail until it answers");
            }
            let weak = Arc::downgrade(&jwks);
            let every = jwks.refresh_every;
            drop(jwks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(j) = weak.upgrade() else { break };
                    let _ = j.refresh().await;
                }
            });
        }
        let tiers = Arc::new(crate::playback::tiers::TierCache::new(
            store.clone(),
            config.server.tier_cache_ttl,
            config.cache.stale_if_error,
        ));
        let origin: Arc<dyn crate::playback::origin::Origin> = match &config.origin.http_base {
            Some(base) => Arc::new(crate::playback::origin::HttpOrigin::new(
                base,
                config.origin.timeout,
                config.origin.max_object,
            )?),
            None => Arc::new(crate::playback::origin::StoreOrigin(objects.clone())),
        };
        let protection = crate::protect::from_config(&config, sdk_config.as_ref())
            .await
            .map_err(StartupError::Protection)?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let keys = Arc::new(keys);
        let clock: SharedClock = Arc::new(SystemClock);
        let origin =
            crate::playback::origin::OriginCache::new(origin, &config.cache, metrics.clone());
        let play = crate::playback::Play::new(
            config.clone(),
            store.clone(),
            tiers.clone(),
            keys.clone(),
            clock.clone(),
            metrics.clone(),
            origin,
        )
        .with_protection(protection.clone());
        let pipeline = crate::pipeline::runner::Pipeline::start(
            config.clone(),
            store.clone(),
            objects.clone(),
            clock.clone(),
            crate::pipeline::notify::configured(config.notify.webhook.as_ref(), sns),
            backend,
            protection.clone(),
        );
        match pipeline.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "re-queued interrupted encodes"),
            Err(e) => tracing::warn!(reason = %e, "could not look for interrupted encodes"),
        }
        Ok(AppState(Arc::new(Services {
            auth: Arc::new(auth),
            tiers,
            config,
            store,
            objects,
            keys,
            metrics,
            clock,
            play: Arc::new(play),
            pipeline,
            uploads,
            cdn,
            protection,
        })))
    }
}
