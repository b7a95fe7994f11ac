//! `playgate serve` in mode aws as a child process: keys, a config with
//! the common parts filled in, a log file, a viewer token. Killed when
//! dropped.

use std::path::{Path, PathBuf};

pub struct Gateway {
    child: std::process::Child,
    pub base: String,
    log: PathBuf,
    jwt_private: Vec<u8>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sha256_hex(key: &str) -> String {
    openssl::sha::sha256(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Gateway {
    /// Starts a gateway against the moto server at `moto` with buckets
    /// `pgtest-src`/`pgtest-out`, table prefix `pgtest`, CloudFront cookies
    /// on `example.com`, a JWT issuer, API keys `ingest-key` and
    /// `admin-key`, tier `free` (max 480p); `sections` adds whole TOML
    /// sections and `aws` adds keys to `[aws]`.
    pub async fn start(dir: &Path, moto: &str, sections: &str, aws: &str) -> Gateway {
        Self::start_with_env(dir, moto, sections, aws, &[]).await
    }

    /// `start`, with `PLAYGATE__…` overrides in the environment.
    pub async fn start_with_env(
        dir: &Path,
        moto: &str,
        sections: &str,
        aws: &str,
        env: &[(&str, &str)],
    ) -> Gateway {
        Self::start_in(dir, &dir.join("keys"), moto, sections, aws, env).await
    }

    /// The full form: `keys` holds the key pairs, made there when absent
    /// (replicas share one directory of keys).
    pub async fn start_in(
        dir: &Path,
        keys: &Path,
        moto: &str,
        sections: &str,
        aws: &str,
        env: &[(&str, &str)],
    ) -> Gateway {
        Self::start_at(
            crate::tools::free_port(),
            dir,
            keys,
            moto,
            sections,
            aws,
            env,
        )
        .await
    }

    /// `start_in` on a given port (when other servers must know it first).
    pub async fn start_at(
        port: u16,
        dir: &Path,
        keys: &Path,
        moto: &str,
        sections: &str,
        aws: &str,
        env: &[(&str, &str)],
    ) -> Gateway {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::create_dir_all(keys).unwrap();
        if !keys.join("cf.pem").exists() {
            let (cf_priv, cf_pub) = playgate::engine::cloudfront::keys::generate(false).unwrap();
            let (jwt_priv, jwt_pub) = playgate::engine::cloudfront::keys::generate(false).unwrap();
            std::fs::write(keys.join("cf.pem"), cf_priv).unwrap();
            std::fs::write(keys.join("cf_pub.pem"), cf_pub).unwrap();
            std::fs::write(keys.join("jwt.pem"), jwt_priv).unwrap();
            std::fs::write(keys.join("jwt_pub.pem"), jwt_pub).unwrap();
        }
        let jwt_priv = std::fs::read(keys.join("jwt.pem")).unwrap();
        let k = keys.display();
        let mut aws = aws.to_owned();
        for (key, default) in [
            (
                "mediaconvert_endpoint",
                "https://mediaconvert.us-east-1.amazonaws.com",
            ),
            ("cloudfront_distribution_id", "E2EXAMPLE"),
        ] {
            if !aws.contains(key) {
                aws.push_str(&format!("\n{key} = \"{default}\""));
            }
        }
        let config = format!(
            r#"mode = "aws"
[server]
listen = "127.0.0.1:{port}"
public_url = "https://play.example.com"
[cdn]
base_url = "https://cdn.example.com"
cookie_domain = "example.com"
[[signing.keys]]
id = "KAWSTEST"
private_key_file = "{k}/cf.pem"
public_key_file = "{k}/cf_pub.pem"
[[auth.issuers]]
name = "idp"
issuer = "https://idp.example.com"
audience = "playgate"
public_key_file = "{k}/jwt_pub.pem"
[[auth.api_keys]]
name = "ingest"
sha256 = "{ingest}"
scopes = ["playgate:ingest"]
[[auth.api_keys]]
name = "ops"
sha256 = "{admin}"
scopes = ["playgate:admin"]
[tiers.free]
max_height = 480
{sections}
[aws]
region = "us-east-1"
endpoint_url = "{moto}"
source_bucket = "pgtest-src"
output_bucket = "pgtest-out"
dynamodb_table_prefix = "pgtest"
mediaconvert_role_arn = "arn:aws:iam::123456789012:role/mc"
{aws}
"#,
            ingest = sha256_hex("ingest-key"),
            admin = sha256_hex("admin-key"),
        );
        let path = dir.join("aws.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.join("gateway.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_playgate"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let g = Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            jwt_private: jwt_priv,
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{}/healthz", g.base))
                .send()
                .await
                .is_ok()
            {
                return g;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("serve did not start: {}", g.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A viewer JWT for `tier`, ten minutes long.
    pub fn viewer_token(&self, tier: &str) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &serde_json::json!({"iss": "https://idp.example.com", "aud": "playgate", "sub": "v",
                "exp": playgate::clock::Clock::now_epoch(&playgate::clock::SystemClock) + 600, "tier": tier}),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&self.jwt_private).unwrap(),
        )
        .unwrap()
    }
}

/// The moto server's table `pgtest-records` and output bucket
/// `pgtest-out`, made.
pub async fn store_and_bucket(
    sdk: &aws_config::SdkConfig,
) -> (
    playgate::backends::store::dynamodb::DynamoStore,
    playgate::backends::storage::s3::S3Store,
) {
    let dynamo = playgate::backends::store::dynamodb::DynamoStore::new(sdk, "pgtest-records");
    dynamo.create_table().await.unwrap();
    let s3 = playgate::backends::storage::s3::S3Store::new(sdk, "pgtest-out", true);
    s3.create_bucket().await.unwrap();
    (dynamo, s3)
}

/// A 2 s ladder (scripts/make-clip.sh) in `dir/clip`, published as asset
/// `clip` v1; the clip's directory.
pub async fn publish_clip(
    dynamo: &playgate::backends::store::dynamodb::DynamoStore,
    s3: &playgate::backends::storage::s3::S3Store,
    dir: &Path,
) -> PathBuf {
    let clip = dir.join("clip");
    crate::media::make_clip(&clip, 2);
    let id = playgate::domain::AssetId::parse("clip").unwrap();
    playgate::pipeline::publish::publish_dir(dynamo, s3, &id, None, &clip, 0)
        .await
        .unwrap();
    clip
}
