//! The credentials boundary on the way out: every call to a third party goes through the one
//! guarded client. Token, refresh and revocation endpoints of custom connectors are held to the
//! same rules as invoke URL (no internal addresses unless allowlisted, https unless allowlisted),
//! at save and at call; custom OAuth2 connectors with a known issuer refuse answers from another
//! authorization server before any token request.

use crate::common;

use app::authorizations::{AuthorizeOutcome, FlowStatus};
use app::connectors::CustomConnectorInput;
use app::error::AppError;
use common::sandbox::{authorize_in_browser, Sandbox};
use common::{fixtures, TestApp};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A loopback listener that counts the connections made to it (and answers none of them).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, seen)
}

fn client_credentials_connector(name: &str, token_url: &str) -> CustomConnectorInput {
    CustomConnectorInput {
        name: name.into(),
        auth_type: "oauth2".into(),
        grant_type: "client_credentials".into(),
        client_id: "machine-client".into(),
        client_secret: "machine-client-secret".into(),
        token_url: token_url.into(),
        api_base: "https://api.example.com".into(),
        ..Default::default()
    }
}

/// Saving `input` as a custom connector fails: its status and error.
async fn save_fails(app: &TestApp, admin: &reqwest::Client, input: &CustomConnectorInput) -> (u16, AppError) {
    let form = fixtures::form(input);
    let args: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.fails(admin, "create_custom_connector", &args).await
}

async fn authorize(app: &TestApp, admin: &reqwest::Client, link: &str, account: &str) -> reqwest::Response {
    app.authorize_call(admin, link, &common::fixtures::oauth(account)).await
}

#[tokio::test]
async fn custom_token_endpoints_on_internal_addresses_are_refused_at_save_and_at_call() {
    let app = common::spawn().await;
    let admin = app.signed_in("developer@demo.test").await;
    let (port, seen) = counting_listener().await;

    // At save: a loopback address, or plain http to anywhere, is refused with the field named.
    for (token_url, says) in [
        (format!("http://127.0.0.1:{port}/token"), "https://"),
        (format!("https://127.0.0.1:{port}/token"), "internal addresses"),
        (format!("https://[::ffff:127.0.0.1]:{port}/token"), "internal addresses"),
        ("http://auth.example.com/token".to_string(), "https://"),
    ] {
        let (status, e) = save_fails(&app, &admin, &client_credentials_connector("Loop", &token_url)).await;
        assert_eq!((status, e.field()), (400, Some("token_url")), "{token_url}: {e:?}");
        assert!(e.to_string().contains(says), "{token_url}: {e}");
    }
    let revoke = format!("https://10.0.0.1:{port}/revoke");
    let with_revoke = CustomConnectorInput {
        revoke_url: revoke,
        ..client_credentials_connector("Loop", "https://auth.example.com/token")
    };
    let (status, e) = save_fails(&app, &admin, &with_revoke).await;
    assert_eq!((status, e.field()), (400, Some("revoke_url")), "{e:?}");

    // At call: a name that resolves to loopback passes the save (it is https and not an IP
    // literal) but the resolver drops the address, so the token request never leaves.
    let token_url = format!("https://localhost:{port}/token");
    let link = app.custom_connection(&admin, &client_credentials_connector("Sneaky", &token_url), "Sneaky", &[]).await;
    let signed_admin = app.signed_in("admin@demo.test").await;
    let res = authorize(&app, &signed_admin, &link, "Machine").await;
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("internal addresses"), "{body}");
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing reached the listener");
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "nothing stored");
}

#[tokio::test]
async fn allowlisted_services_may_use_plain_http() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let token_url = sandbox.endpoint("/token");
    let link =
        app.custom_connection(&admin, &client_credentials_connector("Machine", &token_url), "Machine", &[]).await;
    let out: AuthorizeOutcome = authorize(&app, &admin, &link, "Machine").await.json().await.unwrap();
    assert!(matches!(out, AuthorizeOutcome::Authorized { .. }), "{out:?}");
    assert_eq!(sandbox.stats().await["token_requests"]["client_credentials"], 1);
}

/// A custom connector pointing at the sandbox's metadata: endpoints and issuer filled from it.
async fn discovered_connector(app: &TestApp, admin: &reqwest::Client, sandbox: &Sandbox) -> String {
    let metadata = sandbox.endpoint("/.well-known/openid-configuration");
    app.custom_connection(
        admin,
        &CustomConnectorInput {
            name: "Discovered".into(),
            auth_type: "oauth2".into(),
            client_id: "dropbox-like".into(),
            client_secret: "dropbox-like-secret".into(),
            discovery_url: metadata,
            scopes: "files.read".into(),
            api_base: sandbox.url.clone(),
            ..Default::default()
        },
        "Discovered",
        &["files.read"],
    )
    .await
}

async fn start(app: &TestApp, admin: &reqwest::Client, link: &str) -> (String, String) {
    let out: AuthorizeOutcome = authorize(app, admin, link, "Alice").await.json().await.unwrap();
    let AuthorizeOutcome::Redirect { flow, authorize_url, .. } = out else { panic!("{out:?}") };
    (flow, authorize_url)
}

async fn flow_status(app: &TestApp, admin: &reqwest::Client, flow: &str) -> FlowStatus {
    app.json(admin, "authorization_status", &[("flow", flow)]).await
}

#[tokio::test]
async fn custom_connectors_with_a_known_issuer_refuse_answers_from_another_server() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let link = discovered_connector(&app, &admin, &sandbox).await;
    let config: String = sqlx::query_scalar("SELECT config FROM connectors WHERE name = 'Discovered'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["issuer"], sandbox.url.as_str());
    assert_eq!(config["token_url"], sandbox.endpoint("/token").as_str());
    assert_eq!(config["iss_parameter_supported"], true);

    // A wrong issuer, then none: refused before the code is exchanged.
    for (tamper, expected) in [(Some("http://evil.example"), "issuer mismatch"), (None, "missing iss")] {
        let (flow, url) = start(&app, &admin, &link).await;
        let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
        let cb = consent.with_iss(tamper);
        let page = admin.get(cb).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(expected), "{page}");
        assert!(matches!(flow_status(&app, &admin, &flow).await, FlowStatus::Failed { .. }));
    }
    assert_eq!(sandbox.stats().await["token_requests"]["authorization_code"], 0, "no code was exchanged");
    let failures = app.count("SELECT COUNT(*) FROM operations WHERE kind = 'oauth_failed'").await;
    assert_eq!(failures, 2, "each refused answer is in Operations");

    // The untouched answer connects.
    let (flow, url) = start(&app, &admin, &link).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    admin.get(consent.callback_url.clone()).send().await.unwrap();
    assert_eq!(flow_status(&app, &admin, &flow).await, FlowStatus::Connected { account_name: "Alice".into() });
    assert_eq!(sandbox.stats().await["token_requests"]["authorization_code"], 1);
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused_at_save() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let metadata = sandbox.endpoint("/.well-known/openid-configuration");
    let (status, e) = app
        .fails(
            &admin,
            "create_custom_connector",
            &[
                ("input[name]", "Mixed"),
                ("input[auth_type]", "oauth2"),
                ("input[client_id]", "dropbox-like"),
                ("input[client_secret]", "dropbox-like-secret"),
                ("input[issuer]", "https://other.example.com"),
                ("input[discovery_url]", &metadata),
                ("input[api_base]", &sandbox.url),
            ],
        )
        .await;
    assert_eq!((status, e.field()), (400, Some("issuer")), "{e:?}");
}

/// A flow is bound to the token endpoint it was started for: if the connector's endpoint is
/// changed meanwhile, the code is not sent to the new one.
#[tokio::test]
async fn a_flow_sends_its_code_only_to_the_token_endpoint_it_started_for() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let link = discovered_connector(&app, &admin, &sandbox).await;
    let (flow, url) = start(&app, &admin, &link).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    let config: String = sqlx::query_scalar("SELECT config FROM connectors WHERE name = 'Discovered'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let moved = config.replace(&sandbox.endpoint("/token"), &format!("{}/elsewhere/token", sandbox.url));
    assert_ne!(moved, config);
    sqlx::query("UPDATE connectors SET config = $1 WHERE name = 'Discovered'")
        .bind(&moved)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let page = admin.get(consent.callback_url.clone()).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("changed while you were authorizing"), "{page}");
    assert!(matches!(flow_status(&app, &admin, &flow).await, FlowStatus::Failed { .. }));
    assert_eq!(sandbox.stats().await["token_requests"]["authorization_code"], 0);
}
