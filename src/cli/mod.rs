//! The `playgate` command line. Each command parses its arguments, calls
//! into the library and maps the outcome to output and an exit code:
//! 0 success, 1 a negative answer (`verify`: invalid), 2 bad input or
//! configuration (one line on stderr, never a secret).
//!
//! The grammar (clap) and the dispatch are here; each command's work is in
//! its own file (`serve`, `check`, `keys`, `sign`, `manifest`, `publish`,
//! `health`, `doctor`, `ingest`), logging set-up in `telemetry`.

mod check;
pub mod doctor;
mod health;
pub mod ingest;
mod keys;
mod manifest;
mod publish;
mod serve;
mod sign;
pub mod telemetry;

use check::check_config;
use health::health;
use keys::{keygen, token};
use manifest::manifest;
use publish::publish;
use serve::serve;
pub use serve::shutdown_signal;
use sign::{sign, verify_url};
pub use telemetry::{LogFlush, init_tracing};

use crate::config::{Config, DEFAULT_CONFIG};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Print the OpenAPI 3.1 description of the HTTP API (as served at
    /// /openapi.json), e.g. to generate a client.
    Openapi,
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
        Command::Openapi => {
            use std::io::Write;
            // A reader that stops early (`| head`) is not an error.
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{}", crate::http::openapi::document()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Fail(e.to_string())),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("playgate: {}", msg.lines().next().unwrap_or("failed"));
            ExitCode::from(2)
        }
    }
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
