//! `spawn_app()`: a real playgate on 127.0.0.1:0 over a temporary data
//! directory with freshly generated keys, plus typed helpers.

use playgate::config::Config;
use playgate::state::AppState;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub addr: SocketAddr,
    pub dir: std::sync::Arc<tempfile::TempDir>,
    pub state: AppState,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<Result<(), playgate::RunError>>>,
}

/// Writes a CloudFront key pair and a dev JWT key pair into `dir/keys`.
pub fn write_keys(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (cf_priv, cf_pub) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    let (jwt_priv, jwt_pub) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    std::fs::write(keys.join("cloudfront_private.pem"), cf_priv).unwrap();
    std::fs::write(keys.join("cloudfront_public.pem"), cf_pub).unwrap();
    std::fs::write(keys.join("cloudfront_key_pair_id"), "KTESTKEY01\n").unwrap();
    std::fs::write(keys.join("jwt_private.pem"), jwt_priv).unwrap();
    std::fs::write(keys.join("jwt_public.pem"), jwt_pub).unwrap();
    let mut kek = [0u8; 32];
    openssl::rand::rand_bytes(&mut kek).unwrap();
    let hex: String = kek.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(keys.join("content_kek"), hex + "\n").unwrap();
    keys
}

/// A complete local-mode config rooted at `dir`; `extra` is appended
/// (later keys in the same table are not allowed by TOML, so tests pass
/// whole extra tables or use env overrides).
pub fn config_text(dir: &Path, server_extra: &str) -> String {
    let d = dir.display();
    format!(
        r#"
mode = "local"
[server]
listen = "127.0.0.1:0"
public_url = "http://@ADDR@"
shutdown_grace = "5s"
{server_extra}
[storage]
root = "{d}/data"
[store]
sqlite_path = "{d}/data/playgate.db"
[protection]
kek_file = "{d}/keys/content_kek"
[[signing.keys]]
id_file = "{d}/keys/cloudfront_key_pair_id"
private_key_file = "{d}/keys/cloudfront_private.pem"
public_key_file = "{d}/keys/cloudfront_public.pem"
[[auth.issuers]]
name = "dev"
issuer = "playgate-dev"
audience = "playgate"
public_key_file = "{d}/keys/jwt_public.pem"
private_key_file = "{d}/keys/jwt_private.pem"
dev = true
[tiers.free]
max_height = 480
[tiers.premium]
rank = 20
max_height = 2160
"#
    )
}

pub fn test_config(dir: &Path, text: &str) -> Config {
    if !dir.join("keys/jwt_private.pem").exists() {
        write_keys(dir);
    }
    Config::from_toml(text, Path::new("test.toml"), Vec::new())
        .unwrap_or_else(|e| panic!("test config invalid: {:?}", e.0))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with("", axum::Router::new()).await
}

/// Spawns with extra `[server]` settings and extra routes (test probes).
pub async fn spawn_app_with(server_extra: &str, extra: axum::Router<AppState>) -> TestApp {
    spawn_app_edited(server_extra, |t| t, extra).await
}

/// Spawns with the config text passed through `edit` (e.g. to add an
/// API key or change a tier).
pub async fn spawn_app_edited(
    server_extra: &str,
    edit: impl FnOnce(String) -> String,
    extra: axum::Router<AppState>,
) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    spawn_in(dir, edit(config_text_for(server_extra)), extra).await
}

/// A placeholder for the temp dir in config text, replaced at spawn.
pub const DIR: &str = "@DIR@";
/// A placeholder for the server's own `host:port`, replaced at spawn (so
/// the URLs it hands out reach it).
pub const ADDR: &str = "@ADDR@";

fn config_text_for(server_extra: &str) -> String {
    config_text(Path::new(DIR), server_extra)
}

/// Spawns over an existing directory (a second replica shares the first's
/// SQLite file and keys).
pub async fn spawn_in(
    dir: std::sync::Arc<tempfile::TempDir>,
    text: String,
    extra: axum::Router<AppState>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = text
        .replace(DIR, &dir.path().display().to_string())
        .replace(ADDR, &addr.to_string());
    let config = test_config(dir.path(), &text);
    let state = AppState::build(config).await.unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let s = state.clone();
    let server = tokio::spawn(async move {
        playgate::serve(
            s,
            move |st| playgate::http::app(st, extra),
            listener,
            async move {
                let _ = rx.await;
            },
        )
        .await
    });
    TestApp {
        addr,
        dir,
        state,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Signs `claims` as the dev issuer (RS256, the test key).
    pub fn token(&self, claims: serde_json::Value) -> String {
        let pem = std::fs::read(self.dir.path().join("keys/jwt_private.pem")).unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .unwrap()
    }

    /// A valid viewer token for `tier`, as the dev issuer.
    pub fn viewer_token(&self, tier: &str) -> String {
        self.token(serde_json::json!({
            "iss": "playgate-dev", "aud": "playgate", "sub": "viewer-1",
            "exp": now() + 600, "tier": tier,
        }))
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.get_with(path, &[("authorization", &format!("Bearer {token}"))])
            .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn healthz(&self) -> reqwest::Response {
        self.get("/healthz").await
    }

    pub async fn readyz(&self) -> reqwest::Response {
        self.get("/readyz").await
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("data/playgate.db")
    }

    /// Asks the server to stop; returns once it has.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A parsed problem+json body, checked for its content type.
pub async fn problem(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(ct, "application/problem+json", "status {status}");
    let body: serde_json::Value = resp.json().await.unwrap();
    for field in ["type", "title", "status", "detail"] {
        assert!(body.get(field).is_some(), "problem without {field}: {body}");
    }
    assert_eq!(body["status"], status);
    (status, body)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `text` plus an `[[auth.api_keys]]` entry for `key` (stored as its SHA-256).
pub fn with_api_key(text: String, key: &str, scope: &str) -> String {
    let hash: String = openssl::sha::sha256(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{text}\n[[auth.api_keys]]\nname = \"ops\"\nsha256 = \"{hash}\"\nscopes = [\"{scope}\"]\n"
    )
}
