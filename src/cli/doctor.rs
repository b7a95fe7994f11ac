//! `playgate doctor`: checks that the live AWS setup is what playgate
//! assumes, and says how to fix what is not. It reads the CloudFront
//! distribution as CloudFront routes requests (first matching path
//! pattern in order, else the default behaviour) for a sample playlist,
//! MPD, segment and gateway path, then checks each behaviour's TTLs,
//! trusted key group and forwarding against the config. Cache and
//! origin-request policies are read through their APIs; behaviours with
//! legacy cache settings are read from their own fields.

use crate::config::Config;
use aws_sdk_cloudfront::types::{
    CacheBehavior, DefaultCacheBehavior, DistributionConfig, ForwardedValues, ItemSelection,
    OriginRequestPolicyCookieBehavior, OriginRequestPolicyHeaderBehavior,
    OriginRequestPolicyQueryStringBehavior, TrustedKeyGroups,
};

/// CloudFront's managed "CachingDisabled" cache policy.
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// What to change when not ok.
    pub fix: String,
}

fn pass(name: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// The report as a table: `✓`/`✗`, the check, what was found, the fix.
pub fn render(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let pad = " ".repeat(width - c.name.chars().count());
        out.push_str(&format!(
            "{} {}{pad}  {}\n",
            if c.ok { "✓" } else { "✗" },
            c.name,
            c.detail
        ));
        if !c.ok {
            out.push_str(&format!("  {}  fix: {}\n", " ".repeat(width), c.fix));
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&if failed == 0 {
        format!("{} checks passed\n", checks.len())
    } else {
        format!("{failed} of {} checks failed\n", checks.len())
    });
    out
}

/// CloudFront's path-pattern match: `*` any run of characters, `?` one,
/// case-sensitive, against the path with its leading `/`.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let p: Vec<char> = if pattern.starts_with('/') {
        pattern.chars().collect()
    } else {
        std::iter::once('/').chain(pattern.chars()).collect()
    };
    let s: Vec<char> = path.chars().collect();
    go(&p, &s)
}

/// A cache behaviour, default or not, in one shape.
#[derive(Debug, Clone)]
struct Behaviour {
    pattern: String,
    origin: String,
    key_groups: Option<TrustedKeyGroups>,
    cache_policy: Option<String>,
    origin_request_policy: Option<String>,
    forwarded: Option<ForwardedValues>,
    ttl: (i64, i64, i64),
    methods: Vec<String>,
}

/// Both kinds of behaviour have the same fields but no shared type. Legacy
/// cache settings are deprecated in the API, and still what older
/// distributions (and the moto server) have: read them when there is no
/// policy.
macro_rules! behaviour_from {
    ($ty:ty, $pattern:expr) => {
        #[allow(deprecated)]
        impl From<&$ty> for Behaviour {
            fn from(b: &$ty) -> Self {
                let pattern: fn(&$ty) -> String = $pattern;
                Behaviour {
                    pattern: pattern(b),
                    origin: b.target_origin_id.clone(),
                    key_groups: b.trusted_key_groups.clone(),
                    cache_policy: b.cache_policy_id.clone().filter(|s| !s.is_empty()),
                    origin_request_policy: b
                        .origin_request_policy_id
                        .clone()
                        .filter(|s| !s.is_empty()),
                    forwarded: b.forwarded_values.clone(),
                    ttl: (
                        b.min_ttl.unwrap_or(0),
                        b.default_ttl.unwrap_or(0),
                        b.max_ttl.unwrap_or(0),
                    ),
                    methods: b
                        .allowed_methods
                        .as_ref()
                        .map(|m| m.items.iter().map(|x| x.as_str().to_owned()).collect())
                        .unwrap_or_default(),
                }
            }
        }
    };
}

behaviour_from!(CacheBehavior, |b| b.path_pattern.clone());
behaviour_from!(DefaultCacheBehavior, |_| "default (*)".to_owned());

/// The behaviour CloudFront uses for `path`.
fn route(d: &DistributionConfig, path: &str) -> Option<Behaviour> {
    d.cache_behaviors
        .as_ref()
        .and_then(|c| c.items.as_ref())
        .into_iter()
        .flatten()
        .find(|b| pattern_matches(&b.path_pattern, path))
        .map(Behaviour::from)
        .or_else(|| d.default_cache_behavior.as_ref().map(Behaviour::from))
}

struct Doctor<'a> {
    config: &'a Config,
    cloudfront: aws_sdk_cloudfront::Client,
    s3: aws_sdk_s3::Client,
}

impl Doctor<'_> {
    /// (min, default, max) TTL of a behaviour, from its cache policy or
    /// its legacy settings.
    async fn ttls(&self, b: &Behaviour) -> Result<(i64, i64, i64), String> {
        let Some(id) = &b.cache_policy else {
            return Ok(b.ttl);
        };
        if id == CACHING_DISABLED {
            return Ok((0, 0, 0));
        }
        let p = self
            .cloudfront
            .get_cache_policy()
            .id(id)
            .send()
            .await
            .map_err(|e| format!("cache policy {id}: {}", crate::backends::aws::said(&e)))?;
        let c = p
            .cache_policy
            .and_then(|p| p.cache_policy_config)
            .ok_or_else(|| format!("cache policy {id} has no configuration"))?;
        Ok((
            c.min_ttl,
            c.default_ttl.unwrap_or(86_400),
            c.max_ttl.unwrap_or(31_536_000),
        ))
    }

    async fn ttl_check(&self, name: &str, path: &str, b: &Behaviour, want: u64) -> Check {
        let want = i64::try_from(want).unwrap_or(i64::MAX);
        match self.ttls(b).await {
            Err(e) => fail(name, e, "give the behaviour a readable cache policy"),
            Ok((min, default, max)) if default == want && max == want && min <= want => pass(
                name,
                format!("{path} → {}: DefaultTTL = MaxTTL = {want}s", b.pattern),
            ),
            Ok((min, default, max)) => {
                let what = if b.cache_policy.is_some() {
                    format!("{}'s cache policy", b.pattern)
                } else {
                    format!("{} (legacy cache settings)", b.pattern)
                };
                fail(
                    name,
                    format!(
                        "{path} → {}: MinTTL {min}, DefaultTTL {default}, MaxTTL {max}; playgate expects {want}s",
                        b.pattern
                    ),
                    format!("set DefaultTTL and MaxTTL of {what} to {want} (MinTTL at most that)"),
                )
            }
        }
    }

    /// The behaviour only opens to signatures from a key group that holds
    /// `signing.active`, whose public key is ours.
    async fn key_check(&self, name: &str, path: &str, b: &Behaviour) -> Check {
        let active = self.config.signing.active.as_str();
        let groups: Vec<String> = b
            .key_groups
            .as_ref()
            .filter(|g| g.enabled)
            .and_then(|g| g.items.clone())
            .unwrap_or_default();
        if groups.is_empty() {
            return fail(
                name,
                format!(
                    "{path} → {}: not restricted; anyone can fetch it",
                    b.pattern
                ),
                format!("add a trusted key group holding {active} to {}", b.pattern),
            );
        }
        for g in &groups {
            let Ok(got) = self.cloudfront.get_key_group().id(g).send().await else {
                continue;
            };
            let items = got
                .key_group
                .and_then(|k| k.key_group_config)
                .map(|c| c.items)
                .unwrap_or_default();
            if items.iter().any(|k| k == active) {
                return match self.public_key_matches(active).await {
                    Ok(()) => pass(
                        name,
                        format!(
                            "{path} → {}: key group {g} holds {active}, and its public key is ours",
                            b.pattern
                        ),
                    ),
                    Err(why) => fail(
                        name,
                        format!("{path} → {}: {why}", b.pattern),
                        "upload the public half of signing.active's private key to CloudFront and use that key's id (see deploy/README.md, key rotation)",
                    ),
                };
            }
        }
        fail(
            name,
            format!(
                "{path} → {}: no trusted key group ({}) holds {active}",
                b.pattern,
                groups.join(", ")
            ),
            format!(
                "add public key {active} to the key group (signing.active must be in it before playgate signs with it)"
            ),
        )
    }

    async fn public_key_matches(&self, id: &str) -> Result<(), String> {
        let got = self
            .cloudfront
            .get_public_key()
            .id(id)
            .send()
            .await
            .map_err(|e| format!("public key {id}: {}", crate::backends::aws::said(&e)))?;
        let theirs = got
            .public_key
            .and_then(|k| k.public_key_config)
            .map(|c| c.encoded_key)
            .ok_or_else(|| format!("public key {id} has no key"))?;
        let theirs = openssl::pkey::PKey::public_key_from_pem(theirs.trim().as_bytes())
            .and_then(|k| k.public_key_to_der())
            .map_err(|_| format!("CloudFront's key {id} is not a PEM public key"))?;
        let ours = self
            .config
            .signing
            .keys
            .iter()
            .find(|k| k.id == self.config.signing.active)
            .and_then(|k| k.private_key.as_ref())
            .ok_or("signing.active has no private key")?;
        let pem = ours
            .bytes()
            .map_err(|e| format!("cannot read {}: {e}", ours.describe()))?;
        let ours = openssl::pkey::PKey::private_key_from_pem(&pem)
            .and_then(|k| k.public_key_to_der())
            .map_err(|_| "signing.active's private key is not a PEM private key".to_owned())?;
        if ours == theirs {
            Ok(())
        } else {
            Err(format!(
                "CloudFront's public key {id} is not the public half of our private key"
            ))
        }
    }

    /// `/v1/*` reaches the gateway uncached with what it reads: every
    /// viewer header (Authorization), cookies, the query, the viewer's
    /// country, and POST.
    async fn gateway_check(&self, b: &Behaviour) -> Check {
        let name = "gateway behaviour";
        let mut missing = Vec::new();
        match self.ttls(b).await {
            Ok((0, 0, 0)) => {}
            Ok(t) => missing.push(format!("caching off (TTLs are {t:?})")),
            Err(e) => missing.push(e),
        }
        if !b.methods.iter().any(|m| m == "POST") {
            missing.push("POST".into());
        }
        if let Some(id) = &b.origin_request_policy {
            match self
                .cloudfront
                .get_origin_request_policy()
                .id(id)
                .send()
                .await
            {
                Err(e) => missing.push(format!(
                    "origin request policy {id}: {}",
                    crate::backends::aws::said(&e)
                )),
                Ok(p) => {
                    let c = p
                        .origin_request_policy
                        .and_then(|p| p.origin_request_policy_config);
                    let headers = c.as_ref().and_then(|c| c.headers_config.as_ref());
                    let country = headers
                        .and_then(|h| h.headers.as_ref())
                        .and_then(|h| h.items.as_ref())
                        .is_some_and(|i| {
                            i.iter()
                                .any(|h| h.eq_ignore_ascii_case("CloudFront-Viewer-Country"))
                        });
                    if !headers.is_some_and(|h| {
                        h.header_behavior == OriginRequestPolicyHeaderBehavior::AllViewerAndWhitelistCloudFront
                    }) || !country
                    {
                        missing.push("all viewer headers plus CloudFront-Viewer-Country".into());
                    }
                    if !c
                        .as_ref()
                        .and_then(|c| c.cookies_config.as_ref())
                        .is_some_and(|k| {
                            k.cookie_behavior == OriginRequestPolicyCookieBehavior::All
                        })
                    {
                        missing.push("all cookies".into());
                    }
                    if !c
                        .as_ref()
                        .and_then(|c| c.query_strings_config.as_ref())
                        .is_some_and(|q| {
                            q.query_string_behavior == OriginRequestPolicyQueryStringBehavior::All
                        })
                    {
                        missing.push("the whole query string".into());
                    }
                }
            }
        } else {
            let f = b.forwarded.as_ref();
            let headers: Vec<String> = f
                .and_then(|f| f.headers.as_ref())
                .and_then(|h| h.items.clone())
                .unwrap_or_default();
            let has = |h: &str| {
                headers
                    .iter()
                    .any(|x| x == "*" || x.eq_ignore_ascii_case(h))
            };
            if !has("Authorization") {
                missing.push("the Authorization header".into());
            }
            if !headers
                .iter()
                .any(|x| x.eq_ignore_ascii_case("CloudFront-Viewer-Country"))
            {
                missing.push("CloudFront-Viewer-Country".into());
            }
            if f.and_then(|f| f.cookies.as_ref())
                .is_none_or(|c| c.forward != ItemSelection::All)
            {
                missing.push("all cookies".into());
            }
            if !f.is_some_and(|f| f.query_string) {
                missing.push("the whole query string".into());
            }
        }
        if missing.is_empty() {
            pass(
                name,
                format!(
                    "/v1/… → {}: uncached; forwards headers, cookies, query, country; allows POST",
                    b.pattern
                ),
            )
        } else {
            fail(
                name,
                format!("/v1/… → {}: missing {}", b.pattern, missing.join(", ")),
                "use the managed CachingDisabled cache policy and an origin request policy with allViewerAndWhitelistCloudFront [CloudFront-Viewer-Country], all cookies and all query strings, and allow all methods (deploy/cloudformation/playgate.yaml does)",
            )
        }
    }
}

/// Runs every check against the live setup `config` names.
pub async fn run(config: &Config) -> Result<Vec<Check>, String> {
    let aws = config
        .aws
        .as_ref()
        .ok_or("doctor checks mode aws: the config has no [aws] section")?;
    let sdk = crate::backends::aws::sdk_config(aws).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(aws.endpoint_url.is_some())
            .build(),
    );
    let d = Doctor {
        config,
        cloudfront: aws_sdk_cloudfront::Client::new(&sdk),
        s3,
    };
    let mut checks = Vec::new();

    checks.push(match d.s3.head_bucket().bucket(&aws.output_bucket).send().await {
        Ok(_) => pass("output bucket", format!("{} is reachable", aws.output_bucket)),
        Err(e) => fail(
            "output bucket",
            format!("{}: {}", aws.output_bucket, crate::backends::aws::said(&e)),
            "set aws.output_bucket to the stack's OutputBucketName and give the task role access to it",
        ),
    });
    let role_ok = aws.mediaconvert_role_arn.starts_with("arn:aws")
        && aws.mediaconvert_role_arn.contains(":iam::")
        && aws.mediaconvert_role_arn.contains(":role/");
    checks.push(if role_ok {
        pass("MediaConvert role", aws.mediaconvert_role_arn.clone())
    } else {
        fail(
            "MediaConvert role",
            format!("{:?} is not an IAM role ARN", aws.mediaconvert_role_arn),
            "set aws.mediaconvert_role_arn to the stack's MediaConvertRoleArn output",
        )
    });

    let id = &aws.cloudfront_distribution_id;
    let dist = match d.cloudfront.get_distribution().id(id).send().await {
        Ok(out) => out.distribution.and_then(|x| x.distribution_config),
        Err(e) => {
            checks.push(fail(
                "distribution",
                format!("{id}: {}", crate::backends::aws::said(&e)),
                "set aws.cloudfront_distribution_id to the stack's DistributionId output",
            ));
            return Ok(checks);
        }
    };
    let Some(dist) = dist else {
        checks.push(fail(
            "distribution",
            format!("{id} has no configuration"),
            "recreate the distribution from deploy/",
        ));
        return Ok(checks);
    };
    checks.push(pass("distribution", format!("{id} exists")));

    let sample = "/assets/sample/v1";
    let playlist_age = config.cdn.playlist_max_age.as_secs();
    let playlist = format!("{sample}/hls/360p/index.m3u8");
    let mpd = format!("{sample}/dash/manifest.mpd");
    let segment = format!("{sample}/hls/360p/seg_001.m4s");
    for (name, path, want) in [
        ("playlist TTL", &playlist, playlist_age),
        ("MPD TTL", &mpd, playlist_age),
        (
            "segment TTL",
            &segment,
            crate::backends::cdn::SEGMENT_MAX_AGE,
        ),
    ] {
        match route(&dist, path) {
            Some(b) => checks.push(d.ttl_check(name, path, &b, want).await),
            None => checks.push(fail(
                name,
                "no behaviour",
                "add the behaviours deploy/ describes",
            )),
        }
    }
    for (name, path) in [
        ("playlist signing", &playlist),
        ("segment signing", &segment),
    ] {
        if let Some(b) = route(&dist, path) {
            checks.push(d.key_check(name, path, &b).await);
        }
    }
    if let Some(b) = route(&dist, &segment) {
        let origin = dist
            .origins
            .as_ref()
            .and_then(|o| o.items.iter().find(|o| o.id == b.origin))
            .map(|o| o.domain_name.clone())
            .unwrap_or_default();
        let bucket = format!("{}.s3", aws.output_bucket);
        checks.push(if origin.starts_with(&bucket) {
            pass("asset origin", format!("/assets/* → {origin}"))
        } else {
            fail(
                "asset origin",
                format!(
                    "/assets/* → origin {:?} ({origin}), not {}",
                    b.origin, aws.output_bucket
                ),
                "point the /assets/* behaviours at the output bucket's origin",
            )
        });
    }
    let cdn_host = url::Url::parse(&config.cdn.base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let gateway_host = url::Url::parse(&config.server.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if cdn_host.is_some() && cdn_host == gateway_host {
        match route(&dist, "/v1/play/sample/master.m3u8") {
            Some(b) => checks.push(d.gateway_check(&b).await),
            None => checks.push(fail(
                "gateway behaviour",
                "no behaviour for /v1/*",
                "add a /v1/* behaviour to the gateway origin",
            )),
        }
    } else {
        checks.push(pass(
            "gateway behaviour",
            format!(
                "players reach the gateway at {} directly, not through the distribution",
                config.server.public_url
            ),
        ));
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match_as_cloudfront_does() {
        assert!(pattern_matches(
            "/assets/*.m3u8",
            "/assets/a/v1/hls/360p/index.m3u8"
        ));
        assert!(pattern_matches(
            "assets/*.m3u8",
            "/assets/a/v1/hls/master.m3u8"
        ));
        assert!(!pattern_matches(
            "/assets/*.m3u8",
            "/assets/a/v1/hls/360p/seg.m4s"
        ));
        assert!(pattern_matches(
            "/assets/*",
            "/assets/a/v1/hls/360p/seg.m4s"
        ));
        assert!(pattern_matches("/v1/*", "/v1/play/a/master.m3u8"));
        assert!(!pattern_matches("/v1/*", "/assets/v1/x"));
        assert!(pattern_matches("/img/?.png", "/img/a.png"));
        assert!(!pattern_matches("/img/?.png", "/img/ab.png"));
        assert!(!pattern_matches("/Assets/*", "/assets/x"), "case-sensitive");
    }

    #[test]
    fn the_report_says_what_to_fix() {
        let r = render(&[
            pass("distribution", "E1 exists"),
            fail("playlist TTL", "DefaultTTL 300", "set it to 60"),
        ]);
        assert!(r.contains("✓ distribution"), "{r}");
        assert!(r.contains("✗ playlist TTL  DefaultTTL 300"), "{r}");
        assert!(r.contains("fix: set it to 60"), "{r}");
        assert!(r.ends_with("1 of 2 checks failed\n"), "{r}");
    }
}
