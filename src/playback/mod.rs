//! The playback service: what the play and sign endpoints compute, with
//! their caches. It looks up the asset, reads the origin (through
//! `OriginCache`), filters the master or MPD for the tier, reads each
//! rendition's media playlist to find its scope, and signs each scope —
//! all through `playback` and `dash`, which stay pure. No HTTP types here.
//!
//! Caches, each bounded and counted in `playgate_cache_{hits,misses}`:
//! - `assets`: asset records for `cache.asset_ttl` (`readthrough`: while
//!   the store is unavailable, the last record read, without waiting);
//! - `masters`: one authorised master/MPD per (asset, version, tier and its
//!   rules, delivery, expiry, bound IP), built once however many viewers
//!   ask at once; its expiry is rounded to `signing.expiry_bucket`, so
//!   viewers share it for the whole bucket. One built from stale playlists
//!   is kept for 1 s only;
//! - `signatures`: per (pattern, expiry, key, IP), so a rendition shared
//!   by several tiers is signed once per bucket.

use crate::backends::storage::ObjectKey;
use crate::backends::store::{Asset, AssetStatus, Store, StoreError, StoreExt};
use crate::config::Config;
use crate::domain::{AssetId, KeyPairId, TierName};
use crate::engine::authorise::{
    Deliverable, Grant, Layout, PlaybackError, authorise_scoped, expiry, scope_master,
};
use crate::engine::cloudfront::cookies::{CookieAttrs, set_cookie};
use crate::engine::cloudfront::policy::{Cidr, matcher};
use crate::engine::cloudfront::signer::{SignOptions, Signature};
use crate::engine::cloudfront::verifier::{Rejection, verify_request};
use crate::engine::hls::scope::{ScopeError, Scopes, without_query};
use crate::engine::tiers::{Delivery, TierRules};
use crate::metrics::{CacheLabels, Metrics};
use crate::playback::origin::{Fetched, OriginCache, OriginError};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub mod origin;
pub mod readthrough;
pub mod tiers;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlayError {
    #[error("no such asset")]
    UnknownAsset,
    #[error("the asset is not ready to play (status: {0})")]
    NotReady(String),
    #[error("this asset needs tier {0} or higher")]
    TierTooLow(TierName),
    #[error("nothing this tier may play remains in this asset")]
    NothingPlayable,
    #[error("no such playlist")]
    NoSuchPlaylist,
    #[error("signature refused: {0}")]
    Refused(Rejection),
    #[error(transparent)]
    Origin(#[from] OriginError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the asset's origin content cannot be served: {0}")]
    Content(String),
    #[error("key refused: {0}")]
    KeyRefused(crate::protect::token::Refusal),
    #[error(transparent)]
    Key(#[from] crate::protect::KeyError),
    #[error("{asked} is not available for this asset: {reason}")]
    DeliveryUnavailable {
        /// What was asked for (`cookie delivery`, `URL delivery`).
        asked: &'static str,
        reason: String,
        /// What would work instead, when something would.
        works: Option<&'static str>,
    },
}

impl From<PlaybackError> for PlayError {
    fn from(e: PlaybackError) -> Self {
        match e {
            PlaybackError::NotPathSeparable => PlayError::DeliveryUnavailable {
                asked: "cookie delivery",
                reason: e.to_string(),
                works: None,
            },
            PlaybackError::NotGatewayLayout(_)
            | PlaybackError::Scope(ScopeError::Overlap(_) | ScopeError::MixedOrigins(_)) => {
                PlayError::DeliveryUnavailable {
                    asked: "URL delivery",
                    reason: e.to_string(),
                    works: None,
                }
            }
            other => PlayError::Content(other.to_string()),
        }
    }
}

/// The delivery a tier's viewer gets on this layout: the one asked for,
/// else (a cookie tier whose `fallback` is `urls`) URL delivery, else the
/// problem naming what would work.
fn deliverable(
    allowed: &[Url],
    scoped: &Scopes,
    asked: Delivery,
    rules: &TierRules,
    layout: &Layout<'_>,
) -> Result<Delivery, PlayError> {
    match crate::engine::authorise::deliverable(allowed, scoped, asked, rules.fallback, layout) {
        Deliverable::Asked(d) | Deliverable::Fallback(d) => Ok(d),
        Deliverable::Unavailable { why, works } => Err(PlayError::DeliveryUnavailable {
            asked: delivery_name(asked),
            reason: why.to_string(),
            works: works.map(delivery_name),
        }),
    }
}

fn delivery_name(d: Delivery) -> &'static str {
    match d {
        Delivery::Cookies => "cookie delivery",
        Delivery::Urls => "URL delivery",
    }
}

/// HLS master or DASH MPD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Hls,
    Dash,
}

/// Who is asking: a tier (from a viewer token, or named by a backend),
/// how long their signatures should last, and their IP when the tier
/// binds to it.
#[derive(Debug, Clone)]
pub struct Viewer<'a> {
    pub tier: &'a TierName,
    /// As the tier cache hands them out: the masters cache keys on this
    /// very `Arc`, so new rules (a new `Arc` after each reload) never meet
    /// a master built under the old ones.
    pub rules: &'a Arc<TierRules>,
    pub ip: Option<IpAddr>,
    /// Overrides the tier's signature lifetime (already checked against
    /// the tier's and the config's limits).
    pub ttl: Option<Duration>,
}

/// What one tier's viewer of one asset gets. Everything a response needs
/// is rendered once, when the entitlement is built, and shared by every
/// viewer in its expiry bucket.
#[derive(Debug)]
pub struct Entitlement {
    pub asset: AssetId,
    pub format: Format,
    pub delivery: Delivery,
    /// The authorised master or MPD.
    pub body: bytes::Bytes,
    pub grants: Vec<Grant>,
    /// The cookies carrying the grants (cookie delivery), with their ready
    /// `Set-Cookie` values.
    pub cookies: Vec<CookieGrant>,
    pub set_cookie: Vec<axum::http::HeaderValue>,
    /// The allowed renditions' playlist (or MPD representation) URLs.
    pub renditions: Vec<String>,
    pub expires: u64,
    /// Built from an origin copy served stale.
    pub stale: bool,
}

/// Signed frame captures (posters, scrub previews): append `?{query}` to
/// any of `urls`; `poster` is the first, signed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Thumbnails {
    pub poster: String,
    pub urls: Vec<String>,
    pub query: String,
    pub expires_at: u64,
}

/// A cookie as the session and sign endpoints describe it. `Expires`
/// only (no `Max-Age`), so one rendering serves the whole bucket.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CookieGrant {
    pub name: &'static str,
    pub value: String,
    pub path: String,
    pub domain: Option<String>,
    pub expires: u64,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: &'static str,
    /// The ready `Set-Cookie` header value.
    pub set_cookie: String,
}

/// Tier rules compared by identity (see `Viewer::rules`). Holding the
/// `Arc` keeps its address from being reused while the key lives.
#[derive(Clone)]
struct RulesRef(Arc<TierRules>);

impl PartialEq for RulesRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for RulesRef {}
impl Hash for RulesRef {
    fn hash<H: Hasher>(&self, h: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), h);
    }
}

/// A master built from fresh playlists is kept for `cache.origin_fresh`;
/// one built from a stale copy (the origin failing) for `STALE_MASTER`,
/// so viewers share it and the next one soon picks up the origin's return.
struct MasterExpiry {
    fresh: Duration,
}

/// How long a master built from stale playlists is shared.
const STALE_MASTER: Duration = Duration::from_secs(1);

impl moka::Expiry<MasterKey, Arc<Entitlement>> for MasterExpiry {
    fn expire_after_create(
        &self,
        _: &MasterKey,
        master: &Arc<Entitlement>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(if master.stale {
            STALE_MASTER.min(self.fresh)
        } else {
            self.fresh
        })
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct MasterKey {
    asset: AssetId,
    version: u32,
    tier: TierName,
    rules: RulesRef,
    format: Format,
    delivery: Delivery,
    expires: u64,
    ip: Option<IpAddr>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct SignatureKey {
    pattern: String,
    expires: u64,
    starts: Option<u64>,
    key: KeyPairId,
    ip: Option<String>,
}

/// What each rendition of a version may be granted, whoever asks: the
/// scopes of each rendition against every other rendition of the master
/// (so tighter than, or the same as, any tier's). URL delivery signs from
/// it the URIs of a media playlist that the viewer's signature (for the
/// playlist) does not cover: holding a valid signature for a rendition's
/// playlist is being entitled to that rendition, as the master grants
/// nothing that covers a forbidden rendition's playlist.
pub struct RenditionPlan {
    /// Each rendition's playlist URL (without query).
    playlists: Vec<String>,
    scopes: Vec<Scopes>,
}

impl RenditionPlan {
    /// From the unfiltered master's renditions and what each uses.
    pub fn new(renditions: &[(Url, Vec<Url>)]) -> Result<Self, ScopeError> {
        let mut playlists = Vec::with_capacity(renditions.len());
        let mut scopes = Vec::with_capacity(renditions.len());
        for (i, (playlist, uris)) in renditions.iter().enumerate() {
            let others: Vec<Url> = renditions
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, (_, u))| u.iter().cloned())
                .collect();
            let other_playlists: Vec<Url> = renditions
                .iter()
                .filter(|(p, _)| p != playlist)
                .map(|(p, _)| p.clone())
                .collect();
            scopes.push(crate::engine::hls::scope::scopes(
                std::slice::from_ref(uris),
                &others,
                &other_playlists,
            )?);
            playlists.push(without_query(playlist.as_str()).to_owned());
        }
        Ok(RenditionPlan { playlists, scopes })
    }

    /// The pattern rendition `playlist` may be granted for `uri` (an
    /// absolute URL without query).
    pub fn pattern_for(&self, playlist: &Url, uri: &str) -> Option<String> {
        let r = self
            .playlists
            .iter()
            .position(|p| p == without_query(playlist.as_str()))?;
        self.scopes[r]
            .of(0)
            .find(|s| s.covers(uri))
            .map(|s| s.pattern())
    }
}

/// A URL-mode media playlist, signed.
#[derive(Debug)]
pub struct SignedMedia {
    pub body: String,
    /// Seconds a private cache may keep it: never past the signature.
    pub max_age: u64,
    pub stale: bool,
}

/// Hit and miss counters of one cache, resolved once.
struct Counters {
    hits: prometheus_client::metrics::counter::Counter,
    misses: prometheus_client::metrics::counter::Counter,
}

impl Counters {
    fn new(metrics: &Metrics, cache: &str) -> Self {
        let labels = CacheLabels {
            cache: cache.to_owned(),
        };
        Counters {
            hits: metrics.cache_hits.get_or_create(&labels).clone(),
            misses: metrics.cache_misses.get_or_create(&labels).clone(),
        }
    }

    fn count(&self, hit: bool) {
        if hit {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
    }
}

pub struct Play {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    tiers: Arc<crate::playback::tiers::TierCache>,
    keys: Arc<crate::engine::cloudfront::keys::KeyRing>,
    clock: crate::clock::SharedClock,
    counted_assets: Counters,
    counted_masters: Counters,
    counted_signatures: Counters,
    pub origin: OriginCache,
    /// Asset records: fresh for `asset_ttl`; while the store is
    /// unavailable, the last record read for `cache.stale_if_error`.
    assets: crate::playback::readthrough::ReadThrough<AssetId, Option<Arc<Asset>>>,
    masters: moka::future::Cache<MasterKey, Arc<Entitlement>>,
    signatures: moka::sync::Cache<SignatureKey, Signature>,
    /// Per (asset, version), built when a URL-delivery media playlist
    /// needs more than the viewer's signature; for `cache.origin_fresh`.
    plans: moka::future::Cache<(AssetId, u32), Arc<RenditionPlan>>,
    protection: Option<Arc<crate::protect::Protection>>,
    counted_keys: KeyCounters,
}

/// `playgate_content_keys_total{outcome}`.
struct KeyCounters {
    issued: prometheus_client::metrics::counter::Counter,
    refused: prometheus_client::metrics::counter::Counter,
}

impl KeyCounters {
    fn new(metrics: &Metrics) -> Self {
        KeyCounters {
            issued: metrics.content_keys("issued"),
            refused: metrics.content_keys("refused"),
        }
    }
}

fn ipv4_cidr(ip: IpAddr) -> Option<Cidr> {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
    };
    Cidr::parse(&format!("{v4}/32")).ok()
}

impl Play {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        tiers: Arc<crate::playback::tiers::TierCache>,
        keys: Arc<crate::engine::cloudfront::keys::KeyRing>,
        clock: crate::clock::SharedClock,
        metrics: Arc<Metrics>,
        origin: OriginCache,
    ) -> Self {
        let c = &config.cache;
        Play {
            assets: crate::playback::readthrough::ReadThrough::new(
                "asset records",
                100_000,
                None,
                crate::playback::readthrough::Timing::new(c.asset_ttl, c.stale_if_error),
            ),
            masters: moka::future::Cache::builder()
                .max_capacity(c.masters_max_entries)
                .expire_after(MasterExpiry {
                    fresh: c.origin_fresh,
                })
                .build(),
            signatures: moka::sync::Cache::builder()
                .max_capacity(c.signatures_max_entries)
                .time_to_live(config.signing.expiry_bucket)
                .build(),
            plans: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(c.origin_fresh.max(Duration::from_secs(1)))
                .build(),
            config,
            store,
            tiers,
            keys,
            clock,
            counted_assets: Counters::new(&metrics, "assets"),
            counted_masters: Counters::new(&metrics, "masters"),
            counted_signatures: Counters::new(&metrics, "signatures"),
            counted_keys: KeyCounters::new(&metrics),
            origin,
            protection: None,
        }
    }

    /// Encrypted versions' keys: cookies and key tokens for them, and the
    /// key endpoint.
    pub fn with_protection(mut self, protection: Option<Arc<crate::protect::Protection>>) -> Self {
        self.protection = protection;
        self
    }

    fn cdn_base(&self) -> &str {
        self.config.cdn.base_url.as_str()
    }

    /// Drops this replica's cached record of an asset (after a delete).
    pub async fn forget(&self, id: &AssetId) {
        self.assets.invalidate(id).await;
    }

    /// The asset if it may be played at all.
    pub async fn playable_asset(&self, id: &AssetId) -> Result<(Arc<Asset>, u32), PlayError> {
        let (store, key) = (self.store.clone(), id.clone());
        let got = self
            .assets
            .get(id, move || async move {
                Ok(store.get_asset(&key).await?.map(|v| Arc::new(v.value)))
            })
            .await
            .map_err(|e| PlayError::Store(Arc::unwrap_or_clone(e)))?;
        self.counted_assets
            .count(got.source == crate::playback::readthrough::Source::Hit);
        let cached = got.value;
        let asset = cached.ok_or(PlayError::UnknownAsset)?;
        match (asset.status, asset.current_version) {
            (AssetStatus::Deleted, _) => Err(PlayError::UnknownAsset),
            // A re-encode (`processing`) writes its version beside the
            // current one, which plays until the record points at the new.
            (AssetStatus::Ready | AssetStatus::Processing, Some(v)) => Ok((asset, v)),
            (status, _) => Err(PlayError::NotReady(
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            )),
        }
    }

    /// Refuses a tier below the asset's `min_tier`.
    async fn check_min_tier(&self, asset: &Asset, rules: &TierRules) -> Result<(), PlayError> {
        let Some(min) = &asset.min_tier else {
            return Ok(());
        };
        // Through the tier cache: this runs on every master request.
        let needed = self
            .tiers
            .get(min)
            .await?
            .map(|r| r.rank)
            .unwrap_or(u32::MAX);
        if rules.rank >= needed {
            Ok(())
        } else {
            Err(PlayError::TierTooLow(min.clone()))
        }
    }

    /// A grant's lifetime: the request's, else the tier's, else the
    /// default — never past `signing.max_ttl` (rules stored before that
    /// check existed may say more).
    fn ttl_of(&self, viewer: &Viewer<'_>) -> Duration {
        viewer
            .ttl
            .or(viewer.rules.signature_ttl.map(|d| d.0))
            .unwrap_or(self.config.signing.default_ttl)
            .min(self.config.signing.max_ttl)
    }

    /// The authorised master (or MPD) for this viewer; shared by every
    /// viewer with the same key for the expiry bucket.
    pub async fn authorise(
        &self,
        id: &AssetId,
        viewer: &Viewer<'_>,
        format: Format,
        delivery: Delivery,
    ) -> Result<Arc<Entitlement>, PlayError> {
        let (asset, version) = self.playable_asset(id).await?;
        self.check_min_tier(&asset, viewer.rules).await?;
        let now = self.clock.now_epoch();
        let expires = expiry(now, self.ttl_of(viewer), self.config.signing.expiry_bucket);
        let ip = viewer.ip.filter(|_| viewer.rules.bind_ip);
        let key = MasterKey {
            asset: id.clone(),
            version,
            tier: viewer.tier.clone(),
            rules: RulesRef(viewer.rules.clone()),
            format,
            // DASH is served with cookies whatever the tier says.
            delivery: if format == Format::Dash {
                Delivery::Cookies
            } else {
                delivery
            },
            expires,
            ip,
        };
        // Never longer than the shared entry would stay fresh.
        let near_ttl = self.config.cache.origin_fresh.min(near::TTL);
        if let Some(hit) = near::get(&key, near_ttl) {
            self.counted_masters.count(true);
            return Ok(hit);
        }
        if let Some(hit) = self.masters.get(&key).await {
            self.counted_masters.count(true);
            return Ok(near::put(key, hit));
        }
        let build = self.build(key.clone(), viewer.rules, &asset);
        let entry = self
            .masters
            .entry_by_ref(&key)
            .or_try_insert_with(build)
            .await
            .map_err(Arc::unwrap_or_clone)?;
        self.counted_masters.count(!entry.is_fresh());
        Ok(near::put(key, entry.into_value()))
    }

    /// Reads `url` (a CDN URL of this deployment) from the origin.
    async fn read_cdn_url(&self, url: &Url) -> Option<Result<Fetched, OriginError>> {
        let rest = url
            .as_str()
            .strip_prefix(self.cdn_base())?
            .strip_prefix('/')?;
        let path = rest.split(['?', '#']).next()?;
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .ok()?;
        let key = ObjectKey::parse(&decoded).ok()?;
        Some(self.origin.get(&key).await)
    }

    async fn build(
        &self,
        key: MasterKey,
        rules: &TierRules,
        asset: &Asset,
    ) -> Result<Arc<Entitlement>, PlayError> {
        let base = format!("{}/assets/{}/v{}", self.cdn_base(), key.asset, key.version);
        let (object, url) = match key.format {
            Format::Hls => ("hls/master.m3u8", format!("{base}/hls/master.m3u8")),
            Format::Dash => ("dash/manifest.mpd", format!("{base}/dash/manifest.mpd")),
        };
        let url = Url::parse(&url).map_err(|e| PlayError::Content(e.to_string()))?;
        let object = ObjectKey::parse(&format!("assets/{}/v{}/{object}", key.asset, key.version))
            .map_err(|e| PlayError::Content(e.to_string()))?;
        let fetched = self.origin.get(&object).await.map_err(|e| match e {
            OriginError::NotFound(_) => PlayError::NoSuchPlaylist,
            other => PlayError::Origin(other),
        })?;
        let mut stale = fetched.stale;
        let sign_opts = |ip: Option<IpAddr>| SignOptions {
            expires: key.expires,
            ip: ip.and_then(ipv4_cidr),
            hash: self.config.signing.hash,
            ..SignOptions::default()
        };
        let opts = sign_opts(key.ip);
        let ent = match key.format {
            Format::Hls => {
                let filtered =
                    match crate::engine::hls::master::filter(&fetched.bytes, rules, Some(&url)) {
                        Ok(f) => f,
                        Err(crate::engine::hls::master::MasterError::NoVideoVariant) => {
                            return Err(PlayError::NothingPlayable);
                        }
                        Err(e) => return Err(PlayError::Content(e.to_string())),
                    };
                let wanted = crate::engine::hls::master::rendition_playlists(
                    filtered.kept.iter().chain(&filtered.removed),
                );
                let (media, media_stale) = self.media_of(&wanted).await?;
                stale |= media_stale;
                let gateway = self.config.server.public_url.as_str();
                let layout = Layout {
                    cdn_base: self.cdn_base(),
                    gateway,
                };
                let (allowed, scoped) = scope_master(&filtered, |u| {
                    Ok(media
                        .get(u.as_str())
                        .cloned()
                        .unwrap_or_else(|| vec![u.clone()]))
                })?;
                let delivery = deliverable(&allowed, &scoped, key.delivery, rules, &layout)?;
                let auth = authorise_scoped(
                    &filtered,
                    &url,
                    delivery,
                    &layout,
                    &allowed,
                    &scoped,
                    |scope| self.signature(&scope.pattern(), &opts),
                )?;
                let renditions: Vec<String> = filtered
                    .kept
                    .iter()
                    .filter(|u| u.kind.is_rendition())
                    .filter_map(|u| u.url.as_ref().map(Url::to_string))
                    .collect();
                self.entitlement(
                    &key,
                    asset,
                    delivery,
                    auth.playlist,
                    auth.grants,
                    renditions,
                    stale,
                )
            }
            Format::Dash => {
                let auth =
                    crate::engine::authorise::authorise_mpd(&fetched.bytes, &url, rules, |scope| {
                        self.signature(&scope.pattern(), &opts)
                    })
                    .map_err(|e| match e {
                        PlaybackError::Mpd(crate::engine::dash::mpd::MpdError::NoVideoVariant) => {
                            PlayError::NothingPlayable
                        }
                        PlaybackError::NotPathSeparable => PlayError::DeliveryUnavailable {
                            asked: "DASH (delivered with cookies only)",
                            reason: e.to_string(),
                            works: None,
                        },
                        other => PlayError::Content(other.to_string()),
                    })?;
                self.entitlement(
                    &key,
                    asset,
                    Delivery::Cookies,
                    auth.mpd,
                    auth.grants,
                    auth.renditions,
                    stale,
                )
            }
        };
        Ok(Arc::new(ent))
    }

    /// Every URI each of `playlists` (CDN URLs; all at once: an origin
    /// that hangs costs one timeout, not one per rendition) uses, by
    /// playlist URL, and whether any came from a stale copy. A playlist
    /// on another host keeps only its own URL.
    async fn media_of(
        &self,
        playlists: &[&Url],
    ) -> Result<(HashMap<String, Vec<Url>>, bool), PlayError> {
        let reads =
            futures_util::future::join_all(playlists.iter().map(|u| self.read_cdn_url(u))).await;
        let mut media: HashMap<String, Vec<Url>> = HashMap::new();
        let mut stale = false;
        for (purl, read) in playlists.iter().zip(reads) {
            let uris = match read {
                Some(Ok(f)) => {
                    stale |= f.stale;
                    let mut uris = crate::engine::hls::scope::media_uris(purl, &f.bytes)
                        .map_err(|e| PlayError::Content(e.to_string()))?;
                    // Only what the CDN serves is in a CDN scope: not the
                    // gateway's key endpoint, even on the CDN's host (local
                    // mode; a distribution routing /v1/* to the gateway).
                    let cdn = self.cdn_base();
                    uris.retain(|u| {
                        u.as_str()
                            .strip_prefix(cdn)
                            .is_some_and(|r| r.starts_with('/'))
                            && !self
                                .protection
                                .as_ref()
                                .is_some_and(|p| p.is_key_url(u.as_str()))
                    });
                    uris
                }
                Some(Err(OriginError::NotFound(_))) => {
                    return Err(PlayError::Content(format!(
                        "the master lists {purl}, which the origin does not have"
                    )));
                }
                Some(Err(e)) => return Err(PlayError::Origin(e)),
                None => vec![(*purl).clone()],
            };
            media.insert(purl.to_string(), uris);
        }
        Ok((media, stale))
    }

    /// The version's rendition plan (see `RenditionPlan`), shared for
    /// `cache.origin_fresh`.
    async fn plan(&self, id: &AssetId, version: u32) -> Result<Arc<RenditionPlan>, PlayError> {
        let build = async {
            let master = format!("{}/assets/{id}/v{version}/hls/master.m3u8", self.cdn_base());
            let url = Url::parse(&master).map_err(|e| PlayError::Content(e.to_string()))?;
            let fetched = self
                .read_cdn_url(&url)
                .await
                .ok_or(PlayError::NoSuchPlaylist)??;
            let all = TierRules::default();
            let filtered = crate::engine::hls::master::filter(&fetched.bytes, &all, Some(&url))
                .map_err(|e| PlayError::Content(e.to_string()))?;
            let playlists = crate::engine::hls::master::rendition_playlists(&filtered.kept);
            let (mut media, _) = self.media_of(&playlists).await?;
            let renditions: Vec<(Url, Vec<Url>)> = playlists
                .iter()
                .map(|p| {
                    let uris = media.remove(p.as_str()).unwrap_or_default();
                    ((*p).clone(), uris)
                })
                .collect();
            RenditionPlan::new(&renditions)
                .map(Arc::new)
                .map_err(|e| PlayError::Content(e.to_string()))
        };
        self.plans
            .try_get_with((id.clone(), version), build)
            .await
            .map_err(Arc::unwrap_or_clone)
    }

    /// One scope's signature, from the cache when another viewer (of any
    /// tier) already needed it in this bucket.
    fn signature(
        &self,
        pattern: &str,
        opts: &SignOptions,
    ) -> Result<Signature, crate::engine::cloudfront::signer::SignError> {
        let signer = self.keys.active();
        let key = SignatureKey {
            pattern: pattern.to_owned(),
            expires: opts.expires,
            starts: opts.starts,
            key: signer.id.clone(),
            ip: opts.ip.map(|c| c.to_string()),
        };
        if let Some(hit) = self.signatures.get(&key) {
            self.counted_signatures.count(true);
            return Ok(hit);
        }
        self.counted_signatures.count(false);
        let sig = Signature::for_resource(signer, pattern, opts)?;
        self.signatures.insert(key, sig.clone());
        Ok(sig)
    }

    /// The current version's frame captures, signed: one custom policy for
    /// `{cdn}/assets/{id}/v{n}/thumbs/*` until `expires` (shared through
    /// the signature cache), its query to append to every URL, the URLs in
    /// order and the first one signed (a poster). `None` without captures.
    pub fn thumbnails(&self, asset: &Asset, version: u32, expires: u64) -> Option<Thumbnails> {
        let first = asset.thumbnails.first()?;
        let base = format!("{}/assets/{}/v{version}/thumbs/", self.cdn_base(), asset.id);
        let opts = SignOptions {
            expires,
            hash: self.config.signing.hash,
            ..SignOptions::default()
        };
        let sig = self.signature(&format!("{base}*"), &opts).ok()?;
        let query = sig.query();
        Some(Thumbnails {
            poster: format!("{base}{first}?{query}"),
            urls: asset
                .thumbnails
                .iter()
                .map(|t| format!("{base}{t}"))
                .collect(),
            query,
            expires_at: expires,
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of one entitlement, each built by the caller"
    )]
    fn entitlement(
        &self,
        key: &MasterKey,
        asset: &Asset,
        delivery: Delivery,
        body: String,
        grants: Vec<Grant>,
        renditions: Vec<String>,
        stale: bool,
    ) -> Entitlement {
        let cookies = if delivery == Delivery::Cookies {
            // The media playlists come from the CDN as stored, so the key
            // URIs in them carry nothing; a cookie for the gateway's key
            // path does.
            let mut c = self.cookies(&grants, key.expires);
            c.extend(self.key_cookie(key, asset, &renditions));
            c
        } else {
            Vec::new()
        };
        let set_cookie = cookies
            .iter()
            .filter_map(|c| axum::http::HeaderValue::from_str(&c.set_cookie).ok())
            .collect();
        Entitlement {
            asset: key.asset.clone(),
            format: key.format,
            delivery,
            body: body.into(),
            grants,
            cookies,
            set_cookie,
            renditions,
            expires: key.expires,
            stale,
        }
    }

    /// The cookies that carry `grants` until `expires`.
    fn cookies(&self, grants: &[Grant], expires: u64) -> Vec<CookieGrant> {
        let domain = self.config.cdn.cookie_domain.as_deref();
        let mut out = Vec::new();
        for g in grants {
            let Some(path) = g.scope.cookie_path() else {
                continue;
            };
            for (name, value) in g.signature.cookies() {
                out.push(self.cookie(name, value, path, domain, expires));
            }
        }
        out
    }

    /// One HttpOnly cookie with the CDN cookies' `Secure` and `SameSite`.
    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &str,
        domain: Option<&str>,
        expires: u64,
    ) -> CookieGrant {
        let cdn = &self.config.cdn;
        let attrs = CookieAttrs {
            domain,
            path,
            secure: cdn.cookie_secure,
            http_only: true,
            same_site: cdn.same_site,
            expires,
            max_age: None,
        };
        CookieGrant {
            name,
            set_cookie: set_cookie(name, &value, &attrs),
            value,
            path: path.to_owned(),
            domain: domain.map(str::to_owned),
            expires,
            secure: cdn.cookie_secure,
            http_only: true,
            same_site: match cdn.same_site {
                crate::config::SameSite::None => "None",
                crate::config::SameSite::Lax => "Lax",
                crate::config::SameSite::Strict => "Strict",
            },
        }
    }

    /// URL delivery: the media playlist `rest` (e.g. `720p/index.m3u8`) of
    /// asset `id`, if `query` carries a signature CloudFront would accept
    /// for it, with that signature on every URI.
    pub async fn signed_media(
        &self,
        id: &AssetId,
        rest: &str,
        query: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<SignedMedia, PlayError> {
        if !rest.ends_with(".m3u8") {
            return Err(PlayError::NoSuchPlaylist);
        }
        let (asset, version) = self.playable_asset(id).await?;
        let object = ObjectKey::parse(&format!("assets/{id}/v{version}/hls/{rest}"))
            .map_err(|_| PlayError::NoSuchPlaylist)?;
        let cdn_url = format!("{}/{}", self.cdn_base(), object.as_str());
        let wire = crate::engine::cloudfront::encode::wire_url(&cdn_url)
            .map_err(|_| PlayError::NoSuchPlaylist)?;
        let cf = cloudfront_params(query);
        if cf.is_empty() {
            return Err(PlayError::Refused(Rejection::Missing));
        }
        let now = self.clock.now_epoch();
        let policy = verify_request(
            self.keys.public_keys(),
            &format!("{wire}?{cf}"),
            None,
            client_ip,
            now,
        )
        .map_err(PlayError::Refused)?;
        let fetched = self.origin.get(&object).await.map_err(|e| match e {
            OriginError::NotFound(_) => PlayError::NoSuchPlaylist,
            other => PlayError::Origin(other),
        })?;
        let url = Url::parse(&wire).map_err(|e| PlayError::Content(e.to_string()))?;
        // The key URIs get a key token for this playlist's rendition,
        // never a CDN signature, wherever the gateway is.
        let tokens = self.key_tokens(
            &asset,
            version,
            rest,
            policy.expires,
            policy.ip.and(client_ip),
        );
        // `Some(query)` for the gateway's key URIs (`None` when not this
        // rendition's), `None` for anything else.
        let key_query = |abs: &str| -> Option<Option<&str>> {
            let (p, t) = tokens.as_ref()?;
            let kid = p.key_id_of(id, abs)?;
            Some(t.get(kid).map(String::as_str))
        };
        // The viewer's signature covers the whole rendition (one pattern
        // per rendition): it goes on every URI, as the viewer holds it, in
        // one pass. Otherwise (a name that is a prefix of a forbidden one)
        // each URI it does not cover gets the signature of the plan's
        // pattern for it, with the same expiry and conditions: a second
        // pass, after the plan and the signatures (cached per pattern and
        // expiry) are at hand.
        let covered = matcher(&policy.resource);
        let mut uncovered: Vec<String> = Vec::new();
        let body = crate::engine::hls::media::sign_each(
            &fetched.bytes,
            Some(&url),
            cf.len(),
            |abs, same| {
                if let Some(q) = key_query(abs) {
                    return q;
                }
                if !same {
                    return None;
                }
                // A prefix pattern matches the URL with its query as well.
                if !covered(abs) {
                    let k = without_query(abs);
                    if !covered(k) {
                        uncovered.push(k.to_owned());
                    }
                }
                Some(cf.as_str())
            },
        )
        .map_err(|e| PlayError::Content(e.to_string()))?;
        let body = if uncovered.is_empty() {
            body
        } else {
            let plan = self.plan(id, version).await?;
            let opts = SignOptions {
                expires: policy.expires,
                starts: policy.starts,
                ip: policy.ip,
                hash: self.config.signing.hash,
                resource: None,
            };
            let mut extra: HashMap<String, String> = HashMap::new();
            for k in uncovered {
                if let Some(pattern) = plan.pattern_for(&url, &k) {
                    let sig = self
                        .signature(&pattern, &opts)
                        .map_err(|e| PlayError::Content(e.to_string()))?;
                    extra.insert(k, sig.query());
                }
            }
            crate::engine::hls::media::sign_each(
                &fetched.bytes,
                Some(&url),
                cf.len(),
                |abs, same| {
                    if let Some(q) = key_query(abs) {
                        return q;
                    }
                    if !same {
                        return None;
                    }
                    Some(
                        extra
                            .get(without_query(abs))
                            .map_or(cf.as_str(), String::as_str),
                    )
                },
            )
            .map_err(|e| PlayError::Content(e.to_string()))?
        };
        let max_age = self
            .config
            .cdn
            .playlist_max_age
            .as_secs()
            .min(policy.expires.saturating_sub(now));
        Ok(SignedMedia {
            body,
            max_age,
            stale: fetched.stale,
        })
    }
}

impl Play {
    /// The keys of `version` of `asset` (none when it is not encrypted).
    fn version_keys<'a>(
        asset: &'a Asset,
        version: u32,
    ) -> impl Iterator<Item = &'a crate::protect::ContentKey> + 'a {
        asset
            .content_keys
            .iter()
            .filter(move |k| k.version == version)
    }

    /// Cookie delivery: the `playgate-keys` cookie for the kept
    /// renditions' keys, for the gateway's key path of this asset, when
    /// the version is encrypted.
    fn key_cookie(&self, key: &MasterKey, asset: &Asset, kept: &[String]) -> Option<CookieGrant> {
        let p = self.protection.as_ref()?;
        let hls = format!(
            "{}/assets/{}/v{}/hls/",
            self.cdn_base(),
            key.asset,
            key.version
        );
        let names: Vec<&str> = kept
            .iter()
            .filter_map(|u| u.strip_prefix(hls.as_str())?.split('/').next())
            .collect();
        let granted: Vec<&str> = Self::version_keys(asset, key.version)
            .map(|k| k.rendition.as_str())
            .filter(|r| names.contains(r))
            .collect();
        if granted.is_empty() {
            return None;
        }
        let token = p.tokens.issue(
            key.asset.as_str(),
            &granted,
            key.expires,
            key.ip.map(crate::protect::token::canonical),
        );
        let path = format!(
            "{}/v1/keys/{}",
            Url::parse(&self.config.server.public_url)
                .map(|u| u.path().trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            key.asset
        );
        // Host-only: the gateway's own cookie.
        Some(self.cookie(crate::protect::COOKIE, token, &path, None, key.expires))
    }

    /// URL delivery: the query (`kt=…`) of a key token per key id of the
    /// rendition whose playlist `rest` is (`720p/index.m3u8`), until
    /// `expires`; `None` without protection.
    fn key_tokens(
        &self,
        asset: &Asset,
        version: u32,
        rest: &str,
        expires: u64,
        ip: Option<IpAddr>,
    ) -> Option<(&crate::protect::Protection, HashMap<String, String>)> {
        let p = self.protection.as_deref()?;
        let rendition = rest.split_once('/')?.0;
        let tokens: HashMap<String, String> = Self::version_keys(asset, version)
            .filter(|k| k.rendition == rendition)
            .map(|k| {
                let t = p.tokens.issue(
                    asset.id.as_str(),
                    &[rendition],
                    expires,
                    ip.map(crate::protect::token::canonical),
                );
                (k.id.clone(), format!("{}={t}", crate::protect::TOKEN_PARAM))
            })
            .collect();
        Some((p, tokens))
    }

    /// `GET /v1/keys/{asset}/{key}`: the clear key, if one of `tokens`
    /// opens its rendition for a client at `client` (else the first
    /// token's refusal).
    pub async fn content_key(
        &self,
        id: &AssetId,
        key_id: &str,
        tokens: &[String],
        client: Option<IpAddr>,
    ) -> Result<crate::protect::ClearKey, PlayError> {
        let out = async {
            let p = self.protection.as_ref().ok_or(PlayError::UnknownAsset)?;
            // Unknown asset, unknown key: 404 either way, before the token
            // is looked at, so ids cannot be probed with a token.
            let (asset, _) = self.playable_asset(id).await?;
            let key = asset
                .content_keys
                .iter()
                .find(|k| k.id == key_id)
                .ok_or(PlayError::UnknownAsset)?;
            let now = self.clock.now_epoch();
            let checked: Vec<_> = tokens
                .iter()
                .map(|t| p.tokens.check(t, id.as_str(), &key.rendition, client, now))
                .collect();
            if !checked.iter().any(Result::is_ok) {
                let first = checked
                    .into_iter()
                    .find_map(Result::err)
                    .unwrap_or(crate::protect::token::Refusal::Missing);
                return Err(PlayError::KeyRefused(first));
            }
            Ok(p.clear_key(id, key).await?)
        }
        .await;
        match &out {
            Ok(_) => self.counted_keys.issued.inc(),
            Err(_) => self.counted_keys.refused.inc(),
        };
        out
    }
}

/// Each thread's own copies of the entitlements it served in the last
/// second (at most `cache.origin_fresh`), in front of the shared `masters` cache: a popular master is
/// then answered without touching memory another core writes (the shared
/// entry's reference counts, moka's bookkeeping), which under load cost
/// more than the lookup itself. The key is the masters cache's (version,
/// tier rules by identity, expiry bucket, …), so a new version or new
/// rules never meet an old copy; the asset's state and `min_tier` are
/// checked before either cache. At most `CAPACITY` keys a thread (then it
/// starts over); never an entitlement built from stale origin copies.
mod near {
    use super::{Entitlement, MasterKey};
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const CAPACITY: usize = 256;
    pub(super) const TTL: Duration = Duration::from_secs(1);

    type Copies = HashMap<MasterKey, (Arc<Entitlement>, Instant)>;

    thread_local! {
        static NEAR: RefCell<Copies> = RefCell::new(HashMap::new());
    }

    /// This thread's copy of `key`'s entitlement, made less than `ttl` ago.
    pub(super) fn get(key: &MasterKey, ttl: Duration) -> Option<Arc<Entitlement>> {
        NEAR.with(|n| {
            let n = n.borrow();
            let (e, at) = n.get(key)?;
            (at.elapsed() < ttl).then(|| e.clone())
        })
    }

    /// Keeps this thread's copy of `shared`; returns it (or `shared`).
    pub(super) fn put(key: MasterKey, shared: Arc<Entitlement>) -> Arc<Entitlement> {
        if shared.stale {
            return shared;
        }
        let own = Arc::new(shared.own_copy());
        NEAR.with(|n| {
            let mut n = n.borrow_mut();
            if n.len() >= CAPACITY {
                n.clear();
            }
            n.insert(key, (own.clone(), Instant::now()));
        });
        own
    }
}

impl Entitlement {
    /// A copy sharing no buffer with `self` (the body and header values
    /// copied, not reference-counted).
    fn own_copy(&self) -> Entitlement {
        Entitlement {
            asset: self.asset.clone(),
            format: self.format,
            delivery: self.delivery,
            body: bytes::Bytes::copy_from_slice(&self.body),
            grants: self.grants.clone(),
            cookies: self.cookies.clone(),
            set_cookie: self
                .set_cookie
                .iter()
                .filter_map(|v| axum::http::HeaderValue::from_bytes(v.as_bytes()).ok())
                .collect(),
            renditions: self.renditions.clone(),
            expires: self.expires,
            stale: self.stale,
        }
    }
}

/// CloudFront's signing parameters from a query, in their order, others dropped.
fn cloudfront_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            matches!(
                k,
                "Expires" | "Policy" | "Signature" | "Key-Pair-Id" | "Hash-Algorithm"
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cloudfront_parameters_are_kept() {
        assert_eq!(
            cloudfront_params("a=1&Policy=p&Signature=s&b=2&Key-Pair-Id=K"),
            "Policy=p&Signature=s&Key-Pair-Id=K"
        );
        assert_eq!(cloudfront_params("token=x"), "");
    }
}
