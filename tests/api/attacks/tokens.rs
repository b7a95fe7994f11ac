//! Viewer tokens: a configured audience is required, and a token in the
//! query never reaches the access log, however its name is encoded.

use crate::helpers::{now, problem, spawn_app};
use proptest::prelude::*;
use serde_json::json;

/// With `audience` configured, a token without `aud`, or with an `aud`
/// that is neither a string nor an array of strings, is 401.
#[tokio::test]
async fn a_missing_or_malformed_audience_is_401() {
    let app = spawn_app().await;
    let base = || json!({"iss": "playgate-dev", "sub": "v", "exp": now() + 600, "tier": "free"});
    for (what, aud) in [
        ("no aud", None),
        ("aud a number", Some(json!(123))),
        ("aud an object", Some(json!({"x": 1}))),
        ("aud null", Some(json!(null))),
        ("aud true", Some(json!(true))),
        ("aud an array of numbers", Some(json!([1, 2]))),
        ("aud an empty array", Some(json!([]))),
        ("aud someone else", Some(json!("other"))),
        ("aud mixed array", Some(json!(["other", 7]))),
    ] {
        let mut c = base();
        if let Some(a) = aud {
            c["aud"] = a;
        }
        let resp = app.get_bearer("/v1/me", &app.token(c)).await;
        let (status, body) = problem(resp).await;
        assert_eq!(status, 401, "{what}: {body}");
    }
    for aud in [json!("playgate"), json!(["other", "playgate"])] {
        let mut c = base();
        c["aud"] = aud.clone();
        let resp = app.get_bearer("/v1/me", &app.token(c)).await;
        assert_eq!(resp.status(), 200, "aud {aud}");
    }
    let mut no_exp = base();
    no_exp["aud"] = json!("playgate");
    no_exp.as_object_mut().unwrap().remove("exp");
    let resp = app.get_bearer("/v1/me", &app.token(no_exp)).await;
    assert_eq!(problem(resp).await.0, 401, "exp stays required");
}

/// A name as a client may spell it: each character literal (either
/// case) or percent-encoded (either hex case).
fn spelled(name: &'static str) -> impl Strategy<Value = String> {
    let chars: Vec<BoxedStrategy<String>> = name
        .chars()
        .map(|c| {
            prop_oneof![
                Just(c.to_string()),
                Just(c.to_ascii_uppercase().to_string()),
                Just(format!("%{:02X}", c as u32)),
                Just(format!("%{:02x}", c as u32)),
                Just(format!("%{:02X}", c.to_ascii_uppercase() as u32)),
            ]
            .boxed()
        })
        .collect();
    chars.prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PLAYGATE_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]
    /// `?%74oken=SECRET` reaches the master extractor as `token`; the
    /// access log must not show SECRET, whatever the encoding.
    #[test]
    fn secret_query_values_are_redacted_however_the_name_is_encoded(
        (name, spelled) in prop_oneof![
            spelled("token").prop_map(|s| ("token", s)),
            spelled("signature").prop_map(|s| ("signature", s)),
            spelled("policy").prop_map(|s| ("policy", s)),
            spelled("key-pair-id").prop_map(|s| ("key-pair-id", s)),
            spelled("access_token").prop_map(|s| ("access_token", s)),
            spelled("api_key").prop_map(|s| ("api_key", s)),
        ],
        before in prop::option::of("[a-z]{1,5}=[a-z0-9]{0,5}"),
    ) {
        let secret = "eyJzZWNyZXQ.c2VjcmV0LXZhbHVl.c2ln";
        let query = match &before {
            Some(b) => format!("{b}&{spelled}={secret}"),
            None => format!("{spelled}={secret}"),
        };
        let uri: axum::http::Uri = format!("/v1/play/a/master.m3u8?{query}").parse().unwrap();
        let logged = playgate::http::middleware::redact_uri(&uri);
        prop_assert!(!logged.contains(secret), "{name} as {spelled}: {logged}");
        prop_assert!(logged.contains("[redacted]"));
    }
}
