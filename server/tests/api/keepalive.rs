//! Keep-alive (issue 13): an OAuth2 account nobody calls is refreshed once per interval (24 h by
//! default) through the single-flight refresh, by exactly one of the replicas; an expired
//! account without a refresh token is marked before anyone calls it.

use crate::common;

use app::authorizations::ssr::{account_aad, keepalive_pass, Credentials, KeepAlive};
use app::ssr::ids::now_ms;
use common::sandbox::Sandbox;

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn an_idle_account_is_refreshed_once_a_simulated_day_by_one_of_two_replicas() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let (_, replica) = common::spawn_replica(&app).await;
    let admin = app.signed_in("admin@demo.test").await;
    let (first, _) = app.connect_oauth(&admin, "sales_crm").await;
    sandbox.reset_stats().await;
    let refreshes = || async { sandbox.stats().await["token_requests"]["refresh_token"].as_i64().unwrap() };

    // Just authorized: nothing is due, on either replica.
    let now = now_ms();
    assert_eq!(keepalive_pass(&app.state, now).await.unwrap(), KeepAlive::default());
    assert_eq!(keepalive_pass(&replica, now + 12 * HOUR).await.unwrap(), KeepAlive::default());
    assert_eq!(refreshes().await, 0);

    // A day later both replicas run their pass at once: one refresh in all.
    let day = now + 25 * HOUR;
    let (a, b) = tokio::join!(keepalive_pass(&app.state, day), keepalive_pass(&replica, day));
    assert_eq!(a.unwrap().refreshed + b.unwrap().refreshed, 1);
    assert_eq!(refreshes().await, 1);
    let (second, _) = app.oauth_tokens("sales_crm").await;
    assert_ne!(first, second, "new tokens stored");
    // The same day again: nothing more.
    let (a, b) = tokio::join!(keepalive_pass(&app.state, day + HOUR), keepalive_pass(&replica, day + HOUR));
    assert_eq!(a.unwrap().refreshed + b.unwrap().refreshed, 0);
    assert_eq!(refreshes().await, 1);
    // The next day: once more.
    let (a, b) = tokio::join!(keepalive_pass(&app.state, day + 25 * HOUR), keepalive_pass(&replica, day + 25 * HOUR));
    assert_eq!(a.unwrap().refreshed + b.unwrap().refreshed, 1);
    assert_eq!(refreshes().await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts WHERE status = 'connected'").await, 1);
}

#[tokio::test]
async fn an_expired_account_without_a_refresh_token_is_marked_before_anyone_calls() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let (access, _) = app.connect_oauth(&admin, "sales_crm").await;
    // The provider gave no refresh token, and the access token has run out.
    let id = app.count("SELECT id FROM authorized_accounts").await;
    let expired = now_ms() - 1000;
    let creds = Credentials::OAuth2 {
        access_token: access,
        refresh_token: None,
        expires_at: Some(expired),
        issued_at: Some(expired - HOUR),
    };
    let ct = app.state.cipher.encrypt(&account_aad(id), &serde_json::to_vec(&creds).unwrap());
    sqlx::query("UPDATE authorized_accounts SET credentials_ct = $1, access_expires_at = $2 WHERE id = $3")
        .bind(ct)
        .bind(expired)
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();

    let done = keepalive_pass(&app.state, now_ms()).await.unwrap();
    assert_eq!(done, KeepAlive { refreshed: 0, expired: 1 });
    let details: serde_json::Value = app.json(&admin, "get_connection", &[("link_name", "sales_crm")]).await;
    for e in details["environments"].as_array().unwrap() {
        assert_eq!(e["status"], "NeedsReauthorization", "{details}");
        assert_eq!(e["status_reason"], "access token expired (no refresh token)", "{details}");
    }
    // Marked once: a second pass finds nothing.
    assert_eq!(keepalive_pass(&app.state, now_ms()).await.unwrap(), KeepAlive::default());
}
