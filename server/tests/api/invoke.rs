//! The invoke-URL call over connections: credential injection by auth type, connection access,
//! origin and SSRF rules, the authorization prompt, and OAuth2 refresh without races.

use crate::common;

use app::connectors::CustomConnectorInput;
use app::error::AppError;
use app::invoke::InvokeResponse;
use common::fixtures::{api_key_auth, basic_auth};
use common::sandbox::Sandbox;
use common::{fixtures, TestApp};
use serde_json::Value;

async fn invoke(app: &TestApp, c: &reqwest::Client, application: &str, conn: &str, url: &str) -> reqwest::Response {
    app.call(
        c,
        "invoke_url",
        &[
            ("request[app]", application),
            ("request[connection]", conn),
            ("request[method]", "GET"),
            ("request[url]", url),
        ],
    )
    .await
}

async fn ok(res: reqwest::Response) -> InvokeResponse {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn err(res: reqwest::Response) -> (u16, AppError) {
    let status = res.status().as_u16();
    (status, serde_json::from_str(&res.text().await.unwrap()).unwrap())
}

async fn authorize_key(app: &TestApp, admin: &reqwest::Client, link: &str, key: &str) {
    app.authorize(admin, link, &api_key_auth("Key", key)).await;
}

#[tokio::test]
async fn credentials_by_auth_type_and_connection_access() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let weather_url = sandbox.endpoint("/api/weather?city=Chennai");

    // Not authorized yet: the prompt for those who may authorize, "contact admin" for others.
    let (status, e) = err(invoke(&app, &admin, "field_service", "weather", &weather_url).await).await;
    assert_eq!(status, 428);
    assert!(
        matches!(e, AppError::AuthorizationRequired { prompt: true, ref connection, .. } if connection == "weather"),
        "{e:?}"
    );
    let dev = app.signed_in("developer@demo.test").await;
    let (_, e) = err(invoke(&app, &dev, "field_service", "weather", &weather_url).await).await;
    assert!(matches!(e, AppError::AuthorizationRequired { prompt: false, .. }), "{e:?}");
    assert!(e.to_string().contains("Weather is not authorized yet. Contact your admin"), "{e}");

    // API key in a header.
    authorize_key(&app, &admin, "weather", "sandbox-weather-key").await;
    let res = ok(invoke(&app, &dev, "field_service", "weather", &weather_url).await).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("Chennai"), "{}", res.body);

    // Basic auth (per environment: production only).
    let production = basic_auth("Builder", &["Production"], "builder@sandbox.test", "atlassian-api-token");
    app.authorize(&admin, "issue_tracker", &production).await;
    let res =
        ok(invoke(&app, &admin, "field_service", "issue_tracker", &sandbox.endpoint("/api/atlassian/myself")).await)
            .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("builder@sandbox.test"));
    // Development has no authorization of its own.
    let res = app
        .call(
            &admin,
            "invoke_url",
            &[
                ("request[app]", "field_service"),
                ("request[connection]", "issue_tracker"),
                ("request[method]", "GET"),
                ("request[url]", &sandbox.endpoint("/api/atlassian/myself")),
                ("request[environment]", "Development"),
            ],
        )
        .await;
    assert_eq!(res.status(), 428);

    // Connection access: Sales Hub has none for Weather; switching Field Service off blocks it.
    let (status, e) = err(invoke(&app, &admin, "sales_hub", "weather", &weather_url).await).await;
    assert_eq!(status, 403, "{e:?}");
    assert!(e.to_string().contains("no access"));
    let weather = app.connection_id("weather").await.to_string();
    let field: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE link_name = 'field_service'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let field = field.to_string();
    app.json::<()>(
        &admin,
        "set_connection_access",
        &[("connection_id", &weather), ("application_id", &field), ("enabled", "false")],
    )
    .await;
    assert_eq!(invoke(&app, &admin, "field_service", "weather", &weather_url).await.status(), 403);
    app.json::<()>(
        &admin,
        "set_connection_access",
        &[("connection_id", &weather), ("application_id", &field), ("enabled", "true")],
    )
    .await;
    assert_eq!(ok(invoke(&app, &admin, "field_service", "weather", &weather_url).await).await.status, 200);

    // Every call is in the operations log, without the query string.
    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let calls: Vec<&Value> = ops.iter().filter(|o| o["kind"] == "invoke_url").collect();
    assert!(calls.len() >= 3);
    assert!(calls.iter().all(|o| !o["detail"].as_str().unwrap().contains("city=")), "{calls:?}");
}

#[tokio::test]
async fn api_key_in_the_query_string_when_the_connector_says_so() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let link = app
        .custom_connection(
            &admin,
            &CustomConnectorInput {
                placement: "query".into(),
                ..fixtures::api_key("Open Weather Like", "appid", &sandbox.url)
            },
            "Query Weather",
            &[],
        )
        .await;
    assert_eq!(link, "query_weather");
    authorize_key(&app, &admin, "query_weather", "sandbox-weather-key").await;
    let res =
        ok(invoke(&app, &admin, "field_service", "query_weather", &sandbox.endpoint("/api/weather?city=Pune")).await)
            .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

#[tokio::test]
async fn other_origins_and_internal_addresses_are_refused() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    authorize_key(&app, &admin, "weather", "sandbox-weather-key").await;

    // Credentials go only to the connector's origin.
    for url in ["https://example.com/api/weather", "http://127.0.0.1:1/api/weather", "file:///etc/passwd", "not a url"]
    {
        let (status, e) = err(invoke(&app, &admin, "field_service", "weather", url).await).await;
        assert_eq!((status, e.field()), (400, Some("url")), "{url}: {e:?}");
    }
    // Custom connectors aimed at the metadata service in decimal, octal and hex, or at loopback
    // without an allowlist entry: refused before any connection is made.
    for (i, base) in ["http://2852039166", "http://0251.0376.0251.0376", "http://0xa9fea9fe", "http://127.0.0.1:9"]
        .iter()
        .enumerate()
    {
        let name = format!("Meta {i}");
        let link = format!("meta_{i}");
        let created = app.custom_connection(&admin, &fixtures::api_key(&name, "k", base), &name, &[]).await;
        assert_eq!(created, link);
        authorize_key(&app, &admin, &link, "secret-key").await;
        let (status, e) =
            err(invoke(&app, &admin, "field_service", &link, &format!("{base}/latest/meta-data")).await).await;
        assert_eq!(status, 403, "{base}: {e:?}");
        assert!(e.to_string().contains("internal addresses"), "{e}");
    }
    // Unknown connection and huge bodies: clear errors.
    let (status, _) = err(invoke(&app, &admin, "field_service", "nope", &sandbox.url).await).await;
    assert_eq!(status, 404);
    let huge = "x".repeat(300 * 1024);
    let res = app
        .call(
            &admin,
            "invoke_url",
            &[
                ("request[app]", "field_service"),
                ("request[connection]", "weather"),
                ("request[method]", "POST"),
                ("request[url]", &sandbox.url),
                ("request[body]", &huge),
            ],
        )
        .await;
    assert_eq!(res.status(), 413, "the server's body limit answers first");
}

/// 2 replicas × 50 concurrent calls on an expired token: exactly one refresh at the provider (which
/// rotates refresh tokens and revokes everything when an old one is replayed), every call
/// succeeds.
#[tokio::test]
async fn concurrent_calls_on_an_expired_token_refresh_once() {
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "12")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=2");
    assert_eq!(ok(invoke(&app, &admin, "sales_hub", "sales_crm", &url).await).await.status, 200);

    // A second replica on the same database; the session cookie works there too.
    let (replica, _) = common::spawn_replica(&app).await;
    // A 12 s token counts as expiring in its last 3 s (a quarter of its life): the burst
    // below then has 9 s before the refreshed token is expiring again, even on a loaded machine.
    tokio::time::sleep(std::time::Duration::from_millis(9300)).await;
    sandbox.reset_stats().await;
    let calls = (0..100).map(|i| {
        let (admin, url) = (admin.clone(), url.clone());
        let base = if i % 2 == 0 { app.url("") } else { format!("http://{replica}") };
        async move {
            let res = common::invoke_at(&base, &admin, "sales_hub", "sales_crm", &url).await;
            ok(res).await.status
        }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stats = sandbox.stats().await;
    assert_eq!(stats["token_requests"]["refresh_token"], 1, "{stats}");
    assert_eq!(
        stats["token_errors"].as_object().map(|o| o.values().filter_map(|v| v.as_i64()).sum::<i64>()).unwrap_or(0),
        0,
        "{stats}"
    );
}

/// A refresh token the provider no longer accepts marks the authorization "needs
/// re-authorization" with a reason, and the call asks for the prompt.
#[tokio::test]
async fn invalid_grant_marks_the_connection_for_reauthorization() {
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "2")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    // Revoke the refresh token at the provider behind the app's back.
    let (_, refresh) = app.oauth_tokens("sales_crm").await;
    let rt = refresh.expect("a refresh token");
    let revoke = common::http()
        .post(sandbox.endpoint("/token/revocation"))
        .basic_auth("crm-connector", Some("crm-connector-secret"))
        .form(&[("token", rt.as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_success());
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let panel_status = || async {
        let panel: Vec<Value> =
            app.json(&admin, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
        panel.iter().find(|c| c["link_name"] == "sales_crm").expect("in the panel")["status"].clone()
    };
    // The panel was just read (and kept for a second): the call's discovery must still show.
    assert_eq!(panel_status().await, "Connected");

    let (status, e) =
        err(invoke(&app, &admin, "sales_hub", "sales_crm", &sandbox.endpoint("/api/crm/Deals")).await).await;
    assert_eq!(status, 428, "{e:?}");
    assert!(e.to_string().contains("Authorize the connection again"), "{e}");
    assert_eq!(panel_status().await, "NeedsReauthorization", "the panel shows it at once");
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "sales_crm")]).await;
    assert_eq!(details["environments"][2]["status"], "NeedsReauthorization");
    assert_eq!(details["environments"][2]["status_reason"], app::authorizations::ssr::reason::REFRESH_REJECTED);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'needs_reauthorization'").await, 1);
    // Later calls keep asking for re-authorization, without asking the provider again.
    sandbox.reset_stats().await;
    let (status, e) =
        err(invoke(&app, &admin, "sales_hub", "sales_crm", &sandbox.endpoint("/api/crm/Deals")).await).await;
    assert_eq!(status, 428, "{e:?}");
    assert!(e.to_string().contains("stopped working"), "{e}");
    assert_eq!(sandbox.stats().await["token_requests"]["refresh_token"], 0);
    // The Operations page names the connection and the reason.
    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let entry = ops.iter().find(|o| o["kind"] == "needs_reauthorization").expect("logged");
    assert_eq!(entry["connection"], "Sales CRM");
    assert!(entry["detail"].as_str().unwrap().contains("refresh token revoked or expired"), "{entry}");
}

/// 50 concurrent calls in one process on an expired token: they share one refresh, and only
/// that one takes part in the database lease (one lease attempt, not one per caller).
#[tokio::test]
async fn concurrent_calls_in_one_process_share_one_refresh() {
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "3")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=2");
    tokio::time::sleep(std::time::Duration::from_millis(3300)).await;
    sandbox.reset_stats().await;
    let before = app.state.refreshes.lease_attempts();
    let calls = (0..50).map(|_| {
        let (admin, url, app) = (admin.clone(), url.clone(), &app);
        async move { ok(invoke(app, &admin, "sales_hub", "sales_crm", &url).await).await.status }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(sandbox.stats().await["token_requests"]["refresh_token"], 1);
    assert_eq!(app.state.refreshes.lease_attempts() - before, 1, "one caller took the lease; the others shared it");
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_leases").await, 0, "lease released");
}

/// A token endpoint that cannot be reached: one failed refresh only fails that call; after
/// `UNREACHABLE_LIMIT` in a row the authorization shows "needs reauthorization: provider
/// unreachable" (logged). The refresh token is kept, so once the provider answers again the
/// next call refreshes and the connection is connected again (logged as `reconnected`).
#[tokio::test]
async fn an_unreachable_provider_is_a_status_and_heals_when_it_is_back() {
    use app::authorizations::ssr::{reason, UNREACHABLE_LIMIT};
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "2")]).await;
    // A refresh URL on a port nothing listens on (yet).
    let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refresh_addr = down.local_addr().unwrap();
    drop(down);
    let app = common::spawn_with_sandbox_allowing(&sandbox, &[refresh_addr]).await;
    let admin = app.signed_in("admin@demo.test").await;
    let refresh_url = format!("http://{refresh_addr}/token");
    let events = "connection.needs_reauthorization connection.recovered";
    let hook = [("url", "https://hooks.example/x"), ("description", ""), ("events", events)];
    let _: Value = app.json(&admin, "create_webhook_endpoint", &hook).await;
    let link = app
        .custom_connection(
            &admin,
            &CustomConnectorInput { refresh_url, ..fixtures::sandbox_crm("Far CRM", &sandbox) },
            "Far",
            &["crm.deals.read"],
        )
        .await;
    let (old_access, _) = app.connect_oauth(&admin, &link).await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=1");
    let status_of = || async {
        let d: Value = app.json(&admin, "get_connection", &[("link_name", link.as_str())]).await;
        (d["environments"][2]["status"].as_str().unwrap().to_string(), d["environments"][2]["status_reason"].clone())
    };
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;

    for attempt in 1..=UNREACHABLE_LIMIT {
        let (status, e) = err(invoke(&app, &admin, "field_service", &link, &url).await).await;
        assert_eq!(status, 502, "{e:?}");
        assert!(e.to_string().contains("could not be reached"), "{e}");
        let (shown, why) = status_of().await;
        if attempt < UNREACHABLE_LIMIT {
            assert_eq!(shown, "Connected", "a blip does not demand re-authorization (attempt {attempt})");
        } else {
            assert_eq!(shown, "NeedsReauthorization");
            assert_eq!(why, reason::UNREACHABLE);
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'needs_reauthorization'").await, 1);
    let (_, refresh) = app.oauth_tokens_any(&link).await;
    assert!(refresh.is_some(), "the refresh token is kept");

    // The provider is back (a relay to the sandbox's token endpoint on that port).
    let token_endpoint = sandbox.endpoint("/token");
    let relay = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let token_endpoint = token_endpoint.clone();
            async move {
                let mut req = common::http().post(token_endpoint).body(body);
                for name in ["authorization", "content-type", "accept"] {
                    if let Some(v) = headers.get(name) {
                        req = req.header(name, v.as_bytes());
                    }
                }
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let text = res.text().await.unwrap();
                (axum::http::StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], text)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(refresh_addr).await.expect("the port is free again");
    tokio::spawn(async move { axum::serve(listener, relay).await });
    let res = ok(invoke(&app, &admin, "field_service", &link, &url).await).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let (shown, why) = status_of().await;
    assert_eq!((shown.as_str(), why), ("Connected", Value::Null));
    assert_ne!(app.oauth_tokens_any(&link).await.0, old_access);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'reconnected'").await, 1);
    // Webhook endpoints heard both changes, once per environment.
    let kinds: Vec<(String, String)> = sqlx::query_as("SELECT kind, payload FROM webhook_events ORDER BY created_at")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    let count = |k: &str| kinds.iter().filter(|(kind, _)| kind == k).count();
    assert_eq!((count("connection.needs_reauthorization"), count("connection.recovered")), (3, 3), "{kinds:?}");
    assert!(kinds[0].1.contains(reason::UNREACHABLE), "{kinds:?}");
}

/// Redirects are re-checked hop by hop: within the connector's origin they are followed (the
/// credentials go along, so the weather API answers); toward another origin they are not
/// followed and nothing reaches it (the caller gets the redirect back); loops end.
#[tokio::test]
async fn redirects_are_followed_within_the_origin_only() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let sandbox = Sandbox::start(&[]).await;
    // Another origin (same host, other port) that records every request reaching it. It is
    // allowlisted, so only the origin rule (not the internal-address rule) keeps calls away.
    let hits = Arc::new(AtomicUsize::new(0));
    let stub = {
        let hits = hits.clone();
        axum::Router::new().fallback(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "captured"
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stub_addr = listener.local_addr().unwrap();
    let elsewhere = format!("http://{stub_addr}/capture");
    tokio::spawn(async move { axum::serve(listener, stub).await });
    let (mut settings, dir) = common::settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.outbound_allowlist = vec![sandbox.url.trim_start_matches("http://").to_string(), stub_addr.to_string()];
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    authorize_key(&app, &admin, "weather", "sandbox-weather-key").await;
    let redirect = |params: &[(&str, &str)]| {
        reqwest::Url::parse_with_params(&sandbox.endpoint("/api/redirect"), params).unwrap().to_string()
    };

    // Same origin, relative and absolute, 302 and 307: followed, the key sent again.
    for url in [
        redirect(&[("to", "/api/weather?city=Pune")]),
        redirect(&[("status", "307"), ("to", &sandbox.endpoint("/api/weather?city=Pune"))]),
    ] {
        let res = ok(invoke(&app, &admin, "field_service", "weather", &url).await).await;
        assert_eq!(res.status, 200, "{url}: {}", res.body);
        assert!(res.body.contains("Pune"), "{}", res.body);
    }

    // Another origin: not followed, nothing sent there.
    for status in ["302", "307"] {
        let res =
            ok(invoke(&app, &admin, "field_service", "weather", &redirect(&[("status", status), ("to", &elsewhere)]))
                .await)
            .await;
        assert_eq!(res.status.to_string(), status);
        assert!(res.headers.iter().any(|(k, v)| k == "location" && v == &elsewhere), "{:?}", res.headers);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request, with or without credentials, left the origin");

    // A loop ends with a clear error.
    let (status, e) = err(invoke(&app, &admin, "field_service", "weather", &redirect(&[("loop", "1")])).await).await;
    assert_eq!(status, 502, "{e:?}");
    assert!(e.to_string().contains("redirected too many times"), "{e}");
}

/// Payment gateways (R2.6, R14.3) are connections whose connector is a payment gateway: the
/// panel lists them apart, they follow the same visibility rules (an admin connection: not for
/// plain users), and their secret key goes to the gateway as a bearer token.
#[tokio::test]
async fn payment_gateways_are_listed_apart_and_get_their_secret_key_as_a_bearer_token() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let args = [("app", "field_service"), ("environment", "Production")];
    let listed: Vec<Value> = app.json(&admin, "app_connections", &args).await;
    let gateways: Vec<&str> =
        listed.iter().filter(|c| c["payment_gateway"] == true).map(|c| c["link_name"].as_str().unwrap()).collect();
    assert_eq!(gateways, ["checkout"], "{listed:?}");
    assert!(listed.iter().any(|c| c["link_name"] == "weather" && c["payment_gateway"] == false));
    let user = app.signed_in("user@demo.test").await;
    let theirs: Vec<Value> = app.json(&user, "app_connections", &args).await;
    assert!(theirs.iter().all(|c| c["link_name"] != "checkout"), "{theirs:?}");

    let url = sandbox.endpoint("/api/payments/charges?limit=3");
    let (status, _) = err(invoke(&app, &admin, "field_service", "checkout", &url).await).await;
    assert_eq!(status, 428, "not authorized yet: the prompt");
    authorize_key(&app, &admin, "checkout", "sk_test_sandbox").await;
    let res = ok(invoke(&app, &admin, "field_service", "checkout", &url).await).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let body: Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(body["data"].as_array().map(Vec::len), Some(3));
    // Only for the applications it was granted to.
    let (status, _) = err(invoke(&app, &admin, "sales_hub", "checkout", &url).await).await;
    assert_eq!(status, 403);
}

/// A client-credentials account has no refresh token: when its token has expired, the next
/// call fetches a new one with the connection's scopes (under the same lease as a refresh)
/// instead of marking it "Needs reauthorization".
#[tokio::test]
async fn an_expired_client_credentials_token_is_fetched_again() {
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "2")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let machine = CustomConnectorInput {
        name: "Machine CRM".into(),
        auth_type: "oauth2".into(),
        grant_type: "client_credentials".into(),
        client_id: "machine-client".into(),
        client_secret: "machine-client-secret".into(),
        token_url: sandbox.endpoint("/token"),
        scopes: "crm.deals.read".into(),
        api_base: sandbox.url.clone(),
        ..Default::default()
    };
    let link = app.custom_connection(&admin, &machine, "Machine", &["crm.deals.read"]).await;
    let out = app.authorize(&admin, &link, &fixtures::oauth("Machine")).await;
    assert!(matches!(out, app::authorizations::AuthorizeOutcome::Authorized { .. }), "{out:?}");
    let url = sandbox.endpoint("/api/crm/Deals?per_page=1");
    assert_eq!(ok(invoke(&app, &admin, "field_service", &link, &url).await).await.status, 200);
    assert_eq!(sandbox.stats().await["token_requests"]["client_credentials"], 1);

    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let res = ok(invoke(&app, &admin, "field_service", &link, &url).await).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(sandbox.stats().await["token_requests"]["client_credentials"], 2, "a new token was fetched");
    let d: Value = app.json(&admin, "get_connection", &[("link_name", link.as_str())]).await;
    assert!(d["environments"].as_array().unwrap().iter().all(|e| e["status"] == "Connected"), "{d}");
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'needs_reauthorization'").await, 0);
}
