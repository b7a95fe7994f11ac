//! The attack suite: every way a token can be wrong gets the documented
//! status and a problem body.

use crate::helpers::{now, problem, spawn_app, spawn_app_edited, with_api_key};
use base64::Engine;
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn claims(tier: &str) -> serde_json::Value {
    json!({"iss": "playgate-dev", "aud": "playgate", "sub": "v1", "exp": now() + 600, "tier": tier})
}

async fn expect_401(app: &crate::helpers::TestApp, token: &str, why: &str) {
    let resp = app.get_bearer("/v1/me", token).await;
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer error=\"invalid_token\""),
        "{why}"
    );
    let (status, body) = problem(resp).await;
    assert_eq!(status, 401, "{why}: {body}");
    assert!(!body.to_string().contains(token), "{why}: token echoed");
}

#[tokio::test]
async fn a_valid_viewer_token_is_accepted() {
    let app = spawn_app().await;
    let resp = app.get_bearer("/v1/me", &app.viewer_token("free")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "private, no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["tier"], "free");
    assert_eq!(body["subject"], "viewer-1");
}

#[tokio::test]
async fn forged_and_broken_tokens_are_401() {
    let app = spawn_app().await;
    let good = app.token(claims("free"));
    let payload = B64.encode(claims("premium").to_string());

    // alg: none
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        payload
    );
    expect_401(&app, &none, "alg none").await;

    // HS256 "signed" with the issuer's RSA public key as the secret.
    let public = std::fs::read(app.dir.path().join("keys/jwt_public.pem")).unwrap();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims("premium"),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    expect_401(&app, &hs, "HS256 with the public key").await;

    // Tampered payload, original signature.
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    expect_401(&app, &tampered, "tampered payload").await;

    let mut c = claims("free");
    c["exp"] = json!(now() - 120);
    expect_401(&app, &app.token(c), "expired").await;

    let mut c = claims("free");
    c["nbf"] = json!(now() + 3600);
    expect_401(&app, &app.token(c), "nbf in the future").await;

    let mut c = claims("free");
    c["iss"] = json!("someone-else");
    expect_401(&app, &app.token(c), "wrong issuer").await;

    let mut c = claims("free");
    c["aud"] = json!("other-service");
    expect_401(&app, &app.token(c), "wrong audience").await;

    let mut c = claims("free");
    c.as_object_mut().unwrap().remove("exp");
    expect_401(&app, &app.token(c), "no exp").await;

    expect_401(&app, "not-a-token", "garbage").await;
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_parsing() {
    let app = spawn_app().await;
    let mut c = claims("free");
    c["pad"] = json!("x".repeat(9 * 1024));
    let big = app.token(c);
    assert!(big.len() > 9 * 1024);
    expect_401(&app, &big, "9 KiB token").await;
}

#[tokio::test]
async fn query_tokens_are_refused_off_the_master_route() {
    let app = spawn_app().await;
    let token = app.viewer_token("free");
    let (status, body) = problem(app.get(&format!("/v1/me?token={token}")).await).await;
    assert_eq!(status, 401);
    assert!(
        body["detail"].as_str().unwrap().contains("master playlist"),
        "{body}"
    );
}

#[tokio::test]
async fn tier_problems_are_403() {
    let app = spawn_app().await;
    let (status, body) = problem(app.get_bearer("/v1/me", &app.viewer_token("gold")).await).await;
    assert_eq!(status, 403, "unknown tier: {body}");
    let mut c = claims("free");
    c.as_object_mut().unwrap().remove("tier");
    let (status, body) = problem(app.get_bearer("/v1/me", &app.token(c)).await).await;
    assert_eq!(status, 403, "no tier claim, no default: {body}");
    assert!(body["detail"].as_str().unwrap().contains("no tier"));
    let (status, _) = problem(
        app.get_bearer("/v1/me", &app.viewer_token("Not A Tier"))
            .await,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_missing_tier_claim_falls_back_to_the_default_tier() {
    let app = spawn_app_edited(
        "",
        |t| t.replace("dev = true", "dev = true\ndefault_tier = \"free\""),
        axum::Router::new(),
    )
    .await;
    let mut c = claims("free");
    c.as_object_mut().unwrap().remove("tier");
    let resp = app.get_bearer("/v1/me", &app.token(c)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["tier"],
        "free"
    );
}

#[tokio::test]
async fn viewers_are_403_on_admin_routes_and_api_keys_are_exact() {
    let key = "pgk_test_admin_key_0123456789";
    let app = spawn_app_edited(
        "",
        |t| with_api_key(t, key, "playgate:admin"),
        axum::Router::new(),
    )
    .await;
    let (status, _) = problem(app.get_bearer("/v1/tiers", &app.viewer_token("free")).await).await;
    assert_eq!(status, 403, "viewer token on an admin route");
    assert_eq!(app.get_bearer("/v1/tiers", key).await.status(), 200);
    // One character off, a prefix, and nothing at all.
    let (status, _) = problem(
        app.get_bearer("/v1/tiers", "pgk_test_admin_key_0123456788")
            .await,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = problem(app.get_bearer("/v1/tiers", "pgk_test_admin_key").await).await;
    assert_eq!(status, 401);
    let (status, _) = problem(app.get("/v1/tiers").await).await;
    assert_eq!(status, 401);
    // An API key is not a viewer.
    let (status, _) = problem(app.get_bearer("/v1/me", key).await).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn country_rules_trust_only_configured_proxies() {
    let deny_kp = |t: String| {
        t.replace(
            "[tiers.free]\n",
            "[tiers.free]\ncountries = { deny = [\"KP\"] }\n",
        )
        .replace(
            "[tiers.premium]\n",
            "[tiers.premium]\ncountries = { allow = [\"FR\"] }\n",
        )
    };
    // Trusted: the test client connects from 127.0.0.1.
    let trusted = spawn_app_edited(
        "trusted_proxies = [\"127.0.0.0/8\"]",
        deny_kp,
        axum::Router::new(),
    )
    .await;
    let free = trusted.viewer_token("free");
    let premium = trusted.viewer_token("premium");
    let country = |c: &'static str| [("cloudfront-viewer-country", c)];
    let h = |t: &str| format!("Bearer {t}");
    let get = |app: &crate::helpers::TestApp, tok: String, c: Option<&'static str>| {
        let mut headers = vec![("authorization".to_owned(), h(&tok))];
        if let Some(c) = c {
            headers.push((country(c)[0].0.to_owned(), c.to_owned()));
        }
        let req = headers
            .iter()
            .fold(app.client.get(app.url("/v1/me")), |r, (k, v)| {
                r.header(k, v)
            });
        async move { req.send().await.unwrap() }
    };
    assert_eq!(get(&trusted, free.clone(), Some("KP")).await.status(), 403);
    assert_eq!(get(&trusted, free.clone(), Some("FR")).await.status(), 200);
    assert_eq!(
        get(&trusted, free.clone(), None).await.status(),
        200,
        "unknown passes deny"
    );
    assert_eq!(
        get(&trusted, premium.clone(), Some("FR")).await.status(),
        200
    );
    assert_eq!(
        get(&trusted, premium.clone(), None).await.status(),
        403,
        "unknown fails allow"
    );
    let body: serde_json::Value = get(&trusted, free.clone(), Some("fr"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["country"], "FR");

    // Untrusted: the header is ignored, so the country is unknown.
    let untrusted = spawn_app_edited("", deny_kp, axum::Router::new()).await;
    let free = untrusted.viewer_token("free");
    let premium = untrusted.viewer_token("premium");
    assert_eq!(get(&untrusted, free, Some("KP")).await.status(), 200);
    assert_eq!(get(&untrusted, premium, Some("FR")).await.status(), 403);
}
