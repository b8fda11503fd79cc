//! Health webhooks (issue 13): endpoints registered by admins, events written to the outbox in
//! the change's transaction, Standard Webhooks signatures checked by a receiver on loopback,
//! at-least-once delivery with a stable event id across a receiver outage and a server restart,
//! back-off, giving up after the retry window, and turning off an endpoint that keeps failing.

use crate::common::{self, fixtures, process::ServerProcess, sandbox::Sandbox, TestApp};
use app::webhooks::{CreatedEndpoint, DeliveryInfo, EndpointInfo};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver saw: every request, with whether its signature verified.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    verified: bool,
    answered: u16,
    body: Value,
}

/// A webhook receiver on loopback that answers `status` (503 while "down") and verifies each
/// request with the Standard Webhooks library once it knows the secret.
#[derive(Clone, Default)]
struct Receiver {
    status: Arc<AtomicU16>,
    secret: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        receiver.status.store(200, Ordering::SeqCst);
        let r = receiver.clone();
        let router = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let r = r.clone();
                async move {
                    let secret = r.secret.lock().unwrap().clone().unwrap_or_default();
                    let verified =
                        standardwebhooks::Webhook::new(&secret).is_ok_and(|w| w.verify(&body, &headers).is_ok());
                    let answered = r.status.load(Ordering::SeqCst);
                    r.seen.lock().unwrap().push(Received {
                        id: headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string(),
                        verified,
                        answered,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    StatusCode::from_u16(answered).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, addr)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

async fn register(app: &TestApp, admin: &reqwest::Client, url: &str, events: &str) -> CreatedEndpoint {
    app.json(admin, "create_webhook_endpoint", &[("url", url), ("description", "On-call"), ("events", events)]).await
}

async fn pending(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'").await
}

#[tokio::test]
async fn signed_deliveries_survive_a_receiver_outage_and_a_server_restart_once_per_event() {
    let sandbox = Sandbox::start(&[]).await;
    let (receiver, addr) = Receiver::start().await;
    let mut app = common::spawn_with_sandbox_allowing(&sandbox, &[addr]).await;
    // This server's own workers stop: the deliveries are sent by the processes started below.
    app.stop_workers().await;
    let admin = app.signed_in("admin@demo.test").await;
    let created =
        register(&app, &admin, &format!("http://{addr}/hooks"), "connection.authorized connection.revoked").await;
    assert!(created.secret.starts_with("whsec_"), "Standard Webhooks secret form");
    *receiver.secret.lock().unwrap() = Some(created.secret.clone());
    // The secret is shown once: lists never carry it.
    let listed = app.call(&admin, "webhook_endpoints", &[]).await.text().await.unwrap();
    assert!(!listed.contains(&created.secret) && listed.contains("/hooks"), "{listed}");

    // The receiver is down while a connection is authorized and revoked.
    receiver.answer(503);
    app.authorize(&admin, "weather", &fixtures::api_key_auth("Ops", "sandbox-weather-key")).await;
    let id = app.connection_id("weather").await.to_string();
    let res = app.call(&admin, "revoke_authorization", &[("connection_id", &id)]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    let events: Vec<(String, String)> = sqlx::query_as("SELECT id, kind FROM webhook_events ORDER BY created_at, id")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    let kinds: BTreeMap<&str, usize> = events.iter().fold(BTreeMap::new(), |mut m, (_, k)| {
        *m.entry(k.as_str()).or_default() += 1;
        m
    });
    // One authorization shared by the three environments: one event per environment and change.
    assert_eq!(kinds, BTreeMap::from([("connection.authorized", 3), ("connection.revoked", 3)]), "{events:?}");

    // A first server process tries them, is refused by the receiver, and is killed.
    let mut first = ServerProcess::start(&app).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.count("SELECT COUNT(*) FROM webhook_deliveries WHERE attempts = 0").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "no attempt:\n{}", first.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    first.kill().await;
    assert_eq!(pending(&app).await, 6, "every delivery is still pending after the outage");
    assert!(receiver.seen().iter().all(|r| r.answered == 503 && r.verified), "{:?}", receiver.seen());

    // The receiver is back; a new process delivers everything after the back-off.
    receiver.answer(200);
    let second = ServerProcess::start(&app).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pending(&app).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "not delivered:\n{}", second.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing is sent again once delivered, by any replica.
    app::webhooks::delivery::deliver_due(&app.state, app::ssr::ids::now_ms() + 48 * 3600 * 1000).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let seen = receiver.seen();
    assert!(seen.iter().all(|r| r.verified), "every request verifies with the Standard Webhooks library: {seen:?}");
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for r in seen.iter().filter(|r| r.answered == 200) {
        *delivered.entry(r.id.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = events.iter().map(|(id, _)| (id.clone(), 1)).collect();
    assert_eq!(delivered, expected, "each event accepted exactly once, under its stable id");
    // The payload names the connection and never carries a credential.
    let revoked = seen.iter().find(|r| r.body["type"] == "connection.revoked").expect("a revoked event");
    assert_eq!(revoked.body["data"]["connection"], "weather");
    assert_eq!(revoked.body["data"]["status"], "revoked");
    assert_eq!(revoked.body["id"].as_str(), Some(revoked.id.as_str()));
    assert!(revoked.body["data"]["environment"].is_string() && revoked.body["timestamp"].is_string());
    assert!(seen.iter().all(|r| !r.body.to_string().contains("sandbox-weather-key")), "no credential in a payload");
}

#[tokio::test]
async fn failing_endpoints_back_off_give_up_after_the_window_and_are_turned_off() {
    let (receiver, addr) = Receiver::start().await;
    let (mut settings, dir) = common::settings().await;
    settings.outbound_allowlist = vec![addr.to_string()];
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let created = register(&app, &admin, &format!("http://{addr}/hooks"), "connection.revoked").await;
    *receiver.secret.lock().unwrap() = Some(created.secret.clone());
    let id = created.endpoint.id.to_string();

    // "Send test event" delivers at once and says so; the log lists it.
    let ok: DeliveryInfo = app.json(&admin, "send_test_webhook", &[("id", &id)]).await;
    assert_eq!((ok.kind.as_str(), ok.state.as_str(), ok.last_status), ("webhook.test", "delivered", Some(200)));
    assert!(receiver.seen().iter().any(|r| r.id == ok.event_id && r.verified && r.body["type"] == "webhook.test"));

    // The endpoint breaks: the failure is recorded and retried later, 5 s after the first attempt.
    receiver.answer(500);
    let failed: DeliveryInfo = app.json(&admin, "send_test_webhook", &[("id", &id)]).await;
    assert_eq!((failed.state.as_str(), failed.attempts, failed.last_status), ("pending", 1, Some(500)));
    assert_eq!(failed.last_error.as_deref(), Some("the endpoint answered 500"));
    let (next, last): (i64, i64) =
        sqlx::query_as("SELECT next_attempt_at, last_attempt_at FROM webhook_deliveries WHERE event_id = $1")
            .bind(&failed.event_id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(next - last, app::webhooks::delivery::backoff_ms(0));
    assert!(app::webhooks::delivery::backoff_ms(1) > app::webhooks::delivery::backoff_ms(0));

    // A day later it is still failing: the delivery is given up and the endpoint turned off.
    let later = app::ssr::ids::now_ms() + 25 * 3600 * 1000;
    app::webhooks::delivery::deliver_due(&app.state, later).await.unwrap();
    let log: Vec<DeliveryInfo> = app.json(&admin, "webhook_deliveries", &[("id", &id)]).await;
    let latest = log.iter().find(|d| d.event_id == failed.event_id).expect("in the log");
    assert_eq!((latest.state.as_str(), latest.attempts), ("failed", 2), "{log:?}");
    let endpoints: Vec<EndpointInfo> = app.json(&admin, "webhook_endpoints", &[]).await;
    assert!(!endpoints[0].enabled, "{endpoints:?}");
    assert!(endpoints[0].disabled_reason.as_deref().unwrap_or_default().contains("failing for 24 h"), "{endpoints:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'webhook_endpoint_disabled'").await, 1);

    // A turned-off endpoint is not sent anything; turned on again, it gets new events.
    let sent = receiver.seen().len();
    assert_eq!(app::webhooks::delivery::deliver_due(&app.state, later + 3600 * 1000).await.unwrap(), 0);
    assert_eq!(receiver.seen().len(), sent);
    let res = app.call(&admin, "set_webhook_endpoint_enabled", &[("id", &id), ("enabled", "true")]).await;
    assert_eq!(res.status(), 200);
    let endpoints: Vec<EndpointInfo> = app.json(&admin, "webhook_endpoints", &[]).await;
    assert!(endpoints[0].enabled && endpoints[0].disabled_reason.is_none());
}

#[tokio::test]
async fn only_builders_manage_webhooks_and_deliveries_go_only_where_the_outbound_rules_allow() {
    let app = common::spawn().await;
    // Developers are builders: they may (the list answers); plain users may not.
    let dev = app.signed_in("developer@demo.test").await;
    let _: Vec<EndpointInfo> = app.json(&dev, "webhook_endpoints", &[]).await;
    let admin = app.signed_in("admin@demo.test").await;
    for email in ["user@demo.test"] {
        let c = app.signed_in(email).await;
        let (status, _) = app.fails(&c, "webhook_endpoints", &[]).await;
        assert_eq!(status, 403, "{email}");
        let (status, _) = app
            .fails(
                &c,
                "create_webhook_endpoint",
                &[("url", "https://hooks.example/x"), ("description", ""), ("events", "sync.failed")],
            )
            .await;
        assert_eq!(status, 403, "{email}");
    }
    for (url, why) in [
        ("http://hooks.example/x", "https://"),
        ("https://127.0.0.1/x", "internal"),
        ("https://10.1.2.3/x", "internal"),
        ("https://user:pass@hooks.example/x", "credentials"),
        ("not a url", "full URL"),
    ] {
        let (status, e) = app
            .fails(&admin, "create_webhook_endpoint", &[("url", url), ("description", ""), ("events", "sync.failed")])
            .await;
        assert_eq!(status, 400, "{url}");
        assert!(e.to_string().contains(why), "{url}: {e}");
    }
    let (status, e) = app
        .fails(
            &admin,
            "create_webhook_endpoint",
            &[("url", "https://hooks.example/x"), ("description", ""), ("events", "connection.exploded")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(e.to_string().contains("connection.exploded"), "{e}");
    // Unknown or other workspaces' endpoints are not found.
    let (status, _) = app.fails(&admin, "send_test_webhook", &[("id", "999")]).await;
    assert_eq!(status, 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_endpoints").await, 0, "nothing was saved");
}

#[tokio::test]
async fn lifecycle_changes_emit_events_in_their_transaction() {
    let sandbox = Sandbox::start(&[]).await;
    let (receiver, addr) = Receiver::start().await;
    let mut app = common::spawn_with_sandbox_allowing(&sandbox, &[addr]).await;
    app.stop_workers().await;
    let admin = app.signed_in("admin@demo.test").await;
    let all = "connection.authorized connection.switched connection.deleted";
    let created = register(&app, &admin, &format!("http://{addr}/hooks"), all).await;
    *receiver.secret.lock().unwrap() = Some(created.secret);
    let input = fixtures::api_key("Plain Weather", "X-Api-Key", &sandbox.url);
    let link = app.custom_connection(&admin, &input, "Plain", &[]).await;
    app.authorize(&admin, &link, &fixtures::api_key_auth("Ops", "first-key")).await;
    app.authorize(&admin, &link, &fixtures::api_key_auth("Ops 2", "second-key")).await;
    let kinds = |app: &TestApp| {
        let pool = app.state.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT kind FROM webhook_events ORDER BY created_at, id")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    let seen = kinds(&app).await;
    assert_eq!(seen.iter().filter(|k| *k == "connection.authorized").count(), 3, "{seen:?}");
    assert_eq!(seen.iter().filter(|k| *k == "connection.switched").count(), 3, "{seen:?}");

    // Deleting the connection says so (after its authorizations are gone). No endpoint wants
    // revocations: nothing is queued for them.
    let id = app.connection_id(&link).await.to_string();
    let res = app.call(&admin, "delete_connection", &[("connection_id", &id)]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    let seen = kinds(&app).await;
    assert_eq!(seen.last().map(String::as_str), Some("connection.deleted"), "{seen:?}");
    let payload: String = sqlx::query_scalar("SELECT payload FROM webhook_events WHERE kind = 'connection.deleted'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["data"]["connection"], link.as_str(), "{payload}");
    assert_eq!(payload["data"]["workspace"].as_str().map(|w| !w.is_empty()), Some(true), "{payload}");
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events WHERE kind = 'connection.revoked'").await, 0);
    assert_eq!(app::webhooks::delivery::deliver_due(&app.state, app::ssr::ids::now_ms()).await.unwrap(), 7);
    assert_eq!(receiver.seen().iter().filter(|r| r.verified && r.answered == 200).count(), 7);
}
