//! The sandbox test support (`common::sandbox`) against the real sandbox service: the
//! authorization-code + PKCE flow through the HTML forms, token exchange, the CRM API, the deny
//! path, the test hooks and the start-up / bad-credentials failure messages.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::sandbox::{authorize_in_browser, Sandbox};
use reqwest::Url;
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "http://127.0.0.1:3999/oauth/callback";

/// (verifier, S256 challenge)
fn pkce() -> (String, String) {
    let verifier = app::ssr::ids::random_token(64);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(sandbox: &Sandbox, scope: &str, state: &str, challenge: &str) -> String {
    authorize_url_to(sandbox, REDIRECT_URI, scope, state, challenge)
}

fn authorize_url_to(sandbox: &Sandbox, redirect_uri: &str, scope: &str, state: &str, challenge: &str) -> String {
    Url::parse_with_params(
        &sandbox.endpoint("/auth"),
        [
            ("response_type", "code"),
            ("client_id", "crm-connector"),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap()
    .to_string()
}

#[test]
fn pkce_challenge_matches_rfc_7636_appendix_b() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

#[tokio::test]
async fn code_flow_token_exchange_crm_and_deny() {
    let sandbox = Sandbox::start(&[]).await;
    assert_eq!(sandbox.url, format!("http://127.0.0.1:{}", sandbox.port));

    // Allow: code + state + iss back on the redirect URI, which is not requested.
    let (verifier, challenge) = pkce();
    let consent = authorize_in_browser(
        &authorize_url(&sandbox, "crm.deals.read", "abc", &challenge),
        "alice",
        "alice-password",
        true,
    )
    .await;
    assert_eq!(
        format!("{}{}", consent.callback_url.origin().ascii_serialization(), consent.callback_url.path()),
        REDIRECT_URI
    );
    let code = consent.param("code").expect("code on the callback");
    assert_eq!(consent.param("state").as_deref(), Some("abc"));
    assert_eq!(consent.param("iss").as_deref(), Some(sandbox.url.as_str()));
    assert_eq!(consent.param("error"), None);

    // Token exchange, client_secret_basic.
    let http = common::http();
    let res = http
        .post(sandbox.endpoint("/token"))
        .basic_auth("crm-connector", Some("crm-connector-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let token: serde_json::Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().expect("access_token").to_string();
    assert!(token["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{token}");
    assert_eq!(token["token_type"], "Bearer");

    // CRM API.
    let deals = |t: String| {
        let http = http.clone();
        let url = sandbox.endpoint("/api/crm/Deals?per_page=5");
        async move { http.get(url).bearer_auth(t).send().await.unwrap() }
    };
    let res = deals(access.clone()).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"].as_array().map(Vec::len), Some(5), "{body}");
    assert_eq!(body["data"][0]["id"], "D-0001");

    // Hooks: stats, failure injection, reset.
    let stats = sandbox.stats().await;
    assert_eq!(stats["token_requests"]["authorization_code"], 1, "{stats}");
    assert_eq!(stats["api_calls"], 1, "{stats}");
    assert_eq!(stats["failure_mode"], "off");
    sandbox.fail("500").await;
    assert_eq!(sandbox.stats().await["failure_mode"], "500");
    assert_eq!(deals(access.clone()).await.status(), 500);
    sandbox.fail("off").await;
    sandbox.fail_with("500", &[("times", "1")]).await;
    assert_eq!(deals(access.clone()).await.status(), 500);
    assert_eq!(deals(access.clone()).await.status(), 200);
    sandbox.reset_stats().await;
    let stats = sandbox.stats().await;
    assert_eq!(stats["api_calls"], 0, "{stats}");
    assert_eq!(stats["token_requests"]["authorization_code"], 0, "{stats}");

    // Deny: error=access_denied, no code.
    let (_, challenge) = pkce();
    let denied = authorize_in_browser(
        &authorize_url(&sandbox, "crm.deals.read", "xyz", &challenge),
        "bob",
        "bob-password",
        false,
    )
    .await;
    assert_eq!(denied.param("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.param("error_description").as_deref(), Some("End-User aborted interaction"));
    assert_eq!(denied.param("state").as_deref(), Some("xyz"));
    assert_eq!(denied.param("iss").as_deref(), Some(sandbox.url.as_str()));
    assert_eq!(denied.param("code"), None);
}

#[tokio::test]
async fn early_error_redirect_is_returned() {
    let sandbox = Sandbox::start(&[]).await;
    // No PKCE: the provider redirects straight back with invalid_request.
    let url = Url::parse_with_params(
        &sandbox.endpoint("/auth"),
        [("response_type", "code"), ("client_id", "crm-connector"), ("redirect_uri", REDIRECT_URI), ("state", "s")],
    )
    .unwrap();
    let consent = authorize_in_browser(url.as_str(), "alice", "alice-password", true).await;
    assert_eq!(consent.param("error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
#[should_panic(expected = "Invalid username or password")]
async fn wrong_password_panics_with_the_page_text() {
    let sandbox = Sandbox::start(&[]).await;
    let (_, challenge) = pkce();
    authorize_in_browser(&authorize_url(&sandbox, "crm.deals.read", "s", &challenge), "alice", "nope", true).await;
}

#[tokio::test]
#[should_panic(expected = "redirect_uri")]
async fn refused_redirect_uri_panics_with_the_page_text() {
    let sandbox = Sandbox::start(&[]).await;
    let (_, challenge) = pkce();
    let url = authorize_url_to(&sandbox, "http://evil.test/oauth/callback", "crm.deals.read", "s", &challenge);
    authorize_in_browser(&url, "alice", "alice-password", true).await;
}

#[tokio::test]
#[should_panic(expected = "invalid SANDBOX_PORT")]
async fn start_failure_shows_stderr() {
    Sandbox::start(&[("SANDBOX_PORT", "not-a-port")]).await;
}
