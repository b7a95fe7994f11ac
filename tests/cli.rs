//! The `playgate` binary as a user runs it: exit codes, output, logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/media.rs"]
mod media;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn playgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_playgate"))
}

fn keygen(dir: &Path) {
    let out = playgate()
        .args(["keygen", "--out"])
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(dir: &Path, listen: &str) -> std::path::PathBuf {
    let d = dir.display();
    let text = format!(
        r#"
[server]
listen = "{listen}"
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
"#
    );
    let path = dir.join("playgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_lists_three_mistakes_on_three_lines() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let good = config(dir.path(), "127.0.0.1:0");
    let out = playgate()
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));

    // Three mistakes: a bad duration, an unknown key, a bad tier value.
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nrequest_timeout = \"soon\"\nmax_concurency = 5",
        )
        .replace("max_height = 480", "max_height = -1");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = playgate()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("server.request_timeout: ")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("server.max_concurency: unknown key")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tiers.free.max_height: ")),
        "{stdout}"
    );
}

#[test]
fn check_config_reports_a_missing_key_file_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "127.0.0.1:0"); // no keygen
    let out = playgate()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("signing.keys[0].id_file: cannot read"),
        "{stdout}"
    );
    assert!(stdout.contains("playgate keygen"), "{stdout}");
}

/// `*` lends no credentials: with a cookie tier, check-config says so (and
/// still passes); a listed origin is quiet; `*` beside origins is an error.
#[test]
fn check_config_warns_that_star_cors_cannot_carry_cookies() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let cfg = config(dir.path(), "127.0.0.1:0");
    let run = |origins: &str| {
        playgate()
            .args(["check-config", "--config"])
            .arg(&cfg)
            .env("PLAYGATE__SERVER__CORS_ALLOWED_ORIGINS", origins)
            .output()
            .unwrap()
    };
    let star = run(r#"["*"]"#);
    assert_eq!(star.status.code(), Some(0));
    let stdout = String::from_utf8(star.stdout).unwrap();
    assert!(
        stdout.contains("warning: server.cors_allowed_origins: \"*\" lends no credentials")
            && stdout.contains("(tiers free)"),
        "{stdout}"
    );
    let listed = run(r#"["https://player.example.com"]"#);
    assert_eq!(listed.status.code(), Some(0));
    assert!(
        !String::from_utf8(listed.stdout)
            .unwrap()
            .contains("warning")
    );
    let mixed = run(r#"["*", "https://player.example.com"]"#);
    assert_eq!(mixed.status.code(), Some(2));
    let path = run(r#"["https://player.example.com/app"]"#);
    assert_eq!(path.status.code(), Some(2), "an origin has no path");
}

/// `--config env:VAR` and `*_env` keys: the whole config and the PEMs from
/// the environment, as the ECS task gets them, nothing on disk; a missing
/// variable is one clear problem.
#[test]
fn the_config_and_the_keys_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let k = dir.path().join("keys");
    let read = |f: &str| std::fs::read_to_string(k.join(f)).unwrap();
    let text = std::fs::read_to_string(config(dir.path(), "127.0.0.1:0"))
        .unwrap()
        .replace(
            &format!(
                "private_key_file = \"{0}/keys/cloudfront_private.pem\"\npublic_key_file = \"{0}/keys/cloudfront_public.pem\"",
                dir.path().display()
            ),
            "private_key_env = \"PG_CF_PRIVATE\"\npublic_key_env = \"PG_CF_PUBLIC\"",
        );
    assert!(text.contains("PG_CF_PRIVATE"), "{text}");
    let run = |with_private: bool| {
        let mut cmd = playgate();
        cmd.args(["check-config", "--config", "env:PG_CONFIG"])
            .env("PG_CONFIG", &text)
            .env("PG_CF_PUBLIC", read("cloudfront_public.pem"));
        if with_private {
            cmd.env("PG_CF_PRIVATE", read("cloudfront_private.pem"));
        }
        cmd.output().unwrap()
    };
    let ok = run(true);
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ok: env:PG_CONFIG"), "{stdout}");
    assert!(!stdout.contains("BEGIN"), "no key material printed");
    let missing = run(false);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8(missing.stdout).unwrap().contains(
        "signing.keys[0].private_key_env: environment variable PG_CF_PRIVATE is not set"
    ));
    let none = playgate()
        .args(["check-config", "--config", "env:PG_NO_SUCH_CONFIG"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8(none.stdout)
            .unwrap()
            .contains("environment variable PG_NO_SUCH_CONFIG is not set")
    );
}

#[test]
fn env_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let cfg = config(dir.path(), "127.0.0.1:0");
    let out = playgate()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("PLAYGATE__SERVER__MAX_CONCURRENCY", "zero")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("server.max_concurrency: "));
}

#[test]
fn keygen_writes_private_keys_0600_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let keys = dir.path().join("keys");
    for (name, mode) in [
        ("cloudfront_private.pem", 0o600),
        ("jwt_private.pem", 0o600),
        ("cloudfront_public.pem", 0o644),
    ] {
        let m = std::fs::metadata(keys.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, mode, "{name}");
    }
    let id = std::fs::read_to_string(keys.join("cloudfront_key_pair_id")).unwrap();
    assert!(id.starts_with("KDEV") && id.trim().len() == 14, "{id}");
    let again = playgate()
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(keys.join("cloudfront_key_pair_id")).unwrap(),
        id
    );
}

#[test]
fn token_mints_a_verifiable_jwt_only_for_dev_issuers() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let cfg = config(dir.path(), "127.0.0.1:0");
    let out = playgate()
        .args([
            "token", "--sub", "viewer-1", "--tier", "free", "--ttl", "10m", "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwt = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let public = std::fs::read(dir.path().join("keys/jwt_public.pem")).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["playgate"]);
    v.set_issuer(&["playgate-dev"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(data.claims["tier"], "free");
    assert_eq!(data.claims["sub"], "viewer-1");
    let ttl = data.claims["exp"].as_u64().unwrap() - data.claims["iat"].as_u64().unwrap();
    assert_eq!(ttl, 600);

    // An unknown tier and a non-dev issuer are refused.
    let out = playgate()
        .args(["token", "--sub", "v", "--tier", "gold", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The same config with a production issuer (no dev flag, no private key).
    let jwt_key_line = format!(
        "private_key_file = \"{}/keys/jwt_private.pem\"\n",
        dir.path().display()
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&jwt_key_line, "")
        .replace("dev = true", "dev = false");
    let prod = dir.path().join("prod.toml");
    std::fs::write(&prod, text).unwrap();
    let out = playgate()
        .args(["token", "--sub", "v", "--tier", "free", "--config"])
        .arg(&prod)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dev = true"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `playgate serve` with JSON logs, sends a request carrying a bearer
/// token and `?token=`, stops it with SIGTERM and reads what it logged.
#[test]
fn serve_logs_redact_credentials_and_sigterm_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let port = free_port();
    let cfg = config(dir.path(), &format!("127.0.0.1:{port}"));
    let minted = playgate()
        .args(["token", "--sub", "viewer-log", "--tier", "free", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let viewer_token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    assert!(viewer_token.len() > 100);
    let mut child = playgate()
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Wait for the listening line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains("playgate listening") {
            break;
        }
    }
    assert!(
        line.contains("playgate listening"),
        "server did not start: {line}"
    );

    let secret_bearer = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LWJlYXJlcg.c2lnbmF0dXJl";
    let secret_query = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXF1ZXJ5.c2lnbmF0dXJl";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{port}/v1/play/a/master.m3u8?token={secret_query}&x=1"
            ))
            .header("authorization", format!("Bearer {secret_bearer}"))
            .header("cookie", "CloudFront-Signature=cookie-secret")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 401, "a bad bearer on the master route");
    // A valid viewer token, the same token tampered, and one in the query
    // of a route that refuses query tokens: none may reach the log.
    let last = if viewer_token.ends_with('A') {
        'B'
    } else {
        'A'
    };
    let tampered = format!("{}{last}", &viewer_token[..viewer_token.len() - 1]);
    let statuses = rt.block_on(async {
        let c = reqwest::Client::new();
        let me = format!("http://127.0.0.1:{port}/v1/me");
        let status =
            |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status() };
        let a = status(c.get(&me).bearer_auth(&viewer_token)).await;
        let b = status(c.get(&me).bearer_auth(&tampered)).await;
        let q = status(c.get(format!("{me}?token={viewer_token}"))).await;
        (a.as_u16(), b.as_u16(), q.as_u16())
    });
    assert_eq!(statuses, (200, 401, 401));

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let code = child.wait().unwrap();
    assert_eq!(code.code(), Some(0), "SIGTERM must exit 0; log:\n{rest}");

    let access = rest
        .lines()
        .find(|l| l.contains("\"target\":\"playgate::access\"") && l.contains("master.m3u8"))
        .unwrap_or_else(|| panic!("no access log line:\n{rest}"));
    let v: serde_json::Value = serde_json::from_str(access).unwrap();
    assert_eq!(v["authorization"], "Bearer [redacted]");
    assert_eq!(v["uri"], "/v1/play/a/master.m3u8?token=[redacted]&x=1");
    assert_eq!(v["cookie"], "[redacted]");
    assert!(
        rest.contains("authentication failed"),
        "the 401 is logged with its reason"
    );
    let signature_part = viewer_token.rsplit('.').next().unwrap();
    for secret in [
        secret_bearer,
        secret_query,
        "cookie-secret",
        "c2VjcmV0",
        &viewer_token,
        &tampered,
        signature_part,
    ] {
        assert!(!rest.contains(secret), "log leaked {secret}:\n{rest}");
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cloudfront")
        .join(name)
}

#[test]
fn sign_url_matches_the_reference_vector_and_verifies() {
    let url =
        "https://d111111abcdef8.cloudfront.net/vod/title-123/master.m3u8?session=abc123&lang=en";
    let out = playgate()
        .args([
            "sign",
            "url",
            "--key-pair-id",
            "K3TESTVECTOR01",
            "--expires",
            "2082758400",
            "--private-key",
        ])
        .arg(fixture("test_rsa_key.pem"))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = String::from_utf8(out.stdout).unwrap();
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("vectors.json")).unwrap()).unwrap();
    let expected = vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "url_canned_existing_query")
        .unwrap()["botocore"]["signed_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(signed, format!("{expected}\n"));

    let verify = |now: &str| {
        playgate()
            .args([
                "verify",
                "url",
                "--key-pair-id",
                "K3TESTVECTOR01",
                "--now",
                now,
                "--public-key",
            ])
            .arg(fixture("test_rsa_pub.pem"))
            .arg(signed.trim())
            .output()
            .unwrap()
    };
    let ok = verify("2000000000");
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "valid\n");
    let late = verify("2082758400");
    assert_eq!(late.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&late.stdout), "invalid: expired\n");
}

#[test]
fn sign_cookies_prints_a_json_object() {
    let out = playgate()
        .args([
            "sign",
            "cookies",
            "--key-pair-id",
            "K3TESTVECTOR01",
            "--expires",
            "2082758400",
        ])
        .args([
            "--resource",
            "https://d111111abcdef8.cloudfront.net/vod/*",
            "--hash",
            "sha256",
            "--private-key",
        ])
        .arg(fixture("test_rsa_key.pem"))
        .arg("https://d111111abcdef8.cloudfront.net/vod/x.m3u8")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "CloudFront-Hash-Algorithm",
            "CloudFront-Key-Pair-Id",
            "CloudFront-Policy",
            "CloudFront-Signature"
        ]
    );
    assert_eq!(v["CloudFront-Hash-Algorithm"], "SHA256");
}

#[test]
fn sign_bad_input_is_one_line_and_exit_2() {
    let run = |extra: &[&str], key: &std::path::Path| {
        let out = playgate()
            .args(["sign", "url", "--key-pair-id", "K1"])
            .args(extra)
            .arg("--private-key")
            .arg(key)
            .arg("https://h/x")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let key = fixture("test_rsa_key.pem");
    for (extra, needle) in [
        (&["--expires", "10", "--ip", "2001:db8::/32"][..], "IPv4"),
        (
            &["--expires", "10", "--starts", "20"][..],
            "not after start",
        ),
        (&["--expires", "10", "--policy", "{}"][..], "do not combine"),
        (&["--policy", "not json"][..], "policy"),
    ] {
        let (code, err) = run(extra, &key);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    let (code, err) = run(&["--expires", "10"], &fixture("test_rsa_pub.pem"));
    assert_eq!(code, Some(2));
    assert!(err.contains("not a PEM private"), "{err}");
    let (code, err) = run(&["--expires", "10"], Path::new("/nonexistent/key.pem"));
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot read"), "{err}");
}

/// Runs `playgate ARGS… [--config CONFIG] -` with `stdin` piped in.
/// `playgate verify url` of `cdn_url` with `query`, by the keys in `dir/keys`.
fn verify_signed(dir: &Path, cdn_url: &str, query: &str) -> std::process::Output {
    let id = std::fs::read_to_string(dir.join("keys/cloudfront_key_pair_id")).unwrap();
    playgate()
        .args(["verify", "url", "--key-pair-id", id.trim(), "--public-key"])
        .arg(dir.join("keys/cloudfront_public.pem"))
        .arg(format!("{cdn_url}?{query}"))
        .output()
        .unwrap()
}

/// Every playlist URI a master names (variant lines and `URI="…"`).
fn playlist_uris(master: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(master);
    let mut out = Vec::new();
    for l in text.lines() {
        if !l.starts_with('#') && !l.trim().is_empty() {
            out.push(l.trim().to_owned());
        } else if let Some(rest) = l.split("URI=\"").nth(1) {
            out.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    out
}

fn run_with_stdin(args: &[&str], config: Option<&Path>, stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut cmd = playgate();
    cmd.args(args);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse (and exit) before it reads its input; a
    // broken pipe here is that, and the exit code tells the rest.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn manifest_filter_gives_each_delivery_a_master_the_edge_enforces() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let cfg = config(dir.path(), "127.0.0.1:0");
    let master = std::fs::read("tests/fixtures/hls/mediaconvert_per_stream.m3u8").unwrap();
    let url = "http://127.0.0.1:0/cdn/assets/a1/v1/hls/master.m3u8";
    let filter = ["manifest", "filter", "--tier", "free", "--url", url];

    // Cookie delivery: absolute CDN URIs, one scope per allowed directory.
    let out = run_with_stdin(&filter, Some(&cfg), &master);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\nhttp://127.0.0.1:0/cdn/assets/a1/v1/hls/480p/index_480p.m3u8\n"),
        "{text}"
    );
    assert!(!text.contains("720p") && !text.contains("2160p"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("scope http://127.0.0.1:0/cdn/assets/a1/v1/hls/480p/* (cookie Path=/cdn/assets/a1/v1/hls/480p/)"), "{err}");
    assert!(!err.contains("Signature"), "no secret on stderr: {err}");

    // URL delivery signs what the media playlists list: without them
    // (standard input, no --media) it is refused, saying why.
    let mut args = filter.to_vec();
    args.extend(["--delivery", "urls"]);
    let out = run_with_stdin(&args, Some(&cfg), &master);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("pass --media DIR"), "{err}");
    // With them: gateway URLs whose signature opens its own rendition at
    // the edge and not a forbidden one.
    let media = dir.path().join("media");
    for uri in playlist_uris(&master) {
        let p = media.join(&uri);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "#EXTM3U\n#EXTINF:6,\nseg_00001.ts\n#EXT-X-ENDLIST\n").unwrap();
    }
    let media_arg = media.display().to_string();
    args.extend(["--media", &media_arg]);
    let out = run_with_stdin(&args, Some(&cfg), &master);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("http://127.0.0.1:0/v1/play/a1/hls/360p/index_360p.m3u8?Policy="))
        .unwrap_or_else(|| panic!("{text}"));
    let query = line.split_once('?').unwrap().1;
    let verify = |cdn_url: &str| verify_signed(dir.path(), cdn_url, query);
    let ok = verify("http://127.0.0.1:0/cdn/assets/a1/v1/hls/360p/seg_00001.ts");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let refused = verify("http://127.0.0.1:0/cdn/assets/a1/v1/hls/720p/index_720p.m3u8");
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
}

#[test]
fn manifest_filter_exits_3_when_nothing_is_playable_and_2_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let cfg = config(dir.path(), "127.0.0.1:0");
    let url = "http://127.0.0.1:0/cdn/assets/a1/v1/hls/master.m3u8";
    let tall =
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=3840x2160\n2160p/index.m3u8\n";
    let out = run_with_stdin(
        &["manifest", "filter", "--tier", "free", "--url", url],
        Some(&cfg),
        tall,
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "playgate: nothing playable remains for tier free\n"
    );
    assert!(out.stdout.is_empty());

    for (args, input, says) in [
        (
            vec!["manifest", "filter", "--tier", "gold", "--url", url],
            &tall[..],
            "no tier named gold",
        ),
        (
            vec![
                "manifest",
                "filter",
                "--tier",
                "free",
                "--url",
                "ftp://x/m.m3u8",
            ],
            &tall[..],
            "must be http(s)",
        ),
        (
            vec!["manifest", "filter", "--tier", "free", "--url", url],
            b"not a playlist",
            "does not start with #EXTM3U",
        ),
        (
            vec!["manifest", "filter", "--tier", "free", "--url", url],
            b"<MPD><Period>",
            "not well-formed XML",
        ),
    ] {
        let out = run_with_stdin(&args, Some(&cfg), input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn manifest_sign_signs_every_uri_against_the_playlist_url() {
    let media = std::fs::read("tests/fixtures/hls/ffmpeg_fmp4_media.m3u8").unwrap();
    let url = "https://cdn.example.com/assets/a/v1/hls/360p/index.m3u8";
    let sign = |query: &str, input: &[u8]| {
        run_with_stdin(
            &["manifest", "sign", "--query", query, "--url", url],
            None,
            input,
        )
    };
    let out = sign("Policy=P&Signature=S&Key-Pair-Id=K", &media);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("#EXT-X-MAP:URI=\"https://cdn.example.com/assets/a/v1/hls/360p/init_0.mp4?Policy=P&Signature=S&Key-Pair-Id=K\""), "{text}");
    assert_eq!(
        text.matches("Policy=P&Signature=S&Key-Pair-Id=K").count(),
        3,
        "{text}"
    );

    let bad = sign("Policy=P Signature=S", &media);
    assert_eq!(bad.status.code(), Some(2));
    let bad = sign("Policy=P", b"<html>");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("#EXTM3U"));
}

/// A server child process stopped even when the test fails early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Base64 body lines of the PEM files under `dir` (each a run of private
/// or public key material that must never be logged).
fn pem_lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pem") && p.to_string_lossy().contains("private") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 40)
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// `name=value` pairs of every CloudFront credential in `text` (query
/// strings, Set-Cookie values, JSON): the values, at least 20 long.
fn credentials_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "Signature",
        "Policy",
        "CloudFront-Signature",
        "CloudFront-Policy",
    ] {
        for (i, _) in text.match_indices(&format!("{name}=")) {
            let v: String = text[i + name.len() + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_~".contains(*c))
                .collect();
            if v.len() >= 20 {
                out.push(v);
            }
        }
    }
    for key in ["\"CloudFront-Signature\":\"", "\"CloudFront-Policy\":\""] {
        for (i, _) in text.match_indices(key) {
            let v: String = text[i + key.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            if v.len() >= 20 {
                out.push(v);
            }
        }
    }
    out
}

/// The `URI` of a media playlist's `EXT-X-KEY`.
fn key_uri(playlist: &str) -> String {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:"))
        .unwrap_or_else(|| panic!("no EXT-X-KEY: the encode is not encrypted:\n{playlist}"));
    line.split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// The whole local flow (upload, encode with a signed webhook, cookie and
/// URL playback through the edge, the sign API, the MediaConvert hook)
/// with every crate logging at `trace`: no private key, token, signature,
/// policy, API key or shared secret appears anywhere in the output.
#[test]
fn trace_logs_of_a_whole_session_leak_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d);
    let port = free_port();
    let api_key = "pgk-live-5f0c7d1e9a2b4c8d6e3f1a0b9c8d7e6f";
    let webhook_secret = "whsec-9d8c7b6a5f4e3d2c1b0a";
    let hook_secret = "mchook-0a1b2c3d4e5f6a7b8c9d";
    std::fs::write(d.join("webhook-secret"), webhook_secret).unwrap();
    std::fs::write(d.join("hook-secret"), hook_secret).unwrap();
    let hash: String = openssl::sha::sha256(api_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    // A webhook receiver that keeps the signature header it is sent.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hook_addr = {
        let received = received.clone();
        rt.block_on(async move {
            let router = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
                let received = received.clone();
                async move {
                    if let Some(s) = headers.get("x-playgate-signature") {
                        received
                            .lock()
                            .unwrap()
                            .push(s.to_str().unwrap().to_owned());
                    }
                    "ok"
                }
            });
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(l, router).await });
            addr
        })
    };
    let cfg = config(d, &format!("127.0.0.1:{port}"));
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = text.replace("[tiers.free]\nmax_height = 480\n", "");
    text.push_str(&format!(
        r#"
[[auth.api_keys]]
name = "ops"
sha256 = "{hash}"
scopes = ["playgate:ingest", "playgate:admin", "playgate:sign"]
[notify]
webhook_url = "http://{hook_addr}/hook"
webhook_secret_file = "{d}/webhook-secret"
mediaconvert_hook_secret_file = "{d}/hook-secret"
[tiers.free]
max_height = 480
delivery = "cookies"
[tiers.mobile]
rank = 5
max_height = 480
delivery = "urls"
"#,
        d = d.display()
    ));
    std::fs::write(&cfg, text).unwrap();
    let token = |tier: &str| {
        let out = playgate()
            .args(["token", "--sub", "viewer-trace", "--tier", tier, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (free, mobile) = (token("free"), token("mobile"));
    let log_path = d.join("trace.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = KillOnDrop(
        playgate()
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "trace")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let source = media::small_source(d, 2);

    let seen = rt.block_on(async {
        let c = reqwest::Client::new();
        for _ in 0..100 {
            if c.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut seen = String::new();
        // Upload, transcode and wait, as an operator does.
        let ingest = tokio::task::spawn_blocking({
            let (cfg, source, base) = (cfg.clone(), source.clone(), base.clone());
            move || {
                playgate()
                    .args(["ingest", "--server", &base, "--token-env", "PG_TRACE_KEY", "--config"])
                    .arg(&cfg)
                    .arg(&source)
                    .env("PG_TRACE_KEY", api_key)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));
        let printed = String::from_utf8(ingest.stdout).unwrap();
        let id = printed
            .split("/v1/play/")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap()
            .to_owned();

        // Cookie delivery: the master, then a segment through the edge.
        let master = c
            .get(format!("{base}/v1/play/{id}/master.m3u8"))
            .bearer_auth(&free)
            .send()
            .await
            .unwrap();
        let cookies: Vec<String> = master
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(!cookies.is_empty());
        seen.push_str(&cookies.join("\n"));
        let body = master.text().await.unwrap();
        let media = body.lines().find(|l| l.starts_with("http") && l.ends_with("/index.m3u8")).unwrap().to_owned();
        let jar: Vec<String> = cookies
            .iter()
            .filter(|c| c.contains(&format!("Path=/cdn/assets/{id}/v1/hls/{}/", media.rsplit('/').nth(1).unwrap())))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect();
        let edge = c.get(&media).header("cookie", jar.join("; ")).send().await.unwrap();
        assert_eq!(edge.status(), 200, "{media}");
        // The encode is encrypted: the media playlist names the gateway's
        // key, which the master's key cookie opens.
        let playlist = edge.text().await.unwrap();
        let key_cookie = cookies
            .iter()
            .find(|c| c.starts_with("playgate-keys="))
            .expect("the master sets the key cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let key = c
            .get(key_uri(&playlist))
            .header("cookie", &key_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(key.status(), 200, "the key with the cookie");
        let mut keys = vec![key.bytes().await.unwrap().to_vec()];
        let mut key_tokens = vec![key_cookie.trim_start_matches("playgate-keys=").to_owned()];

        // URL delivery: the master (token in the query, its name
        // percent-encoded, as the extractor still reads it), a media
        // playlist, a segment through the edge.
        let master = c
            .get(format!("{base}/v1/play/{id}/master.m3u8?%74oken={mobile}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen.push_str(&master);
        let media_url = master.lines().find(|l| l.starts_with("http") && l.contains("index.m3u8")).unwrap();
        let media = c.get(media_url).send().await.unwrap().text().await.unwrap();
        seen.push_str(&media);
        let seg = media.lines().find(|l| l.starts_with("http") && !l.starts_with('#')).unwrap();
        assert_eq!(c.get(seg).send().await.unwrap().status(), 200, "{seg}");
        let key_url = key_uri(&media);
        let key = c.get(&key_url).send().await.unwrap();
        assert_eq!(key.status(), 200, "the key with its token: {key_url}");
        keys.push(key.bytes().await.unwrap().to_vec());
        key_tokens.push(key_url.split("kt=").nth(1).unwrap().to_owned());

        // The sign API, the hook (right and wrong secret), /v1/me.
        for (path, body) in [
            ("/v1/sign/cookies", serde_json::json!({"asset": id, "tier": "free"})),
            ("/v1/sign/urls", serde_json::json!({"urls": [format!("{base}/cdn/assets/{id}/v1/hls/master.m3u8")], "ttl": "10m"})),
        ] {
            let r = c.post(format!("{base}{path}")).bearer_auth(api_key).json(&body).send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, 200, "{path}: {text}");
            seen.push_str(&text);
        }
        for secret in [hook_secret, "wrong-secret-0123456789"] {
            c.post(format!("{base}/hooks/mediaconvert"))
                .header("x-playgate-hook-secret", secret)
                .json(&serde_json::json!({"source": "aws.mediaconvert", "detail-type": "MediaConvert Job State Change", "detail": {"jobId": "1", "status": "COMPLETE", "userMetadata": {}}}))
                .send()
                .await
                .unwrap();
        }
        c.get(format!("{base}/v1/me")).bearer_auth(&free).send().await.unwrap();
        (seen, keys, key_tokens)
    });
    let (seen, keys, key_tokens) = seen;
    // The webhook goes out after the job's end, off its path: wait for it.
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    child.0.wait().unwrap();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    // Trace level was on: the HTTP client's trace events (the webhook)
    // came through along with playgate's own lines.
    assert!(
        logged.lines().any(|l| l.contains("\"level\":\"TRACE\"")),
        "trace logging was on:\n{logged}"
    );
    assert!(
        logged
            .lines()
            .filter(|l| l.contains("playgate::access"))
            .count()
            >= 15
    );

    let mut secrets: Vec<String> = vec![api_key.into(), webhook_secret.into(), hook_secret.into()];
    for t in [&free, &mobile] {
        secrets.push(t.clone());
        secrets.push(t.rsplit('.').next().unwrap().to_owned());
    }
    secrets.extend(pem_lines(&d.join("keys")));
    secrets.push(
        std::fs::read_to_string(d.join("keys/content_kek"))
            .unwrap()
            .trim()
            .to_owned(),
    );
    // Content keys as hex, base64 and Rust's Debug of bytes; key tokens.
    for k in &keys {
        assert_eq!(k.len(), 16);
        use base64::Engine;
        secrets.push(k.iter().map(|b| format!("{b:02x}")).collect());
        secrets.push(base64::engine::general_purpose::STANDARD.encode(k));
        secrets.push(format!("{k:?}")[1..20].to_owned());
    }
    secrets.extend(key_tokens);
    let creds = credentials_in(&seen);
    assert!(
        creds.len() >= 6,
        "signatures and policies were handed out: {creds:?}"
    );
    secrets.extend(creds);
    let webhook = received.lock().unwrap().clone();
    assert!(!webhook.is_empty(), "the webhook was called");
    secrets.extend(
        webhook
            .iter()
            .map(|s| s.trim_start_matches("v1=").to_owned()),
    );
    for s in &secrets {
        if let Some(line) = logged.lines().find(|l| l.contains(s.as_str())) {
            let shown = line.replace(s.as_str(), "[THE SECRET]");
            panic!(
                "a secret ({}…) is in the log: {shown}",
                &s[..8.min(s.len())]
            );
        }
    }
}

/// Manifests from other packagers through `playgate manifest filter`:
/// nothing forbidden plays with one cookie on the master's directory (a
/// variant beside the master, its I-frame playlist in a subdirectory; an
/// audio group no variant names); a flat layout's URL delivery reads the
/// media playlists beside the master, so its signatures open the
/// rendition's own segments and no other rendition's; an audio-only MPD
/// the tier removes entirely is exit 3; a multi-period MPD loses only the
/// period the tier cannot play.
#[test]
fn manifest_filter_handles_manifests_from_the_wild() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let cfg = config(dir.path(), "127.0.0.1:0");
    let url = "http://127.0.0.1:0/cdn/assets/a1/v1/hls/master.m3u8";
    for name in ["kept_in_master_dir", "unreferenced_group"] {
        let master = std::fs::read(format!("tests/fixtures/hls/{name}.m3u8")).unwrap();
        let out = run_with_stdin(
            &[
                "manifest",
                "filter",
                "--tier",
                "free",
                "--url",
                url,
                "--delivery",
                "cookies",
            ],
            Some(&cfg),
            &master,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        assert!(
            err.contains("(cookie Path=/cdn/assets/a1/v1/hls/)"),
            "{name}: one cookie on the master's directory: {err}"
        );
    }

    // A flat, MediaConvert-style tree on disk: master and media playlists.
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    let master = std::fs::read("tests/fixtures/hls/mediaconvert_flat.m3u8").unwrap();
    std::fs::write(flat.join("master.m3u8"), &master).unwrap();
    let media = std::fs::read_to_string("tests/fixtures/hls/mediaconvert_flat_360p.m3u8").unwrap();
    for uri in playlist_uris(&master) {
        let stem = uri.trim_end_matches(".m3u8");
        std::fs::write(flat.join(&uri), media.replace("master_360p", stem)).unwrap();
    }
    let out = playgate()
        .args([
            "manifest",
            "filter",
            "--tier",
            "free",
            "--url",
            url,
            "--delivery",
            "urls",
            "--config",
        ])
        .arg(&cfg)
        .arg(flat.join("master.m3u8"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("/hls/master_360p.m3u8?Policy="))
        .unwrap_or_else(|| panic!("{text}"));
    let query = line.split_once('?').unwrap().1;
    let verify = |cdn_url: &str| verify_signed(dir.path(), cdn_url, query).status.code();
    let cdn = "http://127.0.0.1:0/cdn/assets/a1/v1/hls";
    assert_eq!(
        verify(&format!("{cdn}/master_360p_00001.ts")),
        Some(0),
        "its own segment"
    );
    assert_eq!(
        verify(&format!("{cdn}/master_720p_00001.ts")),
        Some(1),
        "a forbidden rendition's"
    );
    assert_eq!(
        verify(&format!("{cdn}/master_360p_I-Frame.m3u8")),
        Some(0),
        "its I-frame playlist"
    );

    // DASH: an audio-only MPD the tier removes whole; a multi-period MPD.
    let mpd_url = "http://127.0.0.1:0/cdn/assets/a1/v1/dash/manifest.mpd";
    let run_mpd = |name: &str| {
        let mut cmd = playgate();
        cmd.args([
            "manifest",
            "filter",
            "--tier",
            "free",
            "--url",
            mpd_url,
            "--delivery",
            "cookies",
            "--config",
        ])
        .arg(&cfg)
        .arg(format!("tests/fixtures/dash/{name}.mpd"))
        .env("PLAYGATE__TIERS__FREE__CODECS", r#"["avc1", "mp4a"]"#);
        cmd.output().unwrap()
    };
    let audio = run_mpd("audio_only");
    assert_eq!(
        audio.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&audio.stdout)
    );
    assert!(String::from_utf8_lossy(&audio.stderr).contains("nothing playable remains"));
    let periods = run_mpd("multi_period_ad");
    assert_eq!(
        periods.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&periods.stderr)
    );
    let mpd = String::from_utf8(periods.stdout).unwrap();
    assert!(
        mpd.contains("id=\"content-1\"") && mpd.contains("id=\"content-2\""),
        "{mpd}"
    );
    assert!(
        !mpd.contains("id=\"ad-1\"") && !mpd.contains("hev1"),
        "the HEVC ad period goes: {mpd}"
    );
}

#[test]
fn openapi_prints_the_description_and_a_reader_may_stop_early() {
    let out = playgate().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/sign/cookies"]["post"].is_object());
    // `playgate openapi | head`: the document is larger than a pipe's
    // buffer, so the write meets a closed pipe. That is not a failure (it
    // was a panic, exit 101, with println!).
    assert!(out.stdout.len() > 65_536, "too small to fill a pipe");
    let mut child = playgate()
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "exit {:?}: {stderr}", done.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
