//! Revoking authorizations (R16.1, R16.2): revoked at the provider (refresh token, then access
//! token), local credentials removed either way, retried in the background after a 503.

use crate::common;

use app::connectors::CustomConnectorInput;
use common::fixtures;
use common::sandbox::Sandbox;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[tokio::test]
async fn revoke_removes_credentials_and_the_provider_rejects_the_token() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let (access, _) = app.connect_oauth(&admin, "sales_crm").await;
    let deals = sandbox.endpoint("/api/crm/Deals?per_page=1");
    let api = common::http();
    assert_eq!(api.get(&deals).bearer_auth(&access).send().await.unwrap().status(), 200);

    // A developer may not revoke an admin connection.
    let dev = app.signed_in("developer@demo.test").await;
    let id = app.connection_id("sales_crm").await.to_string();
    assert_eq!(app.fails(&dev, "revoke_authorization", &[("connection_id", &id)]).await.0, 403);

    sandbox.reset_stats().await;
    app.json::<()>(&admin, "revoke_authorization", &[("connection_id", &id)]).await;
    assert_eq!(sandbox.stats().await["revocations"], 2, "refresh token and access token");
    assert_eq!(
        api.get(&deals).bearer_auth(&access).send().await.unwrap().status(),
        401,
        "the provider rejects the revoked token"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "local credentials removed");
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "sales_crm")]).await;
    // "Revoked" (not "Not connected") until it is authorized again, in the details and the panel.
    assert!(details["environments"].as_array().unwrap().iter().all(|e| e["status"] == "Revoked"), "{details}");
    let panel: Vec<Value> =
        app.json(&admin, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
    let entry = panel.iter().find(|c| c["link_name"] == "sales_crm").expect("in the panel");
    assert_eq!(entry["status"], "Revoked");
    assert_eq!(entry["account_name"], Value::Null);
    // Components using it now get the authorization prompt.
    let res = app
        .call(
            &admin,
            "invoke_url",
            &[
                ("request[app]", "sales_hub"),
                ("request[connection]", "sales_crm"),
                ("request[method]", "GET"),
                ("request[url]", &deals),
            ],
        )
        .await;
    assert_eq!(res.status(), 428);
    let e: app::error::AppError = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert!(e.to_string().contains("was revoked"), "{e}");
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'revoked'").await, 1);
    // Nothing left to revoke.
    assert_eq!(app.fails(&admin, "revoke_authorization", &[("connection_id", &id)]).await.0, 404);
    // Authorized again: connected, the tombstone is gone.
    app.connect_oauth(&admin, "sales_crm").await;
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "sales_crm")]).await;
    assert!(details["environments"].as_array().unwrap().iter().all(|e| e["status"] == "Connected"), "{details}");
    assert_eq!(app.count("SELECT COUNT(*) FROM revoked_authorizations").await, 0);
}

#[tokio::test]
async fn a_provider_answering_503_is_retried_in_the_background() {
    let sandbox = Sandbox::start(&[]).await;
    // A revocation endpoint that is down until told otherwise.
    let up = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let stub = {
        let (up, hits) = (up.clone(), hits.clone());
        axum::Router::new().route(
            "/revoke",
            axum::routing::post(move || {
                let (up, hits) = (up.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if up.load(Ordering::SeqCst) {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stub_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, stub).await });

    let app = common::spawn_with_sandbox_allowing(&sandbox, &[stub_addr]).await;
    let admin = app.signed_in("admin@demo.test").await;
    let revoke_url = format!("http://{stub_addr}/revoke");
    let link = app
        .custom_connection(
            &admin,
            &CustomConnectorInput { revoke_url, ..fixtures::sandbox_crm("Flaky Revoke", &sandbox) },
            "Flaky",
            &["crm.deals.read"],
        )
        .await;
    assert_eq!(link, "flaky");
    app.connect_oauth(&admin, "flaky").await;
    let id = app.connection_id("flaky").await.to_string();
    app.json::<()>(&admin, "revoke_authorization", &[("connection_id", &id)]).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "removed locally at once");
    assert_eq!(app.count("SELECT COUNT(*) FROM pending_revocations").await, 2);

    // Still down: stays queued. Then up: done.
    sqlx::query("UPDATE pending_revocations SET next_attempt_at = 0").execute(&app.state.db.pool).await.unwrap();
    assert_eq!(app::revocations::ssr::retry_due(&app.state).await.unwrap(), 2);
    up.store(true, Ordering::SeqCst);
    sqlx::query("UPDATE pending_revocations SET next_attempt_at = 0").execute(&app.state.db.pool).await.unwrap();
    assert_eq!(app::revocations::ssr::retry_due(&app.state).await.unwrap(), 0);
    assert_eq!(hits.load(Ordering::SeqCst), 6);
}
