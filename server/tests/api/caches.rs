//! The invoke path's in-process cache (`ssr::cache`): what a call reads about its connection is
//! reused for at most a second, so a change made through one replica is honoured at once there
//! and by every other replica within a second: switching the account, turning the
//! application's access off, editing the connector, revoking. Sessions and users, read for
//! every request, are kept a second the same way: a sign-out, or a role changed elsewhere, is
//! seen by every replica within it.

use crate::common;

use common::fixtures::{self, api_key_auth, Authorization};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A service that answers with the API key it was sent.
async fn echo_service() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/key",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// `invoke_url` on the server at `base` as `client`: (status, body of the service or error).
async fn call(client: &reqwest::Client, base: &str, link: &str, url: &str) -> (u16, String) {
    let res = common::invoke_at(base, client, "field_service", link, url).await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str::<app::invoke::InvokeResponse>(&text).map(|r| r.body).unwrap_or(text);
    (status, body)
}

/// `app` and a second replica on its database: their base URLs (a load balancer's two backends).
async fn two_replicas(app: &common::TestApp) -> (String, String) {
    let (other, _) = common::spawn_replica(app).await;
    (app.url(""), format!("http://{other}"))
}

/// Reads with `read` until `done` holds for its answer; panics with the last answer after
/// 1.5 s (the one-second TTL and some room).
async fn within_a_second<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    read: impl Fn() -> F,
    done: impl Fn(&T) -> bool,
) {
    let start = Instant::now();
    loop {
        let answer = read().await;
        if done(&answer) {
            return;
        }
        assert!(start.elapsed() < Duration::from_millis(1500), "{what}: still {answer:?} after 1.5 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_change_on_one_replica_is_honoured_by_the_other_within_a_second() {
    let echo = echo_service().await;
    let (mut settings, dir) = common::settings().await;
    settings.outbound_allowlist = vec![echo.to_string()];
    let app = common::spawn_with(settings, dir).await;
    let (a, b) = two_replicas(&app).await;
    let admin_a = app.signed_in("admin@demo.test").await;
    let (admin_b, _) = app.signed_in_at(&b, "admin@demo.test").await;
    let base = format!("http://{echo}");
    let url = format!("{base}/key");
    let echo_api = fixtures::api_key("Echo", "X-Api-Key", &base);
    let link = app.custom_connection(&admin_a, &echo_api, "Echo", &[]).await;
    app.authorize(&admin_a, &link, &api_key_auth("One", "key-one")).await;
    // Both replicas have called (and cached) the connection.
    for server in [&a, &b] {
        let client = if server == &a { &admin_a } else { &admin_b };
        for _ in 0..3 {
            assert_eq!(call(client, server, &link, &url).await, (200, "key-one".to_string()));
        }
    }

    // Switch to another account on A: A uses it at once, B within a second.
    let switch = Authorization { replace: true, ..api_key_auth("Two", "key-two") };
    app.authorize(&admin_a, &link, &switch).await;
    assert_eq!(call(&admin_a, &a, &link, &url).await, (200, "key-two".to_string()));
    within_a_second("switch", || call(&admin_b, &b, &link, &url), |(s, body)| *s == 200 && body == "key-two").await;

    // The application's access turned off on A.
    let app_id: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE link_name = 'field_service'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let (conn, app_id) = (app.connection_id(&link).await.to_string(), app_id.to_string());
    let access = |on: &'static str| {
        [("connection_id", conn.clone()), ("application_id", app_id.clone()), ("enabled", on.into())]
    };
    let set_access = |on: &'static str| {
        let args = access(on);
        let admin = admin_a.clone();
        let app = &app;
        async move {
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.json::<()>(&admin, "set_connection_access", &args).await
        }
    };
    set_access("false").await;
    assert_ne!(call(&admin_a, &a, &link, &url).await.0, 200, "refused at once where it was changed");
    within_a_second("access off", || call(&admin_b, &b, &link, &url), |(s, _)| *s != 200).await;
    set_access("true").await;
    within_a_second("access on", || call(&admin_b, &b, &link, &url), |(s, _)| *s == 200).await;

    // The connector moved to another address: the old one no longer gets the key.
    let id: i64 = sqlx::query_scalar("SELECT connector_id FROM connections WHERE link_name = $1")
        .bind(&link)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let moved =
        app::connectors::CustomConnectorInput { api_base: format!("http://localhost:{}", echo.port()), ..echo_api };
    let mut args = vec![("connector_id".to_string(), id.to_string()), ("confirmed".to_string(), "true".to_string())];
    args.extend(fixtures::form(&moved));
    app.json::<serde_json::Value>(&admin_a, "update_custom_connector", &common::pairs(&args)).await;
    assert_ne!(call(&admin_a, &a, &link, &url).await.0, 200, "refused at once where it was edited");
    within_a_second("connector edited", || call(&admin_b, &b, &link, &url), |(s, _)| *s != 200).await;

    // Revoked on A (after moving back and authorizing again).
    let back = vec![("connector_id".to_string(), id.to_string()), ("confirmed".to_string(), "true".to_string())]
        .into_iter()
        .chain(fixtures::form(&fixtures::api_key("Echo", "X-Api-Key", &base)))
        .collect::<Vec<_>>();
    app.json::<serde_json::Value>(&admin_a, "update_custom_connector", &common::pairs(&back)).await;
    app.authorize(&admin_a, &link, &Authorization { replace: true, ..api_key_auth("Three", "key-three") }).await;
    within_a_second(
        "authorized again",
        || call(&admin_b, &b, &link, &url),
        |(s, body)| *s == 200 && body == "key-three",
    )
    .await;
    app.json::<()>(&admin_a, "revoke_authorization", &[("connection_id", &conn)]).await;
    assert_eq!(call(&admin_a, &a, &link, &url).await.0, 428, "revoked at once where it was revoked");
    within_a_second("revoke", || call(&admin_b, &b, &link, &url), |(s, _)| *s == 428).await;
}

/// `current_user` at `base` with the session `cookie`: the signed-in user's JSON, or `None`.
async fn current_user(base: &str, cookie: &str) -> Option<serde_json::Value> {
    let res = reqwest::Client::new().post(format!("{base}/api/current_user")).header("cookie", cookie).send().await;
    res.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_sign_out_or_a_role_change_is_seen_by_every_replica_within_a_second() {
    let app = common::spawn().await;
    let (a, b) = two_replicas(&app).await;
    // One session used through both replicas (a load balancer in front), read by each.
    let (client, cookie) = app.signed_in_at(&a, "admin@demo.test").await;
    for base in [&a, &b, &a, &b] {
        assert_eq!(current_user(base, &cookie).await.unwrap()["email"], "admin@demo.test");
    }

    // A role changed elsewhere (another replica, an admin tool): seen by both within a second.
    sqlx::query("UPDATE users SET role = 'user' WHERE email = 'admin@demo.test'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    for base in [&a, &b] {
        within_a_second(
            "role change",
            || current_user(base, &cookie),
            |u| u.as_ref().is_some_and(|u| u["role"] == "User"),
        )
        .await;
    }
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'admin@demo.test'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();

    // Signed out through A: ended there at once, on B within a second.
    assert_eq!(app.call(&client, "logout", &[]).await.status(), 200);
    assert_eq!(current_user(&a, &cookie).await, None, "ended at once where it was signed out");
    within_a_second("sign-out", || current_user(&b, &cookie), Option::is_none).await;
    // And it stays ended: neither replica brings it back from a cache.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for base in [&a, &b] {
        assert_eq!(current_user(base, &cookie).await, None);
    }
}

/// `sales_crm`'s status in the sales_hub panel (Production) at `base`.
async fn panel_status(client: &reqwest::Client, base: &str) -> String {
    let res = client
        .post(format!("{base}/api/app_connections"))
        .form(&[("app", "sales_hub"), ("environment", "Production")])
        .send()
        .await
        .unwrap();
    let panel: Vec<serde_json::Value> = res.json().await.unwrap();
    let entry = panel.iter().find(|c| c["link_name"] == "sales_crm").expect("sales_crm in the panel");
    entry["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_panel_shows_a_change_made_on_another_replica_within_a_second() {
    let app = common::spawn().await;
    let (a, b) = two_replicas(&app).await;
    let (admin_a, _) = app.signed_in_at(&a, "admin@demo.test").await;
    let (admin_b, _) = app.signed_in_at(&b, "admin@demo.test").await;
    let before = panel_status(&admin_b, &b).await;
    assert_ne!(before, "Disabled");
    assert_eq!(panel_status(&admin_a, &a).await, before);
    let id = app.connection_id("sales_crm").await.to_string();

    let set_enabled = |on: &'static str| {
        let (app, admin, id) = (&app, admin_a.clone(), id.clone());
        async move { app.json::<()>(&admin, "set_connection_enabled", &[("connection_id", &id), ("enabled", on)]).await }
    };
    set_enabled("false").await;
    assert_eq!(panel_status(&admin_a, &a).await, "Disabled", "at once where it was disabled");
    within_a_second("disabled", || panel_status(&admin_b, &b), |s| s == "Disabled").await;
    set_enabled("true").await;
    assert_eq!(panel_status(&admin_a, &a).await, before, "at once where it was enabled");
    within_a_second("enabled", || panel_status(&admin_b, &b), |s| *s == before).await;
}
