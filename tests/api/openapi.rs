//! `GET /openapi.json`: an OpenAPI 3.1 description that an independent
//! validator (`openapi-spec-validator`, PyPI) accepts, and that matches the
//! router both ways: every route in `src/http/` is described (but the
//! local edge and the demo page, on purpose), every described operation is
//! routed.

use crate::helpers::spawn_app;
use std::collections::BTreeSet;
use std::process::Command;

#[path = "../common/tools.rs"]
mod tools;

/// Routes that are not part of the API, with why (src/http/openapi.rs).
const NOT_DESCRIBED: &[&str] = &[
    "/cdn/", // mode local's stand-in for CloudFront
    "/demo", // the developer page in mode local
];

fn validator_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .status()
        .is_ok_and(|s| s.success())
}

/// `Ok` when the validator accepts the document, else its message.
fn validate(doc: &serde_json::Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() && text.contains(": OK") {
        Ok(())
    } else {
        Err(text)
    }
}

async fn served() -> serde_json::Value {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_description_is_valid_openapi_3_1() {
    let doc = served().await;
    assert_eq!(doc["openapi"], "3.1.0");
    if !tools::installed_or_skip(validator_installed(), "openapi-spec-validator") {
        return;
    }
    validate(&doc).unwrap();
    // The validator can say no: the same document with two operations
    // sharing an id, and with a reference to a schema that is not there.
    let mut dup = doc.clone();
    dup["paths"]["/v1/tiers"]["get"]["operationId"] = "assets_list".into();
    assert!(validate(&dup).is_err(), "a duplicate operation id passed");
    let mut dangling = doc.clone();
    dangling["components"]["schemas"]
        .as_object_mut()
        .unwrap()
        .remove("Problem");
    assert!(validate(&dangling).is_err(), "a dangling $ref passed");
}

/// `(METHOD, /path/{param})` for every `.route(…)` in `src/http/` (each
/// resource file's `routes()`); axum's `{*rest}` written as OpenAPI's
/// `{rest}`.
fn routed_in_source() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for chunk in text.split(".route(").skip(1) {
            let chunk = chunk.trim_start();
            let Some(path) = chunk.strip_prefix('"').and_then(|c| c.split('"').next()) else {
                continue;
            };
            // The handlers: up to the `)` that closes `.route(`.
            let mut depth = 1;
            let end = chunk
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(chunk.len(), |(i, _)| i);
            let handlers = &chunk[..end];
            for method in ["get", "put", "post", "delete"] {
                let called = handlers.contains(&format!(" {method}("))
                    || handlers.contains(&format!(".{method}("))
                    || handlers.contains(&format!("::{method}("))
                    || handlers.contains(&format!(",{method}("));
                if called {
                    out.insert((method.to_uppercase(), path.replace("{*", "{")));
                }
            }
        }
    }
    out
}

fn described(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_described_and_every_described_operation_is_routed() {
    let doc = served().await;
    let routed: BTreeSet<_> = routed_in_source()
        .into_iter()
        .filter(|(_, p)| !NOT_DESCRIBED.iter().any(|n| p.starts_with(n)))
        .collect();
    assert!(
        routed.len() >= 25,
        "the route scan found only {routed:?}: has the router's shape changed?"
    );
    let described = described(&doc);
    let missing: Vec<_> = routed.difference(&described).collect();
    let extra: Vec<_> = described.difference(&routed).collect();
    assert!(missing.is_empty(), "routed but not described: {missing:?}");
    assert!(extra.is_empty(), "described but not routed: {extra:?}");

    // And as the running server answers: no described operation meets the
    // router's 405 (its path routed, that method not).
    let app = spawn_app().await;
    for (method, path) in &described {
        let concrete = path
            .replace("{asset}", "nosuchasset")
            .replace("{id}", "nosuchid")
            .replace("{name}", "nosuchtier")
            .replace("{key}", "00000000000000000000000000000000")
            .replace("{rest}", "720p/index.m3u8");
        let req = app.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(&concrete),
        );
        let status = req.send().await.unwrap().status().as_u16();
        assert_ne!(
            status, 405,
            "{method} {path}: the router does not route this method"
        );
    }
    let unrouted = app.get("/v1/no-such-route").await;
    assert_eq!(unrouted.status(), 404);
    let unrouted_method = app.client.patch(app.url("/v1/tiers")).send().await.unwrap();
    assert_eq!(
        unrouted_method.status(),
        405,
        "the 405 check above could not fail"
    );
}
