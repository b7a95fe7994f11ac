//! `deploy/`: the CloudFormation template agrees with the config and the
//! code it deploys, and `playgate doctor` tells a good distribution from a
//! broken one (moto server, plus a loopback stand-in for the cache and
//! origin-request policy APIs moto lacks).

use crate::cloudfront_policies::PolicyProxy;
use serde_json::Value;
use std::path::Path;

const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/cloudformation/playgate.yaml"
);

/// The template as JSON (`!Ref` → `{"Ref": …}`), decoded by cfn-lint's own
/// loader (scripts/ensure-deps.sh installs cfn-lint).
fn template() -> Value {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\nassert not m, m\nprint(json.dumps(t))",
            TEMPLATE,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decoding the template (is cfn-lint installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The environment the stack gives the gateway for `config/aws.example.toml`:
/// the keys and the hook secret, by the names the example reads.
fn example_env() -> Vec<(String, String)> {
    let (private, public) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    vec![
        (
            "CLOUDFRONT_PRIVATE_KEY_PEM".into(),
            String::from_utf8(private).unwrap(),
        ),
        (
            "CLOUDFRONT_PUBLIC_KEY_PEM".into(),
            String::from_utf8(public).unwrap(),
        ),
        (
            "MEDIACONVERT_HOOK_SECRET".into(),
            "hook-secret-0123456789".into(),
        ),
        (
            "PLAYGATE_KEY_TOKEN_SECRET".into(),
            "key-token-secret-0123456789abcdef0123".into(),
        ),
    ]
}

/// `config/aws.example.toml` loaded for real, as the task definition passes
/// it: the whole file in `PLAYGATE_CONFIG` (`--config env:PLAYGATE_CONFIG`)
/// beside the secrets it names.
fn example_config() -> playgate::config::Config {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/aws.example.toml"
    ))
    .unwrap();
    let mut env = example_env();
    env.push(("PLAYGATE_CONFIG".into(), text));
    playgate::config::Config::load_with_env(Path::new("env:PLAYGATE_CONFIG"), env)
        .unwrap_or_else(|e| panic!("aws.example.toml: {:?}", e.0))
}

/// A parameter's default, for `{"Ref": name}`.
fn resolve<'a>(t: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("Ref").and_then(Value::as_str) {
        Some(p) => &t["Parameters"][p]["Default"],
        None => v,
    }
}

fn sub(t: &Value, v: &Value) -> String {
    let mut s = v["Fn::Sub"].as_str().unwrap_or_default().to_owned();
    for (name, p) in t["Parameters"].as_object().unwrap() {
        let d = match &p["Default"] {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        s = s.replace(&format!("${{{name}}}"), &d);
    }
    s
}

#[test]
fn the_template_matches_the_config_and_the_code() {
    let config = example_config();
    let aws = config.aws.clone().unwrap();
    let t = template();
    let r = &t["Resources"];
    let num = |v: &Value| resolve(&t, v).as_u64().unwrap();
    let playlist = config.cdn.playlist_max_age.as_secs();

    let pc = &r["PlaylistCachePolicy"]["Properties"]["CachePolicyConfig"];
    assert_eq!(
        num(&pc["DefaultTTL"]),
        playlist,
        "playlist DefaultTTL = cdn.playlist_max_age"
    );
    assert_eq!(num(&pc["MaxTTL"]), playlist);
    let sc = &r["SegmentCachePolicy"]["Properties"]["CachePolicyConfig"];
    assert_eq!(
        num(&sc["DefaultTTL"]),
        playgate::backends::cdn::SEGMENT_MAX_AGE
    );
    assert_eq!(num(&sc["MinTTL"]), playgate::backends::cdn::SEGMENT_MAX_AGE);

    // The Cache-Control CloudFront sends is what the local edge sends.
    let header = |policy: &str| {
        let items =
            &r[policy]["Properties"]["ResponseHeadersPolicyConfig"]["CustomHeadersConfig"]["Items"];
        let h = items
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["Header"] == "Cache-Control")
            .unwrap();
        sub(&t, &h["Value"])
    };
    assert_eq!(
        header("PlaylistHeaders"),
        playgate::backends::cdn::cache_control("a/v1/hls/360p/index.m3u8", playlist)
    );
    assert_eq!(
        header("SegmentHeaders"),
        playgate::backends::cdn::cache_control("a/v1/hls/360p/seg_001.m4s", playlist)
    );

    // Behaviours: in order, as CloudFront routes.
    let d = &r["Distribution"]["Properties"]["DistributionConfig"];
    let behaviours = d["CacheBehaviors"].as_array().unwrap();
    let route = |path: &str| {
        behaviours
            .iter()
            .find(|b| {
                playgate::cli::doctor::pattern_matches(b["PathPattern"].as_str().unwrap(), path)
            })
            .unwrap_or(&d["DefaultCacheBehavior"])
    };
    let policy = |b: &Value| b["CachePolicyId"]["Ref"].as_str().unwrap_or("").to_owned();
    for p in [
        "/assets/x/v1/hls/360p/index.m3u8",
        "/assets/x/v1/hls/master.m3u8",
        "/assets/x/v1/dash/manifest.mpd",
    ] {
        assert_eq!(policy(route(p)), "PlaylistCachePolicy", "{p}");
    }
    for p in [
        "/assets/x/v1/hls/360p/seg_001.m4s",
        "/assets/x/v1/hls/360p/init_0.mp4",
        "/assets/x/v1/thumbs/00001.jpg",
    ] {
        assert_eq!(policy(route(p)), "SegmentCachePolicy", "{p}");
    }
    for b in behaviours
        .iter()
        .filter(|b| b["PathPattern"].as_str().unwrap().starts_with("/assets/"))
    {
        assert_eq!(b["TargetOriginId"], "outputs");
        assert_eq!(b["TrustedKeyGroups"][0]["Ref"], "SigningKeyGroup", "{b}");
    }
    let gateway = route("/v1/play/x/master.m3u8");
    assert_eq!(gateway["TargetOriginId"], "gateway");
    assert_eq!(
        gateway["CachePolicyId"],
        playgate::cli::doctor::CACHING_DISABLED
    );
    let orp = &r["GatewayOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"];
    assert_eq!(
        orp["HeadersConfig"]["HeaderBehavior"],
        "allViewerAndWhitelistCloudFront"
    );
    assert_eq!(
        orp["HeadersConfig"]["Headers"][0],
        "CloudFront-Viewer-Country"
    );
    assert_eq!(orp["CookiesConfig"]["CookieBehavior"], "all");

    // Names the code relies on.
    let table = sub(&t, &r["Records"]["Properties"]["TableName"]);
    assert_eq!(table, format!("{}-records", aws.dynamodb_table_prefix));
    let rule = &r["JobEventsRule"]["Properties"]["EventPattern"];
    assert_eq!(
        rule["detail"]["userMetadata"]["app"][0],
        playgate::pipeline::mediaconvert::APP
    );
    assert_eq!(rule["detail-type"][0], "MediaConvert Job State Change");
    let key =
        &r["HookConnection"]["Properties"]["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"];
    assert_eq!(key, playgate::http::hooks::SECRET_HEADER);
    // Uploaded originals are refused at the edge, as the local edge does.
    let statements = r["OutputBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a Deny statement in the output bucket policy");
    assert_eq!(deny["Action"], "s3:GetObject");
    assert_eq!(deny["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert!(
        sub(&t, &deny["Resource"]).ends_with("/assets/*/source/*"),
        "{deny}"
    );
    // The task role allows every MediaConvert call the client makes, and
    // what moving a flat output needs (CopyObject: GetObject on the source
    // key, PutObject on the new one; DeleteObject for the old files).
    let actions: Vec<String> =
        r["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|st| match &st["Action"] {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                Value::String(a) => vec![a.clone()],
                _ => vec![],
            })
            .collect();
    for call in [
        "mediaconvert:CreateJob",
        "mediaconvert:GetJob",
        "mediaconvert:CancelJob",
        "mediaconvert:ListJobs",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ] {
        assert!(
            actions.iter().any(|a| a == call),
            "the task role allows {call}"
        );
    }
    // Every variable the example config reads is one the task defines.
    let gateway = &r["TaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    let defined: Vec<String> = ["Environment", "Secrets"]
        .iter()
        .flat_map(|k| gateway[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["Name"].as_str().map(str::to_owned))
        .collect();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/aws.example.toml"
    ))
    .unwrap();
    let read: Vec<&str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once("_env = \""))
        .filter_map(|(_, rest)| rest.split('"').next())
        .collect();
    assert!(read.len() >= 3, "{read:?}");
    for var in read.iter().chain(&["PLAYGATE_CONFIG"]) {
        assert!(
            defined.iter().any(|d| d == var),
            "the task defines {var}: {defined:?}"
        );
    }
    assert_eq!(
        gateway["Command"],
        serde_json::json!(["serve", "--config", "env:PLAYGATE_CONFIG"])
    );
}

/// What ECS does with a task definition's containers. Its bind-mount guide
/// lists "to provide an empty data volume", and: "To expose files from a
/// Dockerfile to a data volume when a task is run, the Amazon ECS data plane
/// looks for a VOLUME directive. If the absolute path that's specified in
/// the VOLUME directive is the same as the containerPath that's specified
/// in the task definition, the data in the VOLUME directive path is copied
/// to the data volume." Otherwise the volume is a new, empty directory
/// owned by root (0755). A container runs as its `User`, else the image's
/// `USER`; with `ReadonlyRootFilesystem` only volumes are writable; a
/// container that depends on another's `SUCCESS`/`COMPLETE` starts only
/// once that one has exited 0. For every container: what it writes must be
/// writable by the user it runs as, and nothing may depend on a container
/// that cannot succeed.
#[test]
fn every_container_can_write_what_it_writes() {
    let t = template();
    let task = &t["Resources"]["TaskDefinition"]["Properties"];
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Dockerfile")).unwrap();
    let image_user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .map(str::trim)
        .unwrap_or("0")
        .to_owned();
    let image_volumes: Vec<String> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("VOLUME "))
        .map(str::to_owned)
        .collect();
    let volumes: Vec<&str> = task["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["Name"].as_str())
        .collect();
    let containers = task["ContainerDefinitions"].as_array().unwrap();
    let can_succeed = |c: &Value| -> Result<(), String> {
        let name = c["Name"].as_str().unwrap_or("?");
        let user = c["User"].as_str().unwrap_or(&image_user);
        let root_user = user == "0" || user == "root";
        let writes = writes_of(c)?;
        for path in writes {
            let mount = c["MountPoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| path.starts_with(m["ContainerPath"].as_str().unwrap_or("\0")))
                .max_by_key(|m| m["ContainerPath"].as_str().unwrap_or("").len());
            let writable = match mount {
                Some(m) => {
                    let vol = m["SourceVolume"].as_str().unwrap_or("");
                    let at = m["ContainerPath"].as_str().unwrap_or("");
                    !m["ReadOnly"].as_bool().unwrap_or(false)
                        && volumes.contains(&vol)
                        // An empty bind volume is root's, 0755.
                        && (root_user || image_volumes.iter().any(|v| v.trim_matches(['[', ']', '"', ' ']) == at))
                }
                None => !c["ReadonlyRootFilesystem"].as_bool().unwrap_or(false) && root_user,
            };
            if !writable {
                return Err(format!("{name} runs as {user} and cannot write {path}"));
            }
        }
        Ok(())
    };
    for c in containers {
        can_succeed(c).unwrap();
        for dep in c["DependsOn"].as_array().into_iter().flatten() {
            let other = dep["ContainerName"].as_str().unwrap_or("");
            let condition = dep["Condition"].as_str().unwrap_or("");
            if matches!(condition, "SUCCESS" | "COMPLETE") {
                let o = containers
                    .iter()
                    .find(|x| x["Name"] == other)
                    .unwrap_or_else(|| panic!("no container {other}"));
                if let Err(why) = can_succeed(o) {
                    panic!(
                        "{} waits for {other} to succeed, which it cannot: {why}",
                        c["Name"]
                    );
                }
            }
        }
    }
}

/// The files a container writes: playgate's from its config (`Config::writes`,
/// none in mode aws), a shell's from its redirections.
fn writes_of(c: &Value) -> Result<Vec<String>, String> {
    let command: Vec<&str> = c["Command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let entry: Vec<&str> = c["EntryPoint"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if entry.is_empty() && command.first() == Some(&"serve") {
        return Ok(example_config()
            .writes()
            .iter()
            .map(|p| p.display().to_string())
            .collect());
    }
    if entry.first().is_some_and(|e| e.ends_with("sh")) {
        let script = command.join(" ");
        return Ok(script
            .split('>')
            .skip(1)
            .filter_map(|rest| rest.trim_start_matches('>').split_whitespace().next())
            .map(str::to_owned)
            .collect());
    }
    Err(format!("cannot tell what {} writes", c["Name"]))
}

struct Setup {
    proxy: PolicyProxy,
    cf: aws_sdk_cloudfront::Client,
}

impl Setup {
    async fn public_key(&self, name: &str, pem: &[u8]) -> String {
        use aws_sdk_cloudfront::types::PublicKeyConfig;
        self.cf
            .create_public_key()
            .public_key_config(
                PublicKeyConfig::builder()
                    .caller_reference(name)
                    .name(name)
                    .encoded_key(String::from_utf8(pem.to_vec()).unwrap())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .public_key
            .unwrap()
            .id
    }

    async fn key_group(&self, name: &str, key: &str) -> String {
        use aws_sdk_cloudfront::types::KeyGroupConfig;
        self.cf
            .create_key_group()
            .key_group_config(
                KeyGroupConfig::builder()
                    .name(name)
                    .items(key)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .key_group
            .unwrap()
            .id
    }

    async fn cache_policy(&self, name: &str, ttl: i64) -> String {
        use aws_sdk_cloudfront::types::*;
        let params = ParametersInCacheKeyAndForwardedToOrigin::builder()
            .enable_accept_encoding_gzip(true)
            .headers_config(
                CachePolicyHeadersConfig::builder()
                    .header_behavior(CachePolicyHeaderBehavior::None)
                    .build()
                    .unwrap(),
            )
            .cookies_config(
                CachePolicyCookiesConfig::builder()
                    .cookie_behavior(CachePolicyCookieBehavior::None)
                    .build()
                    .unwrap(),
            )
            .query_strings_config(
                CachePolicyQueryStringsConfig::builder()
                    .query_string_behavior(CachePolicyQueryStringBehavior::None)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        self.cf
            .create_cache_policy()
            .cache_policy_config(
                CachePolicyConfig::builder()
                    .name(name)
                    .min_ttl(0)
                    .default_ttl(ttl)
                    .max_ttl(ttl)
                    .parameters_in_cache_key_and_forwarded_to_origin(params)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .cache_policy
            .unwrap()
            .id
    }

    async fn gateway_policy(&self) -> String {
        use aws_sdk_cloudfront::types::*;
        self.cf
            .create_origin_request_policy()
            .origin_request_policy_config(
                OriginRequestPolicyConfig::builder()
                    .name("gateway")
                    .headers_config(
                        OriginRequestPolicyHeadersConfig::builder()
                            .header_behavior(
                                OriginRequestPolicyHeaderBehavior::AllViewerAndWhitelistCloudFront,
                            )
                            .headers(
                                Headers::builder()
                                    .quantity(1)
                                    .items("CloudFront-Viewer-Country")
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .cookies_config(
                        OriginRequestPolicyCookiesConfig::builder()
                            .cookie_behavior(OriginRequestPolicyCookieBehavior::All)
                            .build()
                            .unwrap(),
                    )
                    .query_strings_config(
                        OriginRequestPolicyQueryStringsConfig::builder()
                            .query_string_behavior(OriginRequestPolicyQueryStringBehavior::All)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .origin_request_policy
            .unwrap()
            .id
    }
}

/// What one behaviour gets: policies (as the template), or legacy TTLs.
enum Caching {
    Policy(String),
    Legacy(i64),
}

#[allow(deprecated)]
fn behaviour(
    pattern: &str,
    origin: &str,
    caching: &Caching,
    key_group: Option<&str>,
    request_policy: Option<&str>,
) -> aws_sdk_cloudfront::types::CacheBehavior {
    use aws_sdk_cloudfront::types::*;
    let mut b = CacheBehavior::builder()
        .path_pattern(pattern)
        .target_origin_id(origin)
        .viewer_protocol_policy(ViewerProtocolPolicy::HttpsOnly);
    match caching {
        Caching::Policy(id) => b = b.cache_policy_id(id),
        Caching::Legacy(ttl) => {
            b = b
                .min_ttl(0)
                .default_ttl(*ttl)
                .max_ttl(*ttl)
                .forwarded_values(
                    ForwardedValues::builder()
                        .query_string(false)
                        .cookies(
                            CookiePreference::builder()
                                .forward(ItemSelection::None)
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
        }
    }
    if let Some(g) = key_group {
        b = b.trusted_key_groups(
            TrustedKeyGroups::builder()
                .enabled(true)
                .quantity(1)
                .items(g)
                .build()
                .unwrap(),
        );
    }
    if let Some(p) = request_policy {
        let methods = [
            Method::Get,
            Method::Head,
            Method::Options,
            Method::Put,
            Method::Patch,
            Method::Post,
            Method::Delete,
        ];
        b = b.origin_request_policy_id(p).allowed_methods(
            AllowedMethods::builder()
                .quantity(methods.len() as i32)
                .set_items(Some(methods.to_vec()))
                .build()
                .unwrap(),
        );
    }
    b.build().unwrap()
}

async fn distribution(
    s: &Setup,
    name: &str,
    playlists: Caching,
    segments: Caching,
    key_group: &str,
    gateway_policy: &str,
) -> String {
    use aws_sdk_cloudfront::types::*;
    let origins = [
        Origin::builder()
            .id("outputs")
            .domain_name("pgdoctor-out.s3.us-east-1.amazonaws.com")
            .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
            .build()
            .unwrap(),
        Origin::builder()
            .id("gateway")
            .domain_name("origin.example.com")
            .custom_origin_config(
                CustomOriginConfig::builder()
                    .http_port(80)
                    .https_port(443)
                    .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    ];
    let items = vec![
        behaviour(
            "/v1/*",
            "gateway",
            &Caching::Policy(playgate::cli::doctor::CACHING_DISABLED.into()),
            None,
            Some(gateway_policy),
        ),
        behaviour(
            "/assets/*.m3u8",
            "outputs",
            &playlists,
            Some(key_group),
            None,
        ),
        behaviour(
            "/assets/*.mpd",
            "outputs",
            &playlists,
            Some(key_group),
            None,
        ),
        behaviour("/assets/*", "outputs", &segments, Some(key_group), None),
    ];
    let config = DistributionConfig::builder()
        .caller_reference(name)
        .origins(
            Origins::builder()
                .quantity(2)
                .set_items(Some(origins.to_vec()))
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("gateway")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id(playgate::cli::doctor::CACHING_DISABLED)
                .build()
                .unwrap(),
        )
        .cache_behaviors(
            CacheBehaviors::builder()
                .quantity(items.len() as i32)
                .set_items(Some(items))
                .build()
                .unwrap(),
        )
        .comment(name)
        .enabled(true)
        .build()
        .unwrap();
    s.cf.create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap()
        .distribution
        .unwrap()
        .id
}

fn doctor_config(
    dir: &Path,
    endpoint: &str,
    distribution: &str,
    key_id: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"mode = "aws"
[server]
public_url = "https://cdn.example.com"
[cdn]
base_url = "https://cdn.example.com"
[[signing.keys]]
id = "{key_id}"
private_key_file = "{k}/cf.pem"
public_key_file = "{k}/cf_pub.pem"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
source_bucket = "pgdoctor-src"
output_bucket = "pgdoctor-out"
dynamodb_table_prefix = "pgdoctor"
mediaconvert_endpoint = "https://mediaconvert.us-east-1.amazonaws.com"
mediaconvert_role_arn = "arn:aws:iam::123456789012:role/playgate-mediaconvert"
cloudfront_distribution_id = "{distribution}"
"#,
        k = dir.display()
    );
    let path = dir.join(format!("doctor-{distribution}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn run_doctor(config: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_playgate"))
        .args(["doctor", "--config"])
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// One distribution built as the template builds it passes every check
/// (exit 0); one with a 300 s playlist TTL and a key group without our
/// key fails those two checks with their fixes (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_tells_a_good_distribution_from_a_broken_one() {
    let Some(m) = crate::moto::moto() else { return };
    let proxy = PolicyProxy::start(&m.url).await;
    let sdk = crate::moto::moto_sdk(&proxy.url).await;
    let s3 = playgate::backends::storage::s3::S3Store::new(&sdk, "pgdoctor-out", true);
    s3.create_bucket().await.unwrap();
    let s = Setup {
        cf: aws_sdk_cloudfront::Client::new(&sdk),
        proxy,
    };
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = playgate::engine::cloudfront::keys::generate(false).unwrap();
    std::fs::write(dir.path().join("cf.pem"), &private).unwrap();
    std::fs::write(dir.path().join("cf_pub.pem"), &public).unwrap();
    let (_, other_public) = playgate::engine::cloudfront::keys::generate(false).unwrap();

    let ours = s.public_key("ours", &public).await;
    let good_group = s.key_group("viewers", &ours).await;
    let playlists = s.cache_policy("playlists", 60).await;
    let segments = s.cache_policy("segments", 31_536_000).await;
    let gateway = s.gateway_policy().await;
    let good = distribution(
        &s,
        "good",
        Caching::Policy(playlists),
        Caching::Policy(segments),
        &good_group,
        &gateway,
    )
    .await;

    let other = s.public_key("other", &other_public).await;
    let bad_group = s.key_group("stale", &other).await;
    let bad = distribution(
        &s,
        "bad",
        Caching::Legacy(300),
        Caching::Legacy(31_536_000),
        &bad_group,
        &gateway,
    )
    .await;

    let (code, out) = run_doctor(&doctor_config(dir.path(), &s.proxy.url, &good, &ours));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains('✗'), "{out}");
    for line in [
        "✓ output bucket",
        "✓ MediaConvert role",
        "✓ distribution",
        "✓ playlist TTL",
        "✓ MPD TTL",
        "✓ segment TTL",
        "✓ playlist signing",
        "✓ segment signing",
        "✓ asset origin",
        "✓ gateway behaviour",
        "checks passed",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }

    let (code, out) = run_doctor(&doctor_config(dir.path(), &s.proxy.url, &bad, &ours));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ playlist TTL"), "{out}");
    assert!(out.contains("DefaultTTL 300"), "{out}");
    assert!(
        out.contains(
            "fix: set DefaultTTL and MaxTTL of /assets/*.m3u8 (legacy cache settings) to 60"
        ),
        "{out}"
    );
    assert!(out.contains("✗ playlist signing"), "{out}");
    assert!(
        out.contains(&format!("no trusted key group ({bad_group}) holds {ours}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("fix: add public key {ours} to the key group")),
        "{out}"
    );
    assert!(
        out.contains("✓ segment TTL"),
        "legacy TTLs are read too: {out}"
    );
    assert!(out.contains("checks failed"), "{out}");

    // No distribution at all: one clear failure, exit 1.
    let (code, out) = run_doctor(&doctor_config(
        dir.path(),
        &s.proxy.url,
        "ENOSUCHDIST",
        &ours,
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ distribution"), "{out}");
    assert!(
        out.contains("fix: set aws.cloudfront_distribution_id"),
        "{out}"
    );
}

/// The image runs as a non-root user, bakes in no config or keys, and its
/// health check is a command the binary has (tested just below).
#[test]
fn the_dockerfile_keeps_secrets_out_and_checks_health() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2,
        "multi-stage"
    );
    let user = lines.iter().rev().find(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    for l in lines.iter().filter(|l| l.starts_with("COPY ")) {
        assert!(l.contains("--from=build") || l.trim() == "COPY . .", "{l}");
    }
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.dockerignore")).unwrap();
    for must in ["keys", "data", "**/*.pem", "target"] {
        assert!(
            ignore.lines().any(|l| l.trim() == must),
            "{must} in .dockerignore"
        );
    }
    let health = lines
        .iter()
        .position(|l| l.starts_with("HEALTHCHECK"))
        .unwrap();
    assert!(lines[health + 1].contains(r#""health", "--url", "http://127.0.0.1:8080/healthz""#));
}

/// `playgate health`: exit 0 on a 2xx, a one-line error and exit 2 on
/// anything else or no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_command_exits_by_status() {
    let router = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/down",
            axum::routing::get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let run = |path: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_playgate"))
                .args(["health", "--url", &path])
                .output()
                .unwrap()
        })
    };
    let ok = run(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let down = run(format!("http://{addr}/down")).await.unwrap();
    assert_eq!(down.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&down.stderr).contains("503"));
    let closed = run("http://127.0.0.1:9/healthz".into()).await.unwrap();
    assert_eq!(closed.status.code(), Some(2));
}
