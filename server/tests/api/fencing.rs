//! Refresh lease fencing and durable revocation: a refresh stores its answer only while it still
//! holds its lease by the database's clock (renewed while the provider answers); a holder that
//! lost it, or whose authorization was revoked meanwhile, revokes what it got instead of
//! writing; revocations are queued in the transaction that removes the credentials, retried
//! with growing delays and given up after a bounded time, saying so in Operations.

use crate::common;

use app::authorizations::ssr::{store_refreshed, Credentials, Stored};
use app::connectors::CustomConnectorInput;
use common::sandbox::Sandbox;
use common::{fixtures, TestApp};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `host:port` of an `http://` base URL, for the outbound allowlist.
fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// Settings pointing the built-in connectors at `sandbox`, with `extra` hosts allowlisted too.
async fn settings_for(sandbox: &Sandbox, extra: &[SocketAddr]) -> (app::ssr::settings::Settings, tempfile::TempDir) {
    let (mut settings, dir) = common::settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.outbound_allowlist =
        std::iter::once(host_port(&sandbox.url)).chain(extra.iter().map(|a| a.to_string())).collect();
    (settings, dir)
}

/// One request the proxy passed on: path, form fields sent, JSON answered (if any).
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    form: Vec<(String, String)>,
    answer: Option<Value>,
}

/// A loopback pass-through to the sandbox's token and revocation endpoints that remembers what
/// went by, so a test knows the tokens a refresh obtained even when the app never stored them.
struct Proxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    async fn start(sandbox: &Sandbox) -> Proxy {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (upstream, record) = (sandbox.url.clone(), seen.clone());
        let http = common::http();
        let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (http, upstream, record) = (http.clone(), upstream.clone(), record.clone());
            async move {
                let mut req = http.post(format!("{upstream}{}", uri.path())).body(body.to_vec());
                for name in ["authorization", "content-type", "accept"] {
                    if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                        req = req.header(name, v);
                    }
                }
                let res = req.send().await.expect("sandbox reachable");
                let status = res.status().as_u16();
                let text = res.text().await.expect("sandbox answer");
                let query = format!("http://form/?{}", String::from_utf8_lossy(&body));
                let form =
                    reqwest::Url::parse(&query).map(|u| u.query_pairs().into_owned().collect()).unwrap_or_default();
                let answer = serde_json::from_str(&text).ok();
                record.lock().unwrap().push(Seen { path: uri.path().to_string(), form, answer });
                (axum::http::StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], text)
            }
        };
        let router = axum::Router::new()
            .route("/token", axum::routing::post(handler.clone()))
            .route("/token/revocation", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Proxy { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The access and refresh token of the last refresh the provider answered.
    fn last_refreshed(&self) -> (String, String) {
        let seen = self.seen.lock().unwrap();
        let answer = seen
            .iter()
            .rev()
            .filter(|s| s.path == "/token" && s.form.iter().any(|(k, v)| k == "grant_type" && v == "refresh_token"))
            .find_map(|s| s.answer.clone().filter(|a| a["access_token"].is_string()))
            .expect("a refresh answer with tokens");
        (answer["access_token"].as_str().unwrap().into(), answer["refresh_token"].as_str().unwrap().into())
    }

    /// Every token sent to the revocation endpoint.
    fn revoked(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.path == "/token/revocation")
            .flat_map(|s| s.form.iter().filter(|(k, _)| k == "token").map(|(_, v)| v.clone()))
            .collect()
    }
}

/// An admin connection over a custom OAuth2 connector whose token and revocation endpoints are
/// `proxy`'s (the sandbox behind it); returns its link name.
async fn proxied_connection(app: &TestApp, admin: &reqwest::Client, sandbox: &Sandbox, proxy: &Proxy) -> String {
    app.custom_connection(
        admin,
        &CustomConnectorInput {
            token_url: proxy.url("/token"),
            revoke_url: proxy.url("/token/revocation"),
            ..fixtures::sandbox_crm("Proxied CRM", sandbox)
        },
        "Proxied",
        &["crm.deals.read"],
    )
    .await
}

async fn invoke_at(base: &str, client: &reqwest::Client, application: &str, conn: &str, url: &str) -> (u16, String) {
    let res = common::invoke_at(base, client, application, conn, url).await;
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// What the sandbox's API says to a bearer token.
async fn api_status(sandbox: &Sandbox, token: &str) -> u16 {
    common::http().get(sandbox.endpoint("/api/crm/me")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Makes the one stored access token look expired to the app, so the next call refreshes
/// first. (The provider's own short TTL is no use here: the refreshed token must outlive the
/// slow answer, and revoking the token at the sandbox ends its whole grant.)
async fn expire_locally(app: &TestApp) {
    use app::authorizations::ssr::account_aad;
    let (id, ct): (i64, Vec<u8>) = sqlx::query_as("SELECT id, credentials_ct FROM authorized_accounts")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let mut creds: Credentials =
        serde_json::from_slice(&app.state.cipher.decrypt(&account_aad(id), &ct).unwrap()).unwrap();
    let now = app::ssr::ids::now_ms();
    if let Credentials::OAuth2 { expires_at, issued_at, .. } = &mut creds {
        *expires_at = Some(now - 1_000);
        *issued_at = Some(now - 3_600_000);
    }
    let ct = app.state.cipher.encrypt(&account_aad(id), &serde_json::to_vec(&creds).unwrap());
    sqlx::query("UPDATE authorized_accounts SET credentials_ct = $1 WHERE id = $2")
        .bind(ct)
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

/// Waits (generously) until the sandbox holds back a refresh answer.
async fn wait_until_held(sandbox: &Sandbox) {
    for _ in 0..600 {
        if sandbox.stats().await["held_token_responses"] == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the refresh never reached the provider: {}", sandbox.stats().await);
}

fn token_errors(stats: &Value) -> i64 {
    stats["token_errors"].as_object().map(|o| o.values().filter_map(|v| v.as_i64()).sum()).unwrap_or(0)
}

/// Two replicas, a token endpoint that answers after four lease lengths, concurrent calls on an
/// expired token: the holder keeps its lease by renewing it, so nobody replays the refresh
/// token it spent. One refresh, no `invalid_grant`, every call succeeds, one token set that the
/// provider accepts, and one Operations entry for the refresh (not one per waiting caller).
#[tokio::test]
async fn a_token_endpoint_slower_than_the_lease_ends_with_one_token_set() {
    let sandbox = Sandbox::start(&[]).await;
    let (mut settings, dir) = settings_for(&sandbox, &[]).await;
    settings.refresh_lease_ms = 1_500;
    let app = common::spawn_with(settings, dir).await;
    let (replica, _) = common::spawn_replica(&app).await;
    let admin = app.signed_in("admin@demo.test").await;
    let (old_access, old_refresh) = app.connect_oauth(&admin, "sales_crm").await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=2");
    expire_locally(&app).await;

    // The provider rotates the refresh token, then holds its answer back for 6 s (4 leases).
    sandbox.fail_with("slow-token", &[("times", "1"), ("delay_ms", "6000")]).await;
    sandbox.reset_stats().await;
    let calls = (0..20).map(|i| {
        let (admin, url) = (admin.clone(), url.clone());
        let base = if i % 2 == 0 { app.url("") } else { format!("http://{replica}") };
        async move { invoke_at(&base, &admin, "sales_hub", "sales_crm", &url).await }
    });
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let stats = sandbox.stats().await;
    assert_eq!(stats["held_token_responses"], 1, "the slow answer was the one used: {stats}");
    assert_eq!(stats["token_requests"]["refresh_token"], 1, "{stats}");
    assert_eq!(token_errors(&stats), 0, "no invalid_grant: {stats}");

    // One valid token set, stored once, that the provider accepts.
    let (access, refresh) = app.oauth_tokens("sales_crm").await;
    assert_ne!(access, old_access);
    assert_ne!(refresh, old_refresh);
    assert_eq!(api_status(&sandbox, &access).await, 200);
    let (status, body) = invoke_at(&format!("http://{replica}"), &admin, "sales_hub", "sales_crm", &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'token_refreshed'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'token_refresh_failed'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM pending_revocations").await, 0, "nothing discarded");
}

/// A holder whose lease was taken over while the provider answered (as after a long pause)
/// does not write: the stored tokens stay as they were, the tokens it got are revoked at the
/// provider, and the connection ends honestly as "needs re-authorization" (the provider spent
/// the old refresh token), never as a silently stale "connected".
#[tokio::test]
async fn a_holder_that_lost_its_lease_does_not_overwrite_and_revokes_what_it_got() {
    let sandbox = Sandbox::start(&[]).await;
    let proxy = Proxy::start(&sandbox).await;
    let (mut settings, dir) = settings_for(&sandbox, &[proxy.addr]).await;
    settings.refresh_lease_ms = 3_000;
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let link = proxied_connection(&app, &admin, &sandbox, &proxy).await;
    let (old_access, old_refresh) = app.connect_oauth(&admin, &link).await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=2");
    expire_locally(&app).await;

    sandbox.fail_with("slow-token", &[("times", "1"), ("delay_ms", "4000")]).await;
    let in_flight = {
        let (admin, url, base, link) = (admin.clone(), url.clone(), app.url(""), link.clone());
        tokio::spawn(async move { invoke_at(&base, &admin, "field_service", &link, &url).await })
    };
    wait_until_held(&sandbox).await;
    // Another replica takes the lease over.
    let taken = sqlx::query("UPDATE refresh_leases SET owner = 'another-replica'")
        .execute(&app.state.db.pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(taken, 1, "the refresh holds a lease");

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 428, "an honest prompt to authorize again: {body}");
    let (access, refresh) = app.oauth_tokens_any(&link).await;
    assert_eq!((access, refresh), (old_access, old_refresh), "the holder that lost its lease wrote nothing");
    let (new_access, new_refresh) = proxy.last_refreshed();
    let revoked = proxy.revoked();
    assert!(revoked.contains(&new_refresh) && revoked.contains(&new_access), "what it got is revoked: {revoked:?}");
    assert_eq!(api_status(&sandbox, &new_access).await, 401);
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, status_reason FROM authorized_accounts")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "needs_reauthorization");
    assert_eq!(reason.as_deref(), Some(app::authorizations::ssr::reason::INTERRUPTED));
    let lost: i64 = app
        .count("SELECT COUNT(*) FROM operations WHERE kind = 'token_refresh_failed' AND detail LIKE '%lease ran out%'")
        .await;
    assert_eq!(lost, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM pending_revocations").await, 0, "the revocations went through");
}

/// The store itself, called directly: refused once the lease has expired by the database's
/// clock or belongs to someone else, or when the authorization is no longer refreshable;
/// written only under the caller's own live lease.
#[tokio::test]
async fn a_store_without_a_live_lease_is_refused() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.authorize(&admin, "weather", &common::fixtures::api_key_auth("Key", "sandbox-weather-key")).await;
    let account: i64 = app.count("SELECT id FROM authorized_accounts").await;
    let stored = || async {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT credentials_ct FROM authorized_accounts")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap()
    };
    let before = stored().await;
    let fresh = Credentials::OAuth2 {
        access_token: "new-access".into(),
        refresh_token: Some("new-refresh".into()),
        expires_at: None,
        issued_at: None,
    };
    let db_now = app.state.db.backend.now_ms_sql();
    let set_lease = |owner: &'static str, offset_ms: i64| {
        let sql = format!(
            "INSERT INTO refresh_leases (account_id, owner, expires_at) VALUES ($1, $2, {db_now} + $3)
             ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
        );
        let pool = app.state.db.pool.clone();
        async move { sqlx::query(&sql).bind(account).bind(owner).bind(offset_ms).execute(&pool).await.unwrap() }
    };

    // No lease at all.
    assert_eq!(store_refreshed(&app.state, account, "me", &fresh).await.unwrap(), Stored::LeaseLost);
    // Its own lease, expired a second ago by the database's clock.
    set_lease("me", -1_000).await;
    assert_eq!(store_refreshed(&app.state, account, "me", &fresh).await.unwrap(), Stored::LeaseLost);
    // Someone else's live lease.
    set_lease("another-replica", 60_000).await;
    assert_eq!(store_refreshed(&app.state, account, "me", &fresh).await.unwrap(), Stored::LeaseLost);
    assert_eq!(stored().await, before, "nothing written");

    // Its own live lease, but the authorization is no longer refreshable.
    set_lease("me", 60_000).await;
    sqlx::query("UPDATE authorized_accounts SET status = 'needs_reauthorization', status_reason = 'x'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(store_refreshed(&app.state, account, "me", &fresh).await.unwrap(), Stored::AccountGone);
    assert_eq!(stored().await, before, "nothing written");

    // Its own live lease on a connected authorization: written.
    sqlx::query("UPDATE authorized_accounts SET status = 'connected', status_reason = NULL")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert!(matches!(store_refreshed(&app.state, account, "me", &fresh).await.unwrap(), Stored::Written(_)));
    let plain = app.state.cipher.decrypt(&app::authorizations::ssr::account_aad(account), &stored().await).unwrap();
    let Credentials::OAuth2 { access_token, refresh_token, .. } = serde_json::from_slice(&plain).unwrap() else {
        panic!("not the refreshed credentials")
    };
    assert_eq!((access_token.as_str(), refresh_token.as_deref()), ("new-access", Some("new-refresh")));
}

/// Revoking while a refresh is in flight: the refresh cannot bring the authorization back (it
/// stays "Revoked"), and the tokens the refresh obtained are revoked at the provider too.
#[tokio::test]
async fn a_revoke_racing_a_refresh_stays_revoked_and_revokes_the_new_tokens() {
    let sandbox = Sandbox::start(&[]).await;
    let proxy = Proxy::start(&sandbox).await;
    let (settings, dir) = settings_for(&sandbox, &[proxy.addr]).await;
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let link = proxied_connection(&app, &admin, &sandbox, &proxy).await;
    app.connect_oauth(&admin, &link).await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=2");
    expire_locally(&app).await;

    sandbox.fail_with("slow-token", &[("times", "1"), ("delay_ms", "3000")]).await;
    let in_flight = {
        let (admin, url, base, link) = (admin.clone(), url.clone(), app.url(""), link.clone());
        tokio::spawn(async move { invoke_at(&base, &admin, "field_service", &link, &url).await })
    };
    wait_until_held(&sandbox).await;
    let id = app.connection_id(&link).await.to_string();
    app.json::<()>(&admin, "revoke_authorization", &[("connection_id", &id)]).await;

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 428, "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "not resurrected");
    let details: Value = app.json(&admin, "get_connection", &[("link_name", link.as_str())]).await;
    assert!(details["environments"].as_array().unwrap().iter().all(|e| e["status"] == "Revoked"), "{details}");
    let (status, body) = invoke_at(&app.url(""), &admin, "field_service", &link, &url).await;
    assert_eq!(status, 428, "{body}");

    let (new_access, new_refresh) = proxy.last_refreshed();
    let revoked = proxy.revoked();
    assert!(revoked.contains(&new_refresh) && revoked.contains(&new_access), "the new tokens are revoked: {revoked:?}");
    assert_eq!(api_status(&sandbox, &new_access).await, 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM pending_revocations").await, 0);
    let raced: i64 = app
        .count("SELECT COUNT(*) FROM operations WHERE kind = 'token_refresh_failed' AND detail LIKE '%revoked during the refresh%'")
        .await;
    assert_eq!(raced, 1);
}

/// A revocation endpoint that keeps failing: the local credentials are gone at once and the
/// tokens wait in `pending_revocations` (queued with the removal); each retry waits longer than
/// the one before; after `--revocation-retry-secs` the revocation is given up, and Operations
/// says the provider could not be told.
#[tokio::test]
async fn a_failing_revocation_is_retried_with_growing_delays_then_given_up() {
    let sandbox = Sandbox::start(&[]).await;
    let hits = Arc::new(AtomicUsize::new(0));
    let stub = {
        let hits = hits.clone();
        axum::Router::new().route(
            "/revoke",
            axum::routing::post(move || {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stub_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, stub).await });
    let (mut settings, dir) = settings_for(&sandbox, &[stub_addr]).await;
    settings.revocation_retry_secs = 4;
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let link = app
        .custom_connection(
            &admin,
            &CustomConnectorInput {
                revoke_url: format!("http://{stub_addr}/revoke"),
                ..fixtures::sandbox_crm("Down Revoke", &sandbox)
            },
            "Down",
            &["crm.deals.read"],
        )
        .await;
    app.connect_oauth(&admin, &link).await;
    let conn = app.connection_id(&link).await;
    app.json::<()>(&admin, "revoke_authorization", &[("connection_id", &conn.to_string())]).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2, "sent at once");
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "removed locally at once");
    let pending = || async {
        let rows: Vec<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT attempts, next_attempt_at, queued_at, connection_id FROM pending_revocations ORDER BY id",
        )
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
        rows
    };
    let first = pending().await;
    assert_eq!(first.len(), 2, "refresh and access token wait");
    assert!(first.iter().all(|r| r.0 == 1 && r.3 == Some(conn)), "{first:?}");

    // Retried: the next delay is longer than the first.
    sqlx::query("UPDATE pending_revocations SET next_attempt_at = 0").execute(&app.state.db.pool).await.unwrap();
    let before = app::ssr::ids::now_ms();
    assert_eq!(app::revocations::ssr::retry_due(&app.state).await.unwrap(), 2);
    let second = pending().await;
    assert!(second.iter().all(|r| r.0 == 2), "{second:?}");
    for (a, b) in first.iter().zip(&second) {
        let first_delay = a.1 - a.2;
        let second_delay = b.1 - before;
        assert!(second_delay > first_delay, "delays grow: {first_delay} ms, then {second_delay} ms");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 4);

    // Past the bound: one more try, then given up, and Operations says so.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    sqlx::query("UPDATE pending_revocations SET next_attempt_at = 0").execute(&app.state.db.pool).await.unwrap();
    assert_eq!(app::revocations::ssr::retry_due(&app.state).await.unwrap(), 0);
    assert_eq!(hits.load(Ordering::SeqCst), 6);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'revocation_abandoned'").await, 2);
    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let entry = ops.iter().find(|o| o["kind"] == "revocation_abandoned").expect("logged");
    assert_eq!(entry["connection"], "Down");
    assert!(entry["detail"].as_str().unwrap().contains("could not be told"), "{entry}");
}
