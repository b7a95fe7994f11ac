use super::*;

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml(text, Path::new("t.toml"), Vec::new())
}

const MIN: &str = concat!(
    r#"
[[signing.keys]]
id = "K1"
public_key_file = "/dev/null"
private_key_file = "/dev/null"
[protection]
kek_file = ""#,
    env!("CARGO_MANIFEST_DIR"),
    r#"/tests/fixtures/test_content_kek"
"#
);

#[test]
fn encryption_needs_a_key_that_wraps_content_keys() {
    let no_kek = MIN.split("[protection]").next().unwrap();
    let e = load(no_kek).unwrap_err();
    assert!(
        e.0.iter()
            .any(|i| i.path == "pipeline.encrypt" && i.reason.contains("kek_file")),
        "{e:?}"
    );
    let off = load(&format!("{no_kek}[pipeline]\nencrypt = false\n")).unwrap();
    assert!(!off.pipeline.encrypt && !off.protection.configured());
    let on = load(MIN).unwrap();
    assert!(on.pipeline.encrypt && on.protection.configured());
    assert!(
        !format!("{on:?}").contains(&"5a".repeat(32)),
        "the KEK printed"
    );
    let bad = load(&format!("{no_kek}[protection]\nkek_file = \"/dev/null\"\n")).unwrap_err();
    assert!(
        bad.0.iter().any(|i| i.path == "protection.kek_file"),
        "{bad:?}"
    );
    let inline = load(&format!("{no_kek}[protection]\nkek = \"00\"\n")).unwrap_err();
    assert!(
        inline
            .0
            .iter()
            .any(|i| i.reason.contains("not written inline")),
        "{inline:?}"
    );
}

#[test]
fn defaults_fill_an_almost_empty_file() {
    let c = load(MIN).unwrap();
    assert_eq!(c.mode, Mode::Local);
    assert_eq!(c.server.listen.port(), 8080);
    assert_eq!(c.server.request_timeout, Duration::from_secs(30));
    assert_eq!(c.server.max_body, 1 << 20);
    assert_eq!(c.signing.active.as_str(), "K1");
    assert_eq!(c.signing.expiry_bucket, Duration::from_secs(300));
    assert_eq!(c.cdn.base_url, "http://127.0.0.1:8080/cdn");
}

#[test]
fn base_urls_keep_no_trailing_slash() {
    let c = load(&format!(
        "{MIN}[server]\npublic_url = \"https://play.example.com//\"\n"
    ))
    .unwrap();
    assert_eq!(c.server.public_url, "https://play.example.com");
    assert_eq!(c.cdn.base_url, "https://play.example.com/cdn");
    let c = load(&format!(
        "{MIN}[cdn]\nbase_url = \"https://cdn.example.com/\"\n"
    ))
    .unwrap();
    assert_eq!(c.cdn.base_url, "https://cdn.example.com");
    assert_eq!(
        format!("{}/assets/a", c.cdn.base_url),
        "https://cdn.example.com/assets/a"
    );
    // A slash alone is not a base URL, trimmed or not.
    let e = load(&format!("{MIN}[cdn]\nbase_url = \"/\"\n")).unwrap_err();
    assert!(e.0.iter().any(|i| i.path == "cdn.base_url"), "{e:?}");
}

#[test]
fn sizes_and_durations_parse() {
    let c = load(&format!(
        "[server]\nmax_body = \"5GiB\"\nshutdown_grace = \"1m 30s\"\n{MIN}"
    ))
    .unwrap();
    assert_eq!(c.server.max_body, 5 * 1024 * 1024 * 1024);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(90));
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"
mode = "cloud"
[server]
listen = "nowhere"
public_url = "ftp://x"
[signing]
active = "KNOPE"
[[signing.keys]]
id = "K1"
private_key_file = "/nonexistent/key.pem"
[tiers.free]
video_range = ["HDR10"]
bogus = 1
"#;
    let errs = load(text).unwrap_err().0;
    let paths: Vec<&str> = errs.iter().map(|i| i.path.as_str()).collect();
    for want in [
        "mode",
        "server.listen",
        "server.public_url",
        "signing.active",
        "signing.keys[0].private_key_file",
        "tiers.free.video_range",
        "tiers.free.bogus",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
}

#[test]
fn inline_secrets_are_refused() {
    let text = format!(
        "{MIN}\n[[auth.issuers]]\nname = \"h\"\nissuer = \"i\"\nalgorithms = [\"HS256\"]\nhs256_secret = \"hunter2\"\n"
    );
    let errs = load(&text).unwrap_err().0;
    let line = errs
        .iter()
        .find(|i| i.path == "auth.issuers[0].hs256_secret")
        .unwrap();
    assert!(line.reason.contains("hs256_secret_file"));
    assert!(!format!("{errs:?}").contains("hunter2"));
}

#[test]
fn secrets_from_env_never_print() {
    let var = "PLAYGATE_TEST_SECRET_FOR_CONFIG";
    // SAFETY-free: tests in this module do not read this variable elsewhere.
    let text = format!(
        "{MIN}\n[[auth.issuers]]\nname = \"h\"\nissuer = \"i\"\nalgorithms = [\"HS256\"]\nhs256_secret_env = \"{var}\"\n"
    );
    let errs = load(&text).unwrap_err().0;
    assert!(
        errs.iter().any(|i| i.reason.contains(var)),
        "unset variable reported: {errs:?}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "s3cr3t-value\n").unwrap();
    let text = format!(
        "{MIN}\n[[auth.issuers]]\nname = \"h\"\nissuer = \"i\"\nalgorithms = [\"HS256\"]\nhs256_secret_file = \"{}\"\n",
        file.path().display()
    );
    let c = load(&text).unwrap();
    let secret = c.auth.issuers[0].hs256_secret.as_ref().unwrap();
    assert_eq!(secret.expose(), "s3cr3t-value");
    assert!(!format!("{c:?}").contains("s3cr3t"));
    // From the environment the config is read with.
    let text = format!(
        "{MIN}\n[[auth.issuers]]\nname = \"h\"\nissuer = \"i\"\nalgorithms = [\"HS256\"]\nhs256_secret_env = \"{var}\"\n"
    );
    let c = Config::from_toml(
        &text,
        Path::new("t.toml"),
        [(
            var.to_owned(),
            "env-s3cr3t-0123456789abcdefghijklmnop".to_owned(),
        )],
    )
    .unwrap();
    assert_eq!(
        c.auth.issuers[0].hs256_secret.as_ref().unwrap().expose(),
        "env-s3cr3t-0123456789abcdefghijklmnop"
    );
    assert!(!format!("{c:?}").contains("env-s3cr3t"));
}

#[test]
fn env_overrides_apply_before_validation() {
    let c = Config::from_toml(
        MIN,
        Path::new("t.toml"),
        [(
            "PLAYGATE__SERVER__LISTEN".to_owned(),
            "127.0.0.1:9999".to_owned(),
        )],
    )
    .unwrap();
    assert_eq!(c.server.listen.port(), 9999);
}

#[test]
fn the_shipped_configs_have_only_file_problems() {
    // Without dev keys on disk, only missing-file problems may remain; the
    // aws example reads its keys from variables the stack sets.
    let (private, public) = crate::engine::cloudfront::keys::generate(false).unwrap();
    let aws_env = vec![
        (
            "CLOUDFRONT_PRIVATE_KEY_PEM".to_owned(),
            String::from_utf8(private).unwrap(),
        ),
        (
            "CLOUDFRONT_PUBLIC_KEY_PEM".to_owned(),
            String::from_utf8(public).unwrap(),
        ),
        (
            "MEDIACONVERT_HOOK_SECRET".to_owned(),
            "hook-secret-0123456789".to_owned(),
        ),
        (
            "PLAYGATE_KEY_TOKEN_SECRET".to_owned(),
            "key-token-secret-0123456789abcdef0123".to_owned(),
        ),
    ];
    for (file, env) in [
        ("config/local.toml", vec![]),
        ("config/aws.example.toml", aws_env),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        match Config::load_with_env(&path, env) {
            Ok(_) => {}
            Err(e) => {
                for i in &e.0 {
                    assert!(i.reason.contains("cannot read"), "{file}: {i}");
                }
            }
        }
    }
}

#[test]
fn cookie_delivery_needs_a_domain_both_hosts_share() {
    let check = |cdn: &str, domain: &str| {
        let text = format!(
            "[server]\npublic_url = \"https://play.example.com\"\n[cdn]\nbase_url = \"{cdn}\"\n{domain}\n[tiers.free]\ndelivery = \"cookies\"\n{MIN}"
        );
        load(&text).err().map(|e| {
            e.0.iter()
                .map(|i| format!("{}: {}", i.path, i.reason))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let e = check("https://cdn.other.net", "").unwrap();
    assert!(e.starts_with("cdn.cookie_domain"), "{e}");
    let e = check(
        "https://d111.cloudfront.net",
        "cookie_domain = \"cloudfront.net\"",
    )
    .unwrap();
    assert!(e.contains("no site can set cookies"), "{e}");
    let e = check("https://cdn.example.com", "cookie_domain = \"other.com\"").unwrap();
    assert!(e.contains("must contain both"), "{e}");
    assert_eq!(
        check("https://cdn.example.com", "cookie_domain = \"example.com\""),
        None
    );
    assert_eq!(check("https://play.example.com/cdn", ""), None, "one host");
}

#[test]
fn the_reconciler_has_a_floor() {
    let c = load(MIN).unwrap();
    assert_eq!(c.pipeline.reconcile_after, Duration::from_secs(600));
    assert_eq!(c.pipeline.reconcile_every, Duration::from_secs(60));
    let errs = load(&format!("[pipeline]\nreconcile_every = \"10ms\"\n{MIN}"))
        .unwrap_err()
        .0;
    let paths: Vec<&str> = errs.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["pipeline.reconcile_every"]);
}
