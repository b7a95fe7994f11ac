//! Typed configuration: a TOML file, then `PLAYGATE__SECTION__KEY`
//! environment overrides, read field by field so that `check-config` (and
//! start-up) report every problem at once as `key.path: reason`.
//!
//! Relative paths are relative to the working directory. Secrets are
//! never inline in the file: they come from `*_file` or `*_env` keys and
//! are held in `Secret`.

mod reader;

pub use reader::Issue;
use reader::Section as ConfigSection;
use reader::{Env, Section, apply_env};

pub use crate::domain::HumanDuration;
use crate::domain::{BaseUrl, KeyPairId, TierName};
pub use crate::engine::cloudfront::HashAlg;
pub use crate::engine::cloudfront::cookies::SameSite;
pub use crate::engine::cloudfront::keys::{KeySpec, Pem};
use crate::engine::tiers::TierRules;
use crate::secret::Secret;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "config/local.toml";

/// Every problem found, in file order within each section.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration problem(s)", .0.len())]
pub struct ConfigErrors(pub Vec<Issue>);

impl ConfigErrors {
    fn one(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigErrors(vec![Issue {
            path: path.into(),
            reason: reason.into(),
        }])
    }
}

/// A size written as `"5GiB"`, `"10 MB"` or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a size such as \"1MiB\" or \"5GiB\""))?
        {
            Raw::Bytes(b) => Ok(Size(b)),
            Raw::Text(t) => t
                .parse::<bytesize::ByteSize>()
                .map(|b| Size(b.0))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not a size; write e.g. \"512KiB\", \"1MiB\", \"5GiB\""
                    ))
                }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Local,
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub storage: StorageConfig,
    pub store: StoreConfig,
    pub cdn: CdnConfig,
    pub signing: SigningConfig,
    pub auth: AuthConfig,
    pub tiers: BTreeMap<TierName, TierRules>,
    pub origin: OriginConfig,
    pub cache: CacheConfig,
    pub demo: DemoConfig,
    pub pipeline: PipelineConfig,
    pub notify: NotifyConfig,
    pub protection: ProtectionConfig,
    pub aws: Option<AwsConfig>,
}

/// Content protection (`crate::protect`): what wraps the content keys
/// and signs key tokens. Secrets from `*_file`/`*_env` only.
#[derive(Debug, Clone, Default)]
pub struct ProtectionConfig {
    /// Local envelope key: 64 hex digits (`playgate keygen` writes one).
    pub kek: Option<Secret<String>>,
    /// Mode aws: the KMS key (id, ARN or alias) content keys are data keys of.
    pub kms_key_id: Option<String>,
    /// The key tokens' HMAC secret; derived from the KEK when absent.
    pub token_secret: Option<Secret<String>>,
}

impl ProtectionConfig {
    pub fn configured(&self) -> bool {
        self.kek.is_some() || self.kms_key_id.is_some()
    }
}

/// Where encode results are announced (besides the log), and the secret
/// EventBridge's API destination sends to `/hooks/mediaconvert`.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub webhook: Option<Webhook>,
    /// Absent: the hook route answers 404.
    pub mediaconvert_hook_secret: Option<Secret<String>>,
}

#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: Secret<String>,
    pub retries: u32,
    pub retry_base: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The encode pipeline (local mode: ffmpeg).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Encodes run at once; more wait in the queue.
    pub concurrency: usize,
    /// Scratch space for encodes in progress (emptied per job).
    pub work_dir: PathBuf,
    /// The largest source `POST /v1/uploads` accepts.
    pub max_upload: u64,
    /// How long one upload request may take (instead of
    /// `server.request_timeout`).
    pub upload_timeout: Duration,
    /// S3: sources above this size get a multipart plan (S3's single PUT
    /// stops at 5 GiB).
    pub multipart_threshold: u64,
    /// S3: the part size of a multipart plan (at least 5 MiB).
    pub part_size: u64,
    /// MediaConvert: a job with no event for this long is asked about with
    /// GetJob (EventBridge can lose or delay events).
    pub reconcile_after: Duration,
    /// MediaConvert: how often the reconciler looks for silent jobs.
    pub reconcile_every: Duration,
    /// The longest one ffprobe of a source may run.
    pub probe_timeout: Duration,
    /// The fixed part of an encode's wall-clock limit…
    pub encode_timeout: Duration,
    /// …plus this many seconds per second of source.
    pub encode_timeout_factor: f64,
    /// New encodes are encrypted (AES-128, one key per rendition); the
    /// default in mode local (mode aws: set it with protection.kms_key_id).
    pub encrypt: bool,
    pub ladder: crate::engine::ladder::LadderConfig,
}

impl PipelineConfig {
    /// The wall-clock limit of a local encode of `duration` seconds of
    /// source: `encode_timeout + encode_timeout_factor × duration`.
    pub fn encode_limit(&self, duration: f64) -> Duration {
        let scaled = (self.encode_timeout_factor * duration.max(0.0)).min(1e9);
        self.encode_timeout + Duration::from_secs_f64(scaled)
    }
}

/// Where playback reads masters and media playlists from.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// A plain HTTP(S) origin holding `assets/…` (masters produced
    /// elsewhere). Absent: the object store (local directory or S3).
    pub http_base: Option<String>,
    /// Connect + whole-response limit for the HTTP origin.
    pub timeout: Duration,
    /// Largest object playback will read from an origin (playlists, MPDs).
    pub max_object: u64,
}

/// In-memory caches on the playback path.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// How long an origin object (master, media playlist, MPD) is reused
    /// without asking the origin again.
    pub origin_fresh: Duration,
    /// After that, how long the last good copy is served when the origin
    /// fails (marked stale).
    pub stale_if_error: Duration,
    /// Bound on the origin cache, in bytes.
    pub origin_max_bytes: u64,
    /// Bound on cached authorised masters (per asset, tier, delivery,
    /// expiry bucket).
    pub masters_max_entries: u64,
    /// Bound on cached signatures (per scope, expiry bucket, key, IP).
    pub signatures_max_entries: u64,
    /// How long asset records are reused on the playback path.
    pub asset_ttl: Duration,
}

/// The local demo page.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub enabled: bool,
    /// Where `hls.min.js` is (installed by npm into `web/`).
    pub hlsjs_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How clients reach this gateway (used in URLs it hands out).
    pub public_url: BaseUrl,
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Threads serving connections, each with its own single-threaded
    /// runtime (one per core by default); 0: the shared work-stealing
    /// runtime.
    pub worker_threads: usize,
    pub shutdown_grace: Duration,
    pub max_body: u64,
    pub max_concurrency: usize,
    /// Origins allowed to call the play endpoints with credentials; `"*"`
    /// mirrors any origin.
    pub cors_allowed_origins: Vec<String>,
    /// Peers whose `country_header` is believed (e.g. CloudFront's ranges
    /// in front of an ALB). From anyone else the country is unknown.
    pub trusted_proxies: Vec<crate::engine::cloudfront::policy::Cidr>,
    pub country_header: String,
    /// How long a replica may serve tier rules from memory.
    pub tier_cache_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `playgate=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Local mode: the directory that holds `assets/…`.
    pub root: PathBuf,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub sqlite_path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CdnConfig {
    /// Base URL of the CDN that serves `assets/…` (local: `{public_url}/cdn`).
    pub base_url: BaseUrl,
    pub cookie_domain: Option<String>,
    pub same_site: SameSite,
    /// `Secure` on CloudFront cookies (off only for plain-http local use).
    pub cookie_secure: bool,
    /// `max-age` of media playlists and MPDs at the edge (VOD).
    pub playlist_max_age: Duration,
}

#[derive(Debug, Clone)]
pub struct SigningConfig {
    pub active: KeyPairId,
    pub keys: Vec<KeySpec>,
    pub hash: HashAlg,
    pub expiry_bucket: Duration,
    pub default_ttl: Duration,
    /// The longest lifetime `/v1/sign/*` grants.
    pub max_ttl: Duration,
    /// The most URLs one `/v1/sign/urls` call signs.
    pub max_batch: usize,
}

#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
    pub algorithms: Vec<String>,
    pub public_key_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    /// How often the JWKS is refetched in the background.
    pub jwks_refresh: Duration,
    /// The least time between two refetches caused by unknown `kid`s.
    pub jwks_min_refetch: Duration,
    pub hs256_secret: Option<Secret<String>>,
    pub leeway: Duration,
    pub tier_claim: String,
    pub default_tier: Option<TierName>,
    /// Marks a development issuer whose private key may mint tokens
    /// (`playgate token`). Never set in production.
    pub dev: bool,
    pub private_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyConfig {
    pub name: String,
    /// Lower-case hex SHA-256 of the key; the key itself is never stored.
    pub sha256: Secret<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub issuers: Vec<IssuerConfig>,
    pub api_keys: Vec<ApiKeyConfig>,
}

#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub source_bucket: String,
    pub output_bucket: String,
    pub dynamodb_table_prefix: String,
    pub mediaconvert_endpoint: String,
    pub mediaconvert_role_arn: String,
    pub mediaconvert_queue_arn: Option<String>,
    pub cloudfront_distribution_id: String,
    pub sns_topic_arn: Option<String>,
}

impl Config {
    /// Loads `path` with the process environment's overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Loads `path`, or with `path` = `env:VAR` the TOML held by the
    /// environment variable VAR (a container's secret: nothing to mount).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let text = match config_var(path) {
            Some(var) => env
                .iter()
                .find(|(k, _)| k == var)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    ConfigErrors::one(
                        path.display().to_string(),
                        format!("environment variable {var} is not set"),
                    )
                })?,
            None => std::fs::read_to_string(path).map_err(|e| {
                ConfigErrors::one(path.display().to_string(), format!("cannot read: {e}"))
            })?,
        };
        Self::from_toml(&text, path, env)
    }

    /// The directories `playgate serve` writes with this config: the
    /// object store, the SQLite file's and the scratch space in mode local;
    /// none in mode aws (S3, DynamoDB, MediaConvert hold everything).
    pub fn writes(&self) -> Vec<PathBuf> {
        match self.mode {
            Mode::Aws => Vec::new(),
            Mode::Local => {
                let db_dir = self
                    .store
                    .sqlite_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                vec![
                    self.storage.root.clone(),
                    db_dir,
                    self.pipeline.work_dir.clone(),
                ]
            }
        }
    }

    /// Reads config text; `env` is the environment for
    /// `PLAYGATE__SECTION__KEY` overrides and `*_env` settings (the
    /// process's own for `load`).
    pub fn from_toml(
        text: &str,
        origin: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors::one(
                origin.display().to_string(),
                format!("not valid TOML: {}", e.message()),
            )
        })?;
        let env: Env = env.into_iter().collect();
        apply_env(&mut table, env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut issues = Vec::new();
        let config = read(table, &mut issues, &env);
        if let Some(c) = &config {
            c.validate(&mut issues);
        }
        match config {
            Some(c) if issues.is_empty() => Ok(c),
            _ => Err(ConfigErrors(issues)),
        }
    }

    /// Cross-field and filesystem checks, after every field was read.
    fn validate(&self, issues: &mut Vec<Issue>) {
        let mut bad = |path: &str, reason: String| {
            issues.push(Issue {
                path: path.to_owned(),
                reason,
            })
        };
        if !is_http_url(&self.server.public_url) {
            bad(
                "server.public_url",
                "must be an absolute http(s) URL".into(),
            );
        }
        if !is_http_url(&self.cdn.base_url) {
            bad("cdn.base_url", "must be an absolute http(s) URL".into());
        }
        if let Some(d) = &self.cdn.cookie_domain
            && (d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        {
            bad(
                "cdn.cookie_domain",
                "must be a plain domain name such as example.com".into(),
            );
        }
        let origins = &self.server.cors_allowed_origins;
        if origins.iter().any(|o| o == "*") && origins.len() > 1 {
            bad(
                "server.cors_allowed_origins",
                "\"*\" stands alone: it lets every origin read without credentials, while listed origins get credentials".into(),
            );
        }
        for o in origins.iter().filter(|o| *o != "*") {
            if !is_origin(o) {
                bad(
                    "server.cors_allowed_origins",
                    format!(
                        "{o:?} is not an origin such as \"https://player.example.com\" (scheme, host, optional port; no path)"
                    ),
                );
            }
        }
        if self.server.max_concurrency == 0 {
            bad("server.max_concurrency", "must be at least 1".into());
        }
        if self.signing.keys.is_empty() {
            bad("signing.keys", "at least one key is required".into());
        } else if !self
            .signing
            .keys
            .iter()
            .any(|k| k.id == self.signing.active)
        {
            bad(
                "signing.active",
                format!(
                    "{} is not the id of any [[signing.keys]]",
                    self.signing.active
                ),
            );
        }
        for (i, k) in self.signing.keys.iter().enumerate() {
            if k.id == self.signing.active && k.private_key.is_none() {
                bad(
                    &format!("signing.keys[{i}].private_key_file"),
                    "the active key needs a private key".into(),
                );
            }
            for (field, pem) in [
                ("private_key_file", &k.private_key),
                ("public_key_file", &k.public_key),
            ] {
                if let Some(Pem::File(f)) = pem {
                    check_readable(&format!("signing.keys[{i}].{field}"), f, &mut bad);
                }
            }
        }
        if let Some(u) = &self.origin.http_base
            && !is_http_url(u)
        {
            bad("origin.http_base", "must be an absolute http(s) URL".into());
        }
        if self.server.worker_threads > 256 {
            bad(
                "server.worker_threads",
                "at most 256 (one per core is the default; 0 serves on the shared runtime)".into(),
            );
        }
        if self.server.header_timeout.is_zero() {
            bad("server.header_timeout", "must be more than zero".into());
        }
        if self.cache.origin_fresh.is_zero() {
            bad("cache.origin_fresh", "must be more than zero".into());
        }
        if self.pipeline.reconcile_every < Duration::from_secs(1) {
            bad(
                "pipeline.reconcile_every",
                "at least 1s (the reconciler calls MediaConvert each time)".into(),
            );
        }
        if self.pipeline.part_size < 5 << 20 {
            bad("pipeline.part_size", "S3 parts are at least 5MiB".into());
        }
        if self.pipeline.multipart_threshold > 5 << 30 {
            bad(
                "pipeline.multipart_threshold",
                "S3's single PUT stops at 5GiB; the threshold must not be above it".into(),
            );
        }
        if self.pipeline.probe_timeout.is_zero() {
            bad("pipeline.probe_timeout", "must be more than zero".into());
        }
        if self.pipeline.encode_timeout.is_zero() {
            bad("pipeline.encode_timeout", "must be more than zero".into());
        }
        if !(self.pipeline.encode_timeout_factor.is_finite()
            && self.pipeline.encode_timeout_factor >= 0.0)
        {
            bad(
                "pipeline.encode_timeout_factor",
                "must be zero or a positive number (seconds of encode allowed per second of source)"
                    .into(),
            );
        }
        if self.pipeline.concurrency == 0 {
            bad("pipeline.concurrency", "must be at least 1".into());
        }
        if self.pipeline.encrypt && !self.protection.configured() {
            bad(
                "pipeline.encrypt",
                "new encodes are encrypted (the default) but nothing wraps their keys: set protection.kek_file/_env (`playgate keygen` writes content_kek) or protection.kms_key_id, or pipeline.encrypt = false".into(),
            );
        }
        if self.protection.kms_key_id.is_some() && self.mode != Mode::Aws {
            bad(
                "protection.kms_key_id",
                "KMS wraps content keys in mode aws; mode local uses protection.kek_file/_env"
                    .into(),
            );
        }
        if self.protection.kms_key_id.is_some() && self.protection.token_secret.is_none() {
            bad(
                "protection.token_secret_file",
                "with KMS, key tokens need their own secret (token_secret_file or token_secret_env)".into(),
            );
        }
        if self.pipeline.ladder.segment_seconds == 0 || self.pipeline.ladder.gop_seconds <= 0.0 {
            bad(
                "pipeline.segment_seconds",
                "segment_seconds and gop_seconds must be more than zero".into(),
            );
        }
        if self.signing.max_batch == 0 {
            bad("signing.max_batch", "must be at least 1".into());
        }
        if let Some(reason) = self.cookie_reach() {
            bad("cdn.cookie_domain", reason);
        }
        if self.cdn.same_site == SameSite::None && !self.cdn.cookie_secure {
            bad(
                "cdn.cookie_secure",
                "browsers drop SameSite=None cookies without Secure; set same_site = \"Lax\" for plain-http local use".into(),
            );
        }
        if self.signing.default_ttl > self.signing.max_ttl {
            bad(
                "signing.default_ttl",
                format!(
                    "must be at most signing.max_ttl ({})",
                    humantime::format_duration(self.signing.max_ttl)
                ),
            );
        }
        for (name, rules) in &self.tiers {
            for (field, reason) in rules.lifetime_problems(self.signing.max_ttl) {
                bad(&format!("tiers.{name}.{field}"), reason);
            }
        }
        if self.signing.expiry_bucket.is_zero() {
            bad("signing.expiry_bucket", "must be more than zero".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, iss) in self.auth.issuers.iter().enumerate() {
            let at = |f: &str| format!("auth.issuers[{i}].{f}");
            if !names.insert(iss.name.clone()) {
                bad(&at("name"), format!("{:?} is used twice", iss.name));
            }
            let sources = [
                iss.public_key_file.is_some(),
                iss.jwks_url.is_some(),
                iss.hs256_secret.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if sources != 1 {
                bad(
                    &at("public_key_file"),
                    "set exactly one of public_key_file, jwks_url, hs256_secret_file/_env".into(),
                );
            }
            if let Some(f) = &iss.public_key_file {
                check_readable(&at("public_key_file"), f, &mut bad);
            }
            if let Some(u) = &iss.jwks_url
                && !is_http_url(u)
            {
                bad(&at("jwks_url"), "must be an absolute http(s) URL".into());
            }
            if iss.dev {
                match &iss.private_key_file {
                    Some(f) => check_readable(&at("private_key_file"), f, &mut bad),
                    None => bad(
                        &at("private_key_file"),
                        "a dev issuer needs its private key to mint tokens".into(),
                    ),
                }
            } else if iss.private_key_file.is_some() {
                bad(
                    &at("private_key_file"),
                    "only an issuer marked dev = true may hold a private key".into(),
                );
            }
            if let Some(t) = &iss.default_tier
                && !self.tiers.contains_key(t)
            {
                bad(&at("default_tier"), format!("no tier named {t}"));
            }
        }
        for (i, k) in self.auth.api_keys.iter().enumerate() {
            let h = k.sha256.expose();
            if h.len() != 64 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                bad(
                    &format!("auth.api_keys[{i}].sha256"),
                    "must be 64 hex digits (the SHA-256 of the key)".into(),
                );
            }
        }
        if self.mode == Mode::Aws && self.aws.is_none() {
            bad("aws", "mode = \"aws\" needs an [aws] section".into());
        }
    }
}

impl Config {
    /// Settings that work but are probably not meant: `key.path: reason`
    /// lines that `check-config` prints and `serve` logs at start.
    pub fn warnings(&self) -> Vec<Issue> {
        let mut out = Vec::new();
        let cookie_tiers: Vec<&str> = self
            .tiers
            .iter()
            .filter(|(_, t)| t.delivery == crate::engine::tiers::Delivery::Cookies)
            .map(|(n, _)| n.as_str())
            .collect();
        if self.server.cors_allowed_origins.iter().any(|o| o == "*") && !cookie_tiers.is_empty() {
            out.push(Issue {
                path: "server.cors_allowed_origins".into(),
                reason: format!(
                    "\"*\" lends no credentials, so a player on another origin cannot use cookie delivery (tiers {}); list the players' origins instead",
                    cookie_tiers.join(", ")
                ),
            });
        }
        out
    }

    /// Why cookie delivery cannot work with these hosts, if it cannot: the
    /// gateway sets cookies that the CDN must receive, so either both are
    /// one host, or `cdn.cookie_domain` is a domain both are under. No
    /// site can set cookies for `*.cloudfront.net`.
    fn cookie_reach(&self) -> Option<String> {
        if !self
            .tiers
            .values()
            .any(|t| t.delivery == crate::engine::tiers::Delivery::Cookies)
        {
            return None;
        }
        let host = |u: &str| url::Url::parse(u).ok()?.host_str().map(str::to_owned);
        let (gw, cdn) = (host(&self.server.public_url)?, host(&self.cdn.base_url)?);
        if cdn.ends_with(".cloudfront.net") {
            return Some(format!(
                "tiers deliver with cookies, and no site can set cookies for {cdn}: put the distribution on a custom domain under the gateway's domain, or give those tiers delivery = \"urls\""
            ));
        }
        if gw == cdn {
            return None;
        }
        let under = |h: &str, d: &str| h == d || h.ends_with(&format!(".{d}"));
        match &self.cdn.cookie_domain {
            Some(d) if under(&gw, d) && under(&cdn, d) => None,
            Some(d) => Some(format!(
                "{d} must contain both the gateway ({gw}) and the CDN ({cdn}) for cookie delivery"
            )),
            None => Some(format!(
                "tiers deliver with cookies and the CDN ({cdn}) is not the gateway's host ({gw}): set cookie_domain to a domain both are under"
            )),
        }
    }
}

/// `env:VAR` as a config path: the variable's name.
pub fn config_var(path: &Path) -> Option<&str> {
    path.to_str()?
        .strip_prefix("env:")
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

const KEYGEN_HINT: &str = " (dev keys: run `playgate keygen --out keys/dev`)";

/// A serialized origin (RFC 6454): `scheme://host[:port]`, nothing more.
fn is_origin(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.origin().ascii_serialization() == s
    })
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

fn check_readable(path: &str, file: &Path, bad: &mut impl FnMut(&str, String)) {
    if let Err(e) = std::fs::File::open(file) {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            KEYGEN_HINT
        } else {
            ""
        };
        bad(path, format!("cannot read {}: {e}{hint}", file.display()));
    }
}

/// Reads tier rules from a table (e.g. an admin API body), reporting
/// every bad field as `(field, reason)`.
pub fn read_tier_rules(table: toml::Table) -> Result<TierRules, Vec<(String, String)>> {
    let mut issues = Vec::new();
    let env = Env::new();
    let mut root = Section::root(table, &mut issues, &env);
    let rules = read_rules(&mut root);
    root.finish();
    if issues.is_empty() {
        Ok(rules)
    } else {
        Err(issues.into_iter().map(|i| (i.path, i.reason)).collect())
    }
}

/// A PEM key from `{key}_file` (a path, read later with the keys) or
/// `{key}_env` (a variable holding the PEM, read now).
fn read_pem(s: &mut Section<'_>, key: &str) -> Option<Pem> {
    let file: Option<PathBuf> = s.opt(&format!("{key}_file"));
    let env: Option<String> = s.opt(&format!("{key}_env"));
    match (file, env) {
        (Some(_), Some(_)) => {
            s.problem(
                &format!("{key}_file"),
                format!("set only one of {key}_file and {key}_env"),
            );
            None
        }
        (Some(f), None) => Some(Pem::File(f)),
        (None, Some(var)) => match s.env_var(&var).map(str::to_owned) {
            Some(v) if !v.trim().is_empty() => Some(Pem::Env {
                var,
                text: Secret::new(v),
            }),
            _ => {
                s.problem(
                    &format!("{key}_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        (None, None) => None,
    }
}

/// Reads a secret from `{key}_file` (contents, trailing newline trimmed)
/// or `{key}_env` (a variable name). Inline secrets are refused.
fn read_secret(s: &mut Section<'_>, key: &str) -> Option<Secret<String>> {
    if s.has(key) {
        s.opt::<toml::Value>(key);
        s.problem(
            key,
            format!("secrets are not written inline; use {key}_file or {key}_env"),
        );
        return None;
    }
    let file: Option<PathBuf> = s.opt(&format!("{key}_file"));
    let env: Option<String> = s.opt(&format!("{key}_env"));
    match (file, env) {
        (Some(_), Some(_)) => {
            s.problem(
                &format!("{key}_file"),
                format!("set only one of {key}_file and {key}_env"),
            );
            None
        }
        (Some(f), None) => match std::fs::read_to_string(&f) {
            Ok(v) => Some(Secret::new(v.trim_end_matches(['\n', '\r']).to_owned())),
            Err(e) => {
                s.problem(
                    &format!("{key}_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        },
        (None, Some(var)) => match s.env_var(&var).map(str::to_owned) {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                s.problem(
                    &format!("{key}_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        (None, None) => None,
    }
}

fn dur(s: &mut Section<'_>, key: &str, default: &str) -> Duration {
    let d = humantime::parse_duration(default).unwrap_or_default();
    s.or(key, HumanDuration(d)).0
}

/// Reads the whole tree; `None` only when a required value is missing or bad.
fn read(table: toml::Table, issues: &mut Vec<Issue>, env: &Env) -> Option<Config> {
    let mut root = Section::root(table, issues, env);
    let mode = root.or("mode", Mode::Local);
    let server = root.sub("server", |s| {
        let listen = s.or("listen", SocketAddr::from(([127, 0, 0, 1], 8080)));
        ServerConfig {
            listen,
            public_url: BaseUrl::new(s.or("public_url", format!("http://{listen}"))),
            request_timeout: dur(s, "request_timeout", "30s"),
            header_timeout: dur(s, "header_timeout", "10s"),
            worker_threads: s.or(
                "worker_threads",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            shutdown_grace: dur(s, "shutdown_grace", "20s"),
            max_body: s.or("max_body", Size(1 << 20)).0,
            max_concurrency: s.or("max_concurrency", 1024usize),
            cors_allowed_origins: s.or("cors_allowed_origins", Vec::new()),
            trusted_proxies: {
                let raw: Vec<String> = s.or("trusted_proxies", Vec::new());
                let mut out = Vec::new();
                for r in raw {
                    match crate::engine::cloudfront::policy::Cidr::parse(&r) {
                        Ok(c) => out.push(c),
                        Err(e) => s.problem("trusted_proxies", e.to_string()),
                    }
                }
                out
            },
            country_header: s.or("country_header", "CloudFront-Viewer-Country".to_owned()),
            tier_cache_ttl: dur(s, "tier_cache_ttl", "5s"),
        }
    });
    let log = root.sub("log", |s| LogConfig {
        format: s.or("format", LogFormat::Text),
        level: s.or("level", "info".to_owned()),
    });
    let storage = root.sub("storage", |s| StorageConfig {
        root: s.or("root", PathBuf::from("./data")),
    });
    let store = root.sub("store", |s| StoreConfig {
        sqlite_path: s.or("sqlite_path", PathBuf::from("./data/playgate.db")),
    });
    let cdn = root.sub("cdn", |s| CdnConfig {
        base_url: BaseUrl::new(s.or::<String>("base_url", format!("{}/cdn", server.public_url))),
        cookie_domain: s.opt("cookie_domain"),
        same_site: s.or("same_site", SameSite::None),
        cookie_secure: s.or("cookie_secure", true),
        playlist_max_age: dur(s, "playlist_max_age", "60s"),
    });
    let signing = root.sub("signing", |s| {
        let keys = s.list("keys", |k| {
            let id = match (k.has("id"), k.has("id_file")) {
                (true, true) => {
                    k.problem("id", "set only one of id and id_file");
                    None
                }
                (_, false) => k.req::<KeyPairId>("id"),
                (false, true) => {
                    k.opt::<PathBuf>("id_file")
                        .and_then(|f| match std::fs::read_to_string(&f) {
                            Ok(t) => match KeyPairId::parse(t.trim()) {
                                Ok(id) => Some(id),
                                Err(e) => {
                                    k.problem("id_file", format!("{}: {e}", f.display()));
                                    None
                                }
                            },
                            Err(e) => {
                                let mut reason = format!("cannot read {}: {e}", f.display());
                                if e.kind() == std::io::ErrorKind::NotFound {
                                    reason.push_str(KEYGEN_HINT);
                                }
                                k.problem("id_file", reason);
                                None
                            }
                        })
                }
            };
            let named = [
                "private_key_file",
                "private_key_env",
                "public_key_file",
                "public_key_env",
            ]
            .iter()
            .any(|f| k.has(f));
            let private_key = read_pem(k, "private_key");
            let public_key = read_pem(k, "public_key");
            if !named {
                k.problem(
                    "public_key_file",
                    "a key needs private_key_file/_env or public_key_file/_env",
                );
            }
            id.map(|id| KeySpec {
                id,
                private_key,
                public_key,
            })
        });
        let entries = keys.len();
        let keys: Vec<KeySpec> = keys.into_iter().flatten().collect();
        let active = match s.opt::<KeyPairId>("active") {
            Some(a) => Some(a),
            None if !s.has("active") && keys.len() == 1 => keys.first().map(|k| k.id.clone()),
            // The one key is broken: its own problem says why.
            None if !s.has("active") && entries == 1 => None,
            None if !s.has("active") => {
                s.problem("active", "is required when there is not exactly one key");
                None
            }
            None => None,
        };
        let hash = s.or("hash", HashAlg::Sha1);
        let expiry_bucket = dur(s, "expiry_bucket", "5m");
        let default_ttl = dur(s, "default_ttl", "2h");
        let max_ttl = dur(s, "max_ttl", "24h");
        let max_batch = s.or("max_batch", 100usize);
        active.map(|active| SigningConfig {
            active,
            keys,
            hash,
            expiry_bucket,
            default_ttl,
            max_ttl,
            max_batch,
        })
    });
    let auth = root.sub("auth", |s| {
        let issuers = s.list("issuers", |i| {
            let name: Option<String> = i.req("name");
            let issuer: Option<String> = i.req("issuer");
            let audience = match i.opt::<toml::Value>("audience") {
                Some(toml::Value::String(a)) => vec![a],
                Some(toml::Value::Array(a)) => a
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(_) => {
                    i.problem("audience", "must be a string or a list of strings");
                    vec![]
                }
                None => vec![],
            };
            let algorithms = i.or("algorithms", vec!["RS256".to_owned()]);
            let public_key_file = i.opt("public_key_file");
            let jwks_url = i.opt("jwks_url");
            let jwks_refresh = dur(i, "jwks_refresh", "5m");
            let jwks_min_refetch = dur(i, "jwks_min_refetch", "30s");
            let hs256_secret = read_secret(i, "hs256_secret");
            let leeway = dur(i, "leeway", "30s");
            let tier_claim = i.or("tier_claim", "tier".to_owned());
            let default_tier = i.opt("default_tier");
            let dev = i.or("dev", false);
            let private_key_file = i.opt("private_key_file");
            Some(IssuerConfig {
                name: name?,
                issuer: issuer?,
                audience,
                algorithms,
                public_key_file,
                jwks_url,
                jwks_refresh,
                jwks_min_refetch,
                hs256_secret,
                leeway,
                tier_claim,
                default_tier,
                dev,
                private_key_file,
            })
        });
        let api_keys = s.list("api_keys", |k| {
            let name: Option<String> = k.req("name");
            let sha256: Option<String> = k.req("sha256");
            let scopes = k.or("scopes", Vec::<String>::new());
            Some(ApiKeyConfig {
                name: name?,
                sha256: Secret::new(sha256?.to_ascii_lowercase()),
                scopes,
            })
        });
        AuthConfig {
            issuers: issuers.into_iter().flatten().collect(),
            api_keys: api_keys.into_iter().flatten().collect(),
        }
    });
    let tiers = root.each("tiers", |name, s| {
        let rules = read_rules(s);
        match TierName::parse(name) {
            Ok(n) => Some((n, rules)),
            Err(e) => {
                s.problem("", e.to_string());
                None
            }
        }
    });
    let tiers: BTreeMap<TierName, TierRules> = tiers.into_iter().flatten().collect();
    let origin = root.sub("origin", |s| OriginConfig {
        http_base: s.opt("http_base"),
        timeout: dur(s, "timeout", "5s"),
        max_object: s.or("max_object", Size(16 << 20)).0,
    });
    let cache = root.sub("cache", |s| CacheConfig {
        origin_fresh: dur(s, "origin_fresh", "60s"),
        stale_if_error: dur(s, "stale_if_error", "10m"),
        origin_max_bytes: s.or("origin_max_bytes", Size(256 << 20)).0,
        masters_max_entries: s.or("masters_max_entries", 100_000u64),
        signatures_max_entries: s.or("signatures_max_entries", 100_000u64),
        asset_ttl: dur(s, "asset_ttl", "5s"),
    });
    let pipeline = root.sub("pipeline", |s| {
        let default = crate::engine::ladder::LadderConfig::default();
        PipelineConfig {
            concurrency: s.or("concurrency", 1usize),
            work_dir: s.or("work_dir", storage.root.join(".work")),
            max_upload: s.or("max_upload", Size(5 << 30)).0,
            upload_timeout: dur(s, "upload_timeout", "1h"),
            multipart_threshold: s.or("multipart_threshold", Size(5 << 30)).0,
            part_size: s.or("part_size", Size(100 << 20)).0,
            reconcile_after: dur(s, "reconcile_after", "10m"),
            reconcile_every: dur(s, "reconcile_every", "1m"),
            probe_timeout: dur(s, "probe_timeout", "2m"),
            encode_timeout: dur(s, "encode_timeout", "10m"),
            encode_timeout_factor: s.or("encode_timeout_factor", 20.0),
            // Mode aws turns it on with protection.kms_key_id.
            encrypt: s.or("encrypt", mode == Mode::Local),
            ladder: crate::engine::ladder::LadderConfig {
                segment_seconds: s.or("segment_seconds", default.segment_seconds),
                gop_seconds: s.or("gop_seconds", default.gop_seconds),
                audio_bitrate: s.or("audio_bitrate", default.audio_bitrate),
                rungs: s.or("rungs", default.rungs),
            },
        }
    });
    let notify = root.sub("notify", |s| {
        let url: Option<String> = s.opt("webhook_url");
        let secret = read_secret(s, "webhook_secret");
        let retries = s.or("retries", 3u32);
        let retry_base = dur(s, "retry_base", "1s");
        let timeout = dur(s, "timeout", "5s");
        let mediaconvert_hook_secret = read_secret(s, "mediaconvert_hook_secret");
        if mediaconvert_hook_secret
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            s.problem(
                "mediaconvert_hook_secret_file",
                "the hook secret must be at least 16 characters",
            );
        }
        let webhook = match (url, secret) {
            (Some(url), Some(secret)) => {
                if !is_http_url(&url) {
                    s.problem("webhook_url", "must be an absolute http(s) URL");
                }
                Some(Webhook {
                    url,
                    secret,
                    retries,
                    retry_base,
                    timeout,
                })
            }
            (Some(_), None) => {
                s.problem(
                    "webhook_secret_file",
                    "a webhook needs a signing secret (webhook_secret_file or webhook_secret_env)",
                );
                None
            }
            _ => None,
        };
        NotifyConfig {
            webhook,
            mediaconvert_hook_secret,
        }
    });
    let protection = root.sub("protection", |s| {
        let kek = read_secret(s, "kek");
        if let Some(k) = &kek
            && let Err(why) = crate::domain::kek_hex(k.expose())
        {
            s.problem("kek_file", why);
        }
        let kms_key_id: Option<String> = s.opt("kms_key_id");
        if kek.is_some() && kms_key_id.is_some() {
            s.problem("kms_key_id", "set one of kek_file/_env and kms_key_id");
        }
        let token_secret = read_secret(s, "token_secret");
        if token_secret.as_ref().is_some_and(|t| t.expose().len() < 32) {
            s.problem(
                "token_secret_file",
                "the key-token secret must be at least 32 characters",
            );
        }
        ProtectionConfig {
            kek,
            kms_key_id,
            token_secret,
        }
    });
    let demo = root.sub("demo", |s| DemoConfig {
        enabled: s.or("enabled", mode == Mode::Local),
        hlsjs_dir: s.or("hlsjs_dir", PathBuf::from("web/node_modules/hls.js/dist")),
    });
    let aws = if root.has("aws") {
        root.sub("aws", |s| {
            let region: Option<String> = s.req("region");
            let source_bucket: Option<String> = s.req("source_bucket");
            let output_bucket: Option<String> = s.req("output_bucket");
            let mediaconvert_endpoint: Option<String> = s.req("mediaconvert_endpoint");
            let mediaconvert_role_arn: Option<String> = s.req("mediaconvert_role_arn");
            let cloudfront_distribution_id: Option<String> = s.req("cloudfront_distribution_id");
            let endpoint_url = s.opt("endpoint_url");
            let dynamodb_table_prefix = s.or("dynamodb_table_prefix", "playgate".to_owned());
            let mediaconvert_queue_arn = s.opt("mediaconvert_queue_arn");
            let sns_topic_arn = s.opt("sns_topic_arn");
            Some(AwsConfig {
                region: region?,
                endpoint_url,
                source_bucket: source_bucket?,
                output_bucket: output_bucket?,
                dynamodb_table_prefix,
                mediaconvert_endpoint: mediaconvert_endpoint?,
                mediaconvert_role_arn: mediaconvert_role_arn?,
                mediaconvert_queue_arn,
                cloudfront_distribution_id: cloudfront_distribution_id?,
                sns_topic_arn,
            })
        })
    } else {
        None
    };
    root.finish();
    Some(Config {
        mode,
        server,
        log,
        storage,
        store,
        cdn,
        signing: signing?,
        auth,
        tiers,
        origin,
        cache,
        demo,
        pipeline,
        notify,
        protection,
        aws,
    })
}

/// Reads one `[tiers.NAME]` table field by field, recording every problem.
fn read_rules(s: &mut ConfigSection<'_>) -> TierRules {
    let rules = TierRules {
        rank: s.or("rank", 0),
        max_height: s.opt("max_height"),
        max_bandwidth: s.opt("max_bandwidth"),
        codecs: s.opt("codecs"),
        video_range: s.opt("video_range"),
        max_frame_rate: s.opt("max_frame_rate"),
        countries: s.opt("countries"),
        delivery: s.or("delivery", crate::engine::tiers::Delivery::Cookies),
        fallback: s.opt("fallback"),
        signature_ttl: s.opt("signature_ttl"),
        playlist_ttl: s.opt("playlist_ttl"),
        bind_ip: s.or("bind_ip", false),
        variant_order: s.or(
            "variant_order",
            crate::engine::tiers::VariantOrder::Original,
        ),
        start_height: s.opt("start_height"),
    };
    for (field, reason) in rules.problems() {
        s.problem(field, reason);
    }
    rules
}

#[cfg(test)]
mod tests;
