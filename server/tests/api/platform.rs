//! Issue 14: workspace API keys, connect sessions (the embedded panel opens signed in as a host's
//! end user), the `/v1` REST API with problems, idempotency, rate limits and its OpenAPI document.

use crate::common::{self, fixtures::api_key_auth, sandbox::Sandbox, TestApp};
use serde_json::{json, Value};

/// Creates an API key as `admin` with `scopes`; its secret.
async fn key(app: &TestApp, admin: &reqwest::Client, scopes: &str) -> String {
    let created: Value = app.json(admin, "create_api_key", &[("name", "Host backend"), ("scopes", scopes)]).await;
    created["secret"].as_str().expect("secret").to_string()
}

fn v1(app: &TestApp, secret: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    common::http().request(method, app.url(path)).bearer_auth(secret)
}

async fn get(app: &TestApp, secret: &str, path: &str) -> (u16, Value) {
    let res = v1(app, secret, reqwest::Method::GET, path).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, secret: &str, path: &str, body: &Value) -> (u16, Value) {
    let res = v1(app, secret, reqwest::Method::POST, path).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn session_for(external: &str, role: &str) -> Value {
    json!({"end_user": {"id": external, "display_name": "Ada Host", "role": role}, "application": "sales_hub"})
}

/// Creates a connect session; its token.
async fn connect(app: &TestApp, secret: &str, body: &Value) -> String {
    let (status, created) = post(app, secret, "/v1/connect-sessions", body).await;
    assert_eq!(status, 201, "{created}");
    created["token"].as_str().unwrap().to_string()
}

/// Exchanges `token` in a fresh browser-like client, as the embedded frame does.
async fn exchange(app: &TestApp, token: &str) -> (reqwest::Client, reqwest::Response) {
    let c = app.client();
    let res = c.get(app.url(&format!("/embed/sales_hub/session?token={token}"))).send().await.unwrap();
    (c, res)
}

async fn kinds(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM operations").fetch_all(&app.state.db.pool).await.unwrap()
}

#[tokio::test]
async fn api_keys_are_created_shown_once_scoped_and_revoked() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let developer = app.signed_in("developer@demo.test").await;

    let (status, _) = app.fails(&developer, "create_api_key", &[("name", "x"), ("scopes", "invoke")]).await;
    assert_eq!(status, 403);
    let (status, _) = app.fails(&admin, "create_api_key", &[("name", "x"), ("scopes", "everything")]).await;
    assert_eq!(status, 400);

    let created: Value =
        app.json(&admin, "create_api_key", &[("name", "Reporting"), ("scopes", "connections:read")]).await;
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("cmk_") && secret.len() == 44, "{secret}");
    assert_eq!(created["key"]["prefix"], secret[..12]);
    // Only a hash is stored; lists never carry the secret.
    let stored = app.count(&format!("SELECT COUNT(*) FROM api_keys WHERE secret_hash = '{secret}'")).await;
    assert_eq!(stored, 0);
    let listed = app.call(&admin, "api_keys", &[]).await.text().await.unwrap();
    assert!(listed.contains("Reporting") && !listed.contains(&secret), "{listed}");

    // Without a key, with an unknown one: 401 problems.
    let res = common::http().get(app.url("/v1/connections")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "tag:connections-manager,2026:problems/unauthorized");
    assert_eq!(get(&app, "cmk_not-a-key", "/v1/connections").await.0, 401);

    // In scope: the admin's view of the workspace's connections with their health.
    let (status, list) = get(&app, &secret, "/v1/connections").await;
    assert_eq!(status, 200, "{list}");
    let links: Vec<&str> = list["data"].as_array().unwrap().iter().map(|c| c["link_name"].as_str().unwrap()).collect();
    assert!(links.contains(&"sales_crm") && links.contains(&"my_crm"), "{links:?}");
    assert!(list["data"][0]["status"].is_string());
    let (status, one) = get(&app, &secret, "/v1/connections/sales_crm").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["environments"].as_array().unwrap().len(), 3);
    let (status, ops) = get(&app, &secret, "/v1/operations?limit=5").await;
    assert_eq!(status, 200, "{ops}");
    assert_eq!(ops["data"].as_array().unwrap().len(), 5);

    // Out of scope: 403, and an Operations entry says which key tried.
    let (status, problem) = post(&app, &secret, "/v1/connect-sessions", &session_for("u1", "user")).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "tag:connections-manager,2026:problems/forbidden");

    // Revoked: refused from then on.
    let id = created["key"]["id"].to_string();
    let (status, _) = app.fails(&developer, "revoke_api_key", &[("id", &id)]).await;
    assert_eq!(status, 403);
    let _: () = app.json(&admin, "revoke_api_key", &[("id", &id)]).await;
    let (status, problem) = get(&app, &secret, "/v1/connections").await;
    assert_eq!(status, 401);
    assert!(problem["detail"].as_str().unwrap().contains("revoked"), "{problem}");

    let kinds = kinds(&app).await;
    for kind in ["api_key_created", "api_call", "api_call_refused", "api_key_revoked"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn a_connect_session_token_signs_the_frame_in_once_and_expires() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let secret = key(&app, &admin, "connect_sessions").await;

    let (status, created) = post(&app, &secret, "/v1/connect-sessions", &session_for("ext-1", "user")).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("cst_"));
    assert!(created["embed_url"].as_str().unwrap().ends_with(&format!("/embed/sales_hub/session?token={token}")));

    // The frame exchanges it: a new session of the end user, and the token leaves the address.
    let (frame, res) = exchange(&app, token).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/embed/sales_hub");
    let me: Value = app.json(&frame, "current_user", &[]).await;
    assert_eq!(me["name"], "Ada Host");
    assert_eq!(me["role"], "User");

    // Single use, even from another browser.
    let (_, again) = exchange(&app, token).await;
    assert_eq!(again.status(), 410);
    assert!(again.text().await.unwrap().contains("already used"));

    // Expired, for another application, unknown, or from a revoked key: refused, saying why.
    let late = connect(&app, &secret, &session_for("ext-1", "user")).await;
    sqlx::query("UPDATE connect_sessions SET expires_at = 1 WHERE used_at IS NULL")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let (_, res) = exchange(&app, &late).await;
    assert_eq!(res.status(), 410);
    assert!(res.text().await.unwrap().contains("expired"));
    let other = connect(&app, &secret, &session_for("ext-1", "user")).await;
    let c = app.client();
    let res = c.get(app.url(&format!("/embed/field_service/session?token={other}"))).send().await.unwrap();
    assert_eq!(res.status(), 410);
    assert!(res.text().await.unwrap().contains("another application"));
    let (_, res) = exchange(&app, "cst_unknown").await;
    assert_eq!(res.status(), 404);
    // The refusal for another application did not spend the token.
    let (_, res) = exchange(&app, &other).await;
    assert_eq!(res.status(), 303);

    // Lifetimes: 10 minutes by default, at most 30.
    let mut long = session_for("ext-1", "user");
    long["lifetime_seconds"] = json!(3600);
    let (status, problem) = post(&app, &secret, "/v1/connect-sessions", &long).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("lifetime_seconds")), "{problem}");

    // The same end user (by external id) is updated, never duplicated.
    let mut renamed = session_for("ext-1", "user");
    renamed["end_user"]["display_name"] = json!("Ada Renamed");
    connect(&app, &secret, &renamed).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE external_id = 'ext-1'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE display_name = 'Ada Renamed'").await, 1);
    // End users cannot sign in with a password.
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE external_id = 'ext-1'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let res = app.call(&app.client(), "login", &[("email", &email), ("password", "!")]).await;
    assert_eq!(res.status(), 400);

    // A revoked key's unused tokens stop working.
    let pending = connect(&app, &secret, &session_for("ext-2", "user")).await;
    let keys: Vec<Value> = app.json(&admin, "api_keys", &[]).await;
    let _: () = app.json(&admin, "revoke_api_key", &[("id", &keys[0]["id"].to_string())]).await;
    let (_, res) = exchange(&app, &pending).await;
    assert_eq!(res.status(), 410);
    assert!(res.text().await.unwrap().contains("revoked"));
    let kinds = kinds(&app).await;
    assert!(kinds.iter().any(|k| k == "connect_session_used") && kinds.iter().any(|k| k == "connect_session_refused"));
}

#[tokio::test]
async fn end_users_get_the_unchanged_policy_of_their_role() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let secret = key(&app, &admin, "connect_sessions connections:read").await;

    // A host cannot make super admins, nor take over an account that signs in here.
    let (status, problem) = post(&app, &secret, "/v1/connect-sessions", &session_for("boss", "super_admin")).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("end_user.role")), "{problem}");
    let mut takeover = session_for("mallory", "admin");
    takeover["end_user"]["email"] = json!("admin@demo.test");
    let (status, _) = post(&app, &secret, "/v1/connect-sessions", &takeover).await;
    assert_eq!(status, 409);

    // A plain user's panel: their own connections only, no admin or system ones to authorize.
    let mut limited = session_for("plain", "user");
    limited["components"] = json!(["no_such_component"]);
    let (status, problem) = post(&app, &secret, "/v1/connect-sessions", &limited).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("components")), "{problem}");
    let token = connect(&app, &secret, &session_for("plain", "user")).await;
    let (frame, _) = exchange(&app, &token).await;
    let panel: Vec<Value> =
        app.json(&frame, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
    let links: Vec<&str> = panel.iter().map(|c| c["link_name"].as_str().unwrap()).collect();
    assert!(links.contains(&"my_crm"), "{links:?}");
    assert!(!links.contains(&"sales_crm") && !links.contains(&"crm_system"), "{links:?}");
    let (status, _) = app.authorize_fails(&frame, "crm_system", &api_key_auth("Mine", "k")).await;
    assert_eq!(status, 403);
    let (status, _) = app.authorize_fails(&frame, "sales_crm", &api_key_auth("Mine", "k")).await;
    assert_eq!(status, 403);

    // The same through the API, as that end user; an admin end user sees the admin connections.
    let (_, list) = get(&app, &secret, "/v1/connections?user=plain").await;
    let types: Vec<&str> = list["data"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert!(!types.is_empty() && types.iter().all(|t| *t == "user"), "{types:?}");
    connect(&app, &secret, &session_for("boss", "admin")).await;
    let (_, list) = get(&app, &secret, "/v1/connections?user=boss&type=admin").await;
    assert!(!list["data"].as_array().unwrap().is_empty(), "{list}");
    let (status, problem) = get(&app, &secret, "/v1/connections?user=nobody").await;
    assert_eq!(status, 404, "{problem}");
}

#[tokio::test]
async fn retries_with_one_idempotency_key_create_one_session() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let secret = key(&app, &admin, "connect_sessions").await;
    let body = session_for("idem", "user");
    let send = |body: Value| {
        v1(&app, &secret, reqwest::Method::POST, "/v1/connect-sessions")
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let retry = send(body.clone()).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(first["token"], retry["token"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM connect_sessions").await, 1);
    // The kept answer holds a token: stored encrypted.
    let plain = app
        .count(&format!(
            "SELECT COUNT(*) FROM api_idempotency WHERE answer_ct LIKE '%{}%'",
            &first["token"].as_str().unwrap()[4..]
        ))
        .await;
    assert_eq!(plain, 0);

    let mut other = body.clone();
    other["end_user"]["id"] = json!("someone-else");
    let res = send(other).await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(app.count("SELECT COUNT(*) FROM connect_sessions").await, 1);
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    let (mut settings, dir) = common::settings().await;
    settings.api_requests_per_minute = 3;
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let secret = key(&app, &admin, "connections:read").await;
    let other = key(&app, &admin, "connections:read").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    // Eight requests within a minute or two windows: at most six fit, so one is refused.
    for _ in 0..8 {
        let res = v1(&app, &secret, reqwest::Method::GET, "/v1/operations?limit=1").send().await.unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "{retry_after:?}");
    // Another key has its own budget.
    assert_eq!(get(&app, &other, "/v1/operations?limit=1").await.0, 200);
}

#[tokio::test]
async fn the_backend_calls_a_service_as_its_end_user() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let secret = key(&app, &admin, "connect_sessions invoke").await;
    let reader = key(&app, &admin, "connections:read").await;
    connect(&app, &secret, &session_for("caller", "user")).await;
    let weather = |user: &str| {
        json!({"user": user, "application": "field_service", "method": "GET",
               "url": sandbox.endpoint("/api/weather?city=Chennai")})
    };

    // Not authorized yet: 428, naming the connection the host should open the panel for.
    let (status, problem) = post(&app, &secret, "/v1/connections/weather/invoke", &weather("caller")).await;
    assert_eq!(status, 428, "{problem}");
    assert_eq!(problem["connection"], "weather");
    assert_eq!(problem["type"], "tag:connections-manager,2026:problems/authorization-required");

    app.authorize(&admin, "weather", &api_key_auth("Key", "sandbox-weather-key")).await;
    let (status, answer) = post(&app, &secret, "/v1/connections/weather/invoke", &weather("caller")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], 200);
    assert!(answer["body"].as_str().unwrap().contains("Chennai"), "{answer}");
    assert!(!answer.to_string().contains("sandbox-weather-key"));

    // Elsewhere than the connector's origin: refused by the same rules as the components.
    let mut away = weather("caller");
    away["url"] = json!("http://127.0.0.1:1/api/weather");
    let (status, problem) = post(&app, &secret, "/v1/connections/weather/invoke", &away).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("url")), "{problem}");
    assert_eq!(post(&app, &secret, "/v1/connections/weather/invoke", &weather("nobody")).await.0, 404);
    // Without the invoke scope: 403.
    assert_eq!(post(&app, &reader, "/v1/connections/weather/invoke", &weather("caller")).await.0, 403);
    // A malformed body is a problem too.
    let res = v1(&app, &secret, reqwest::Method::POST, "/v1/connections/weather/invoke")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_served_routes() {
    let app = common::spawn().await;
    let doc: Value = common::http().get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            // Every documented route is served (and guarded): 401, not 404 or 405.
            let url = app.url(&path.replace("{link_name}", "my_crm"));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = common::http().request(m, url).json(&json!({})).send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {path}");
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "GET /v1/connections",
            "GET /v1/connections/{link_name}",
            "GET /v1/operations",
            "POST /v1/connect-sessions",
            "POST /v1/connections/{link_name}/invoke",
        ]
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // Anything else under /v1 is a problem, not the application's HTML.
    let res = common::http().get(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.headers()["content-type"].to_str().unwrap()),
        (404, "application/problem+json")
    );
    let page = common::http().get(app.url("/v1/docs")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("POST /v1/connect-sessions") && page.contains("problems/rate-limited"), "{page}");
}
