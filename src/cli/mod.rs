//! The `playgate` command line. Each command parses its arguments, calls
//! into the library and maps the outcome to output and an exit code:
//! 0 success, 1 a negative answer (`verify`: invalid), 2 bad input or
//! configuration (one line on stderr, never a secret).

pub mod doctor;
pub mod ingest;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, DEFAULT_CONFIG, LogFormat};
use crate::domain::{KeyPairId, TierName};
use crate::engine::cloudfront::HashAlg;
use crate::engine::cloudfront::keys::{KeyRing, SigningKey, VerifyKey};
use crate::engine::cloudfront::policy::Cidr;
use crate::engine::cloudfront::signer::{SignOptions, Signature};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(
    name = "playgate",
    version,
    about = "Secure playback gateway and CloudFront edge signer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Overrides `log.format`.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Check a configuration file: every problem, or a summary.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Write a CloudFront key pair and a dev JWT issuer key pair.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// ECDSA P-256 for the CloudFront key instead of RSA 2048.
        #[arg(long)]
        ec: bool,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        /// Write only `content_kek` (the key that wraps content keys), for
        /// a key set made before encryption existed.
        #[arg(long)]
        kek_only: bool,
    },
    /// Mint a viewer token with the config's dev issuer.
    Token {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        sub: String,
        #[arg(long)]
        tier: String,
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Issuer `name` (default: the first dev issuer).
        #[arg(long)]
        issuer: Option<String>,
        /// Scopes for service tokens, e.g. playgate:admin (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Sign a URL or cookies.
    #[command(subcommand)]
    Sign(SignCommand),
    /// Verify a signed URL as CloudFront would.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Filter a master playlist or MPD for a tier; sign a media playlist.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Upload FILE, transcode it and wait: prints the playback URL.
    Ingest {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        title: Option<String>,
        /// The gateway (default: the config's server.public_url).
        #[arg(long)]
        server: Option<String>,
        /// A variable holding a `playgate:ingest` credential (API key or
        /// JWT); default: a short token from the config's dev issuer.
        #[arg(long)]
        token_env: Option<String>,
        file: PathBuf,
    },
    /// Mode aws: check the live CloudFront, S3 and MediaConvert setup
    /// against the config; a table of checks with fixes, exit 1 on any ✗.
    Doctor {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Exit 0 when URL answers 2xx within 3 s (a container health check
    /// without curl in the image).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Local mode: publish an encoded directory (hls/master.m3u8 and its
    /// renditions) as the asset's next version and mark it ready.
    Publish {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        asset: String,
        #[arg(long)]
        title: Option<String>,
        /// Encrypt a copy of the tree first (AES-128, a key per rendition,
        /// as the local encoder does); the directory itself is not changed.
        #[arg(long)]
        encrypt: bool,
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DeliveryArg {
    Cookies,
    Urls,
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Print the master playlist (or DASH MPD) a tier's viewer gets. Exit 3
    /// when nothing playable remains. Rendition scopes come from the
    /// master's URIs alone (the server also reads the media playlists).
    Filter {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        tier: String,
        /// Where the master lives on the CDN (relative URIs resolve against it).
        #[arg(long)]
        url: String,
        /// Default: the tier's delivery.
        #[arg(long, value_enum)]
        delivery: Option<DeliveryArg>,
        /// Where the media playlists the master names are, as the master
        /// names them (default: FILE's directory). Scopes then cover what
        /// each rendition's media playlist lists, as the server's do; URL
        /// delivery needs them.
        #[arg(long)]
        media: Option<PathBuf>,
        /// A file, or `-` for standard input.
        file: String,
    },
    /// Print a media playlist with QUERY appended to every URI, relative
    /// URIs made absolute against --url.
    Sign {
        /// The signed query (`Policy=…&Signature=…&Key-Pair-Id=…`).
        #[arg(long)]
        query: String,
        #[arg(long)]
        url: String,
        /// A file, or `-` for standard input.
        file: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum HashArg {
    Sha1,
    Sha256,
}

#[derive(Subcommand)]
enum SignCommand {
    /// Print the signed URL.
    Url(SignArgs),
    /// Print the cookies as a JSON object (name → value).
    Cookies(SignArgs),
}

#[derive(Args)]
struct SignArgs {
    #[arg(long)]
    key_pair_id: String,
    #[arg(long)]
    private_key: PathBuf,
    #[arg(long)]
    expires: Option<u64>,
    #[arg(long)]
    starts: Option<u64>,
    #[arg(long)]
    ip: Option<String>,
    #[arg(long)]
    resource: Option<String>,
    /// A policy to sign byte for byte (`JSON` or `@FILE`).
    #[arg(long)]
    policy: Option<String>,
    #[arg(long, value_enum, default_value = "sha1")]
    hash: HashArg,
    url: String,
}

#[derive(Subcommand)]
enum VerifyCommand {
    /// Print `valid` (exit 0) or the reason it is not (exit 1).
    Url {
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long)]
        key_pair_id: String,
        #[arg(long)]
        now: Option<u64>,
        #[arg(long)]
        client_ip: Option<std::net::IpAddr>,
        signed_url: String,
    },
}

/// A failure to report as one line and exit 2.
pub(crate) struct Fail(pub(crate) String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, log_format } => serve(&config, log_format),
        Command::CheckConfig { config } => check_config(&config),
        Command::Keygen {
            out,
            ec,
            force,
            kek_only,
        } => keygen(&out, ec, force, kek_only),
        Command::Token {
            config,
            sub,
            tier,
            ttl,
            issuer,
            scopes,
        } => token(&config, &sub, &tier, &ttl, issuer.as_deref(), &scopes),
        Command::Sign(cmd) => sign(cmd),
        Command::Verify(VerifyCommand::Url {
            public_key,
            key_pair_id,
            now,
            client_ip,
            signed_url,
        }) => verify_url(&public_key, &key_pair_id, now, client_ip, &signed_url),
        Command::Manifest(cmd) => manifest(cmd),
        Command::Ingest {
            config,
            title,
            server,
            token_env,
            file,
        } => crate::cli::ingest::run(&config, title, server, token_env, &file),
        Command::Publish {
            config,
            asset,
            title,
            encrypt,
            dir,
        } => publish(&config, &asset, title, encrypt, &dir),
        Command::Doctor { config } => doctor(&config),
        Command::Health { url } => health(&url),
    };
    match result {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("playgate: {}", msg.lines().next().unwrap_or("failed"));
            ExitCode::from(2)
        }
    }
}

/// Log lines go to stderr through a 64 KiB buffer that a background
/// thread flushes every 200 ms (and `LogFlush` at exit), so a busy server
/// makes a few writes a second instead of one per request — as nginx's
/// `access_log … buffer= flush=` does. A crash loses at most the last
/// 200 ms of lines.
pub struct LogFlush(Arc<Mutex<std::io::BufWriter<std::io::Stderr>>>);

impl Drop for LogFlush {
    fn drop(&mut self) {
        if let Ok(mut w) = self.0.lock() {
            let _ = std::io::Write::flush(&mut *w);
        }
    }
}

#[derive(Clone)]
struct BufferedStderr(Arc<Mutex<std::io::BufWriter<std::io::Stderr>>>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedStderr {
    type Writer = <Mutex<std::io::BufWriter<std::io::Stderr>> as tracing_subscriber::fmt::MakeWriter<'a>>::Writer;
    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// Installs the global subscriber: JSON or text lines on stderr.
pub fn init_tracing(format: LogFormat, level: &str) -> LogFlush {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let out = Arc::new(Mutex::new(std::io::BufWriter::with_capacity(
        64 << 10,
        std::io::stderr(),
    )));
    let weak = Arc::downgrade(&out);
    let _ = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            while let Some(out) = weak.upgrade() {
                if let Ok(mut w) = out.lock() {
                    let _ = std::io::Write::flush(&mut *w);
                }
                drop(out);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
    // Colour codes only for a terminal, never into a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(BufferedStderr(out.clone()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogFlush(out)
}

pub(crate) fn load_config(path: &Path) -> Result<Config, Fail> {
    Config::load(path).map_err(|e| {
        let lines: Vec<String> = e.0.iter().map(|i| i.to_string()).collect();
        Fail(format!(
            "{} configuration problem(s) in {} (run `playgate check-config --config {}`): {}",
            lines.len(),
            path.display(),
            path.display(),
            lines.join("; ")
        ))
    })
}

fn doctor(path: &Path) -> Result<ExitCode, Fail> {
    let config = load_config(path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let checks = runtime
        .block_on(crate::cli::doctor::run(&config))
        .map_err(Fail)?;
    print!("{}", crate::cli::doctor::render(&checks));
    Ok(if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn health(url: &str) -> Result<ExitCode, Fail> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()?
            .get(url)
            .send()
            .await
            .map(|r| r.status())
    })?;
    if status.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Fail(format!("{url} answered {status}")))
    }
}

fn publish(
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
    let base = config.server.public_url.trim_end_matches('/');
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

fn serve(path: &Path, log_format: Option<LogFormatArg>) -> Result<ExitCode, Fail> {
    let config = load_config(path)?;
    let format = match log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.log.format,
    };
    let _log = init_tracing(format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| Fail(format!("cannot listen on {}: {e}", config.server.listen)))?;
        let addr = listener.local_addr()?;
        for w in config.warnings() {
            tracing::warn!(key = %w.path, "config: {}", w.reason);
        }
        tracing::info!(%addr, public_url = %config.server.public_url, "playgate listening");
        crate::run(config, listener, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn check_config(path: &Path) -> Result<ExitCode, Fail> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            for issue in &e.0 {
                println!("{issue}");
            }
            eprintln!("playgate: {} problem(s) in {}", e.0.len(), path.display());
            return Ok(ExitCode::from(2));
        }
    };
    // Keys are parsed as at start-up, so a bad key fails here too.
    if let Err(e) = KeyRing::from_specs(&config.signing.active, &config.signing.keys) {
        println!("signing.keys: {e}");
        eprintln!("playgate: 1 problem(s) in {}", path.display());
        return Ok(ExitCode::from(2));
    }
    let mode = match config.mode {
        crate::config::Mode::Local => "local",
        crate::config::Mode::Aws => "aws",
    };
    println!("ok: {}", path.display());
    println!("  mode: {mode}");
    println!(
        "  listen: {} (public {})",
        config.server.listen, config.server.public_url
    );
    println!("  cdn: {}", config.cdn.base_url);
    println!(
        "  signing: active {} of {} key(s), {:?}",
        config.signing.active,
        config.signing.keys.len(),
        config.signing.hash
    );
    let issuers: Vec<&str> = config
        .auth
        .issuers
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    println!(
        "  issuers: {}",
        if issuers.is_empty() {
            "none".into()
        } else {
            issuers.join(", ")
        }
    );
    let tiers: Vec<&str> = config.tiers.keys().map(|t| t.as_str()).collect();
    println!(
        "  tiers: {}",
        if tiers.is_empty() {
            "none".into()
        } else {
            tiers.join(", ")
        }
    );
    let writes: Vec<String> = config
        .writes()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "  writes: {}",
        if writes.is_empty() {
            "nothing on disk".into()
        } else {
            writes.join(", ")
        }
    );
    for w in config.warnings() {
        println!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn write_new(path: &Path, bytes: &[u8], private: bool, force: bool) -> Result<(), Fail> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(if private { 0o600 } else { 0o644 });
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Fail(format!(
                "{} exists; pass --force to replace it",
                path.display()
            ))
        } else {
            Fail(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    f.write_all(bytes)?;
    if private {
        // Also tighten a file that existed before `--force`.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    Ok(())
}

fn keygen(out: &Path, ec: bool, force: bool, kek_only: bool) -> Result<ExitCode, Fail> {
    std::fs::create_dir_all(out)
        .map_err(|e| Fail(format!("cannot create {}: {e}", out.display())))?;
    let mut kek = [0u8; 32];
    openssl::rand::rand_bytes(&mut kek).map_err(|e| Fail(format!("no randomness: {e}")))?;
    let kek = crate::domain::hex(&kek) + "\n";
    if kek_only {
        let path = out.join("content_kek");
        if !force && path.exists() {
            return Err(Fail(format!(
                "{} exists; pass --force to replace it (keys it wrapped stop unwrapping)",
                path.display()
            )));
        }
        write_new(&path, kek.as_bytes(), true, force)?;
        println!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (cf_private, cf_public) = crate::engine::cloudfront::keys::generate(ec)?;
    let (jwt_private, jwt_public) = crate::engine::cloudfront::keys::generate(false)?;
    let suffix: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase()
        .chars()
        .take(10)
        .collect();
    let id = format!("KDEV{suffix}\n");
    let files: [(&str, &[u8], bool); 6] = [
        ("cloudfront_private.pem", &cf_private, true),
        ("cloudfront_public.pem", &cf_public, false),
        ("cloudfront_key_pair_id", id.as_bytes(), false),
        ("jwt_private.pem", &jwt_private, true),
        ("jwt_public.pem", &jwt_public, false),
        ("content_kek", kek.as_bytes(), true),
    ];
    if !force && let Some((name, _, _)) = files.iter().find(|(n, _, _)| out.join(n).exists()) {
        return Err(Fail(format!(
            "{} exists; pass --force to replace the key set",
            out.join(name).display()
        )));
    }
    for (name, bytes, private) in files {
        write_new(&out.join(name), bytes, private, force)?;
    }
    println!(
        "wrote development keys to {} (key pair id {})",
        out.display(),
        id.trim()
    );
    println!("  these are for local use only: never register them with a real distribution");
    Ok(ExitCode::SUCCESS)
}

fn token(
    path: &Path,
    sub: &str,
    tier: &str,
    ttl: &str,
    issuer: Option<&str>,
    scopes: &[String],
) -> Result<ExitCode, Fail> {
    let config = load_config(path)?;
    let tier = TierName::parse(tier)?;
    if !config.tiers.contains_key(&tier) {
        return Err(Fail(format!("no tier named {tier} in {}", path.display())));
    }
    let ttl = humantime::parse_duration(ttl).map_err(|e| Fail(format!("--ttl {ttl:?}: {e}")))?;
    let iss = match issuer {
        Some(name) => config
            .auth
            .issuers
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| Fail(format!("no issuer named {name:?}")))?,
        None => config
            .auth
            .issuers
            .iter()
            .find(|i| i.dev)
            .ok_or_else(|| Fail("no issuer is marked dev = true; playgate mints tokens only for development issuers".into()))?,
    };
    let jwt = crate::auth::mint_dev_token(iss, sub, &tier, scopes, SystemClock.now_epoch(), ttl)?;
    println!("{jwt}");
    Ok(ExitCode::SUCCESS)
}

fn read_policy(arg: &str) -> Result<String, Fail> {
    match arg.strip_prefix('@') {
        Some(file) => {
            std::fs::read_to_string(file).map_err(|e| Fail(format!("--policy {file}: {e}")))
        }
        None => Ok(arg.to_owned()),
    }
}

fn sign(cmd: SignCommand) -> Result<ExitCode, Fail> {
    let (args, cookies) = match cmd {
        SignCommand::Url(a) => (a, false),
        SignCommand::Cookies(a) => (a, true),
    };
    let id =
        KeyPairId::parse(&args.key_pair_id).map_err(|e| Fail(format!("--key-pair-id: {e}")))?;
    let key = SigningKey::from_file(id, &args.private_key)?;
    let hash = match args.hash {
        HashArg::Sha1 => HashAlg::Sha1,
        HashArg::Sha256 => HashAlg::Sha256,
    };
    let wire = crate::engine::cloudfront::encode::wire_url(&args.url)
        .map_err(|e| Fail(format!("URL: {e}")))?;
    let sig = match &args.policy {
        Some(p) => {
            if args.starts.is_some()
                || args.ip.is_some()
                || args.resource.is_some()
                || args.expires.is_some()
            {
                return Err(Fail("--policy signs the policy as given; do not combine it with --expires, --starts, --ip or --resource".into()));
            }
            let policy = read_policy(p)?;
            // Refuse what CloudFront would refuse, before signing it.
            crate::engine::cloudfront::policy::Policy::from_json(policy.as_bytes())?;
            Signature::over_policy(&key, &policy, hash)?
        }
        None => {
            let expires = args
                .expires
                .ok_or_else(|| Fail("--expires is required (epoch seconds)".into()))?;
            let ip = args.ip.as_deref().map(Cidr::parse).transpose()?;
            let opts = SignOptions {
                expires,
                starts: args.starts,
                ip,
                resource: args.resource.clone(),
                hash,
            };
            Signature::for_url(&key, &wire, &opts)?
        }
    };
    if cookies {
        let map: serde_json::Map<String, serde_json::Value> = sig
            .cookies()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        println!("{}", sig.append_to(&wire));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_url(
    public_key: &Path,
    key_pair_id: &str,
    now: Option<u64>,
    client_ip: Option<std::net::IpAddr>,
    signed_url: &str,
) -> Result<ExitCode, Fail> {
    let id = KeyPairId::parse(key_pair_id).map_err(|e| Fail(format!("--key-pair-id: {e}")))?;
    let public = VerifyKey::from_file(id, public_key)?;
    let ring = crate::engine::cloudfront::keys::PublicKeys::new(vec![public])?;
    let wire = crate::engine::cloudfront::encode::wire_url(signed_url)
        .map_err(|e| Fail(format!("URL: {e}")))?;
    let now = now.unwrap_or_else(|| SystemClock.now_epoch());
    match crate::engine::cloudfront::verifier::verify_request(&ring, &wire, None, client_ip, now) {
        Ok(_) => {
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            println!("invalid: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}

fn read_input(file: &str) -> Result<Vec<u8>, Fail> {
    use std::io::Read;
    let mut buf = Vec::new();
    if file == "-" {
        std::io::stdin()
            .take(crate::engine::hls::MAX_PLAYLIST_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Fail(format!("standard input: {e}")))?;
    } else {
        let f = std::fs::File::open(file).map_err(|e| Fail(format!("{file}: {e}")))?;
        f.take(crate::engine::hls::MAX_PLAYLIST_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Fail(format!("{file}: {e}")))?;
    }
    Ok(buf)
}

fn parse_url(arg: &str) -> Result<url::Url, Fail> {
    let url = url::Url::parse(arg).map_err(|e| Fail(format!("--url {arg:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Fail(format!("--url {arg:?}: must be http(s)")));
    }
    Ok(url)
}

fn manifest(cmd: ManifestCommand) -> Result<ExitCode, Fail> {
    match cmd {
        ManifestCommand::Filter {
            config,
            tier,
            url,
            delivery,
            media,
            file,
        } => manifest_filter(&config, &tier, &url, delivery, media, &file),
        ManifestCommand::Sign { query, url, file } => {
            if query.is_empty()
                || query
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '#'))
            {
                return Err(Fail(
                    "--query must be a URL query without spaces, quotes or '#'".into(),
                ));
            }
            let url = parse_url(&url)?;
            let input = read_input(&file)?;
            let out = crate::engine::hls::media::sign_at(&input, &query, Some(&url))
                .map_err(|e| Fail(format!("{file}: {e}")))?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The media playlist behind `playlist` (a URL under the master's
/// directory `base`) in the local directory `media`, if it is there.
fn local_media(media: &Path, base: &url::Url, playlist: &url::Url) -> Option<Vec<u8>> {
    let dir = &base.as_str()[..base.as_str().rfind('/')? + 1];
    let rest = playlist
        .as_str()
        .split(['?', '#'])
        .next()?
        .strip_prefix(dir)?;
    let rest = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?;
    if rest
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    std::fs::read(media.join(rest.as_ref())).ok()
}

fn manifest_filter(
    path: &Path,
    tier: &str,
    url: &str,
    delivery: Option<DeliveryArg>,
    media: Option<PathBuf>,
    file: &str,
) -> Result<ExitCode, Fail> {
    use crate::engine::authorise::{Layout, PlaybackError, authorise_master, expiry};
    use crate::engine::tiers::Delivery;
    let config = load_config(path)?;
    let name = TierName::parse(tier)?;
    let rules = config
        .tiers
        .get(&name)
        .ok_or_else(|| Fail(format!("no tier named {name} in {}", path.display())))?;
    let url = parse_url(url)?;
    let delivery = match delivery {
        Some(DeliveryArg::Cookies) => Delivery::Cookies,
        Some(DeliveryArg::Urls) => Delivery::Urls,
        None => rules.delivery,
    };
    let input = read_input(file)?;
    let nothing_left = || {
        eprintln!("playgate: nothing playable remains for tier {name}");
        Ok(ExitCode::from(3))
    };
    let head = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&input);
    if head.trim_ascii_start().starts_with(b"<") {
        if delivery == Delivery::Urls {
            return Err(Fail(
                "DASH manifests are served with cookie delivery; pass --delivery cookies".into(),
            ));
        }
        let opts = crate::engine::dash::mpd::MpdOptions {
            url: Some(&url),
            signed_query: None,
        };
        let f = match crate::engine::dash::mpd::filter(&input, rules, &opts) {
            Err(crate::engine::dash::mpd::MpdError::NoVideoVariant) => return nothing_left(),
            other => other.map_err(|e| Fail(format!("{file}: {e}")))?,
        };
        print!("{}", f.mpd);
        return Ok(ExitCode::SUCCESS);
    }
    let filtered = match crate::engine::hls::master::filter(&input, rules, Some(&url)) {
        Err(crate::engine::hls::master::MasterError::NoVideoVariant) => return nothing_left(),
        other => other.map_err(|e| Fail(format!("{file}: {e}")))?,
    };
    let ring = KeyRing::from_specs(&config.signing.active, &config.signing.keys)?;
    let ttl = rules
        .signature_ttl
        .map_or(config.signing.default_ttl, |d| d.0)
        .min(config.signing.max_ttl);
    let expires = expiry(SystemClock.now_epoch(), ttl, config.signing.expiry_bucket);
    let layout = Layout {
        cdn_base: &config.cdn.base_url,
        gateway: &config.server.public_url,
    };
    // The media playlists beside the master (or in --media), read as the
    // server reads them; without them a scope is only the playlist's own
    // directory or name, which URL delivery cannot use (a flat layout's
    // `…/title_360p.m3u8*` does not open `title_360p_00000.ts`).
    let media_dir = media.or_else(|| {
        (file != "-").then(|| {
            Path::new(file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
    });
    let mut unseen = None;
    let out = authorise_master(
        &filtered,
        &url,
        delivery,
        &layout,
        |u| match media_dir.as_deref().and_then(|d| local_media(d, &url, u)) {
            Some(bytes) => Ok(crate::engine::hls::scope::media_uris(u, &bytes)?),
            None => {
                unseen.get_or_insert_with(|| u.to_string());
                Ok::<_, PlaybackError>(vec![u.clone()])
            }
        },
        |scope| {
            Signature::for_resource(
                ring.active(),
                &scope.pattern(),
                &SignOptions {
                    expires,
                    hash: config.signing.hash,
                    ..Default::default()
                },
            )
        },
    )
    .map_err(|e| Fail(e.to_string()))?;
    if let (Some(u), Delivery::Urls) = (&unseen, delivery) {
        return Err(Fail(format!(
            "URL delivery signs what each media playlist lists, and {u} is not {}; pass --media DIR (the directory the master's URIs are relative to)",
            match &media_dir {
                Some(d) => format!("under {}", d.display()),
                None => "readable (the master came from standard input)".into(),
            }
        )));
    }
    if let Some(u) = &unseen {
        eprintln!(
            "note: {u} is not beside the master; its scope is its playlist's directory (pass --media DIR to read it)"
        );
    }
    print!("{}", out.playlist);
    for g in &out.grants {
        match g.scope.cookie_path() {
            Some(p) if delivery == Delivery::Cookies => {
                eprintln!("scope {} (cookie Path={p})", g.scope.pattern());
            }
            _ => eprintln!("scope {}", g.scope.pattern()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
