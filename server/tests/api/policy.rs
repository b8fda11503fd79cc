//! Credentials leave the server only as policy allows: a raw call (method and URL of the
//! caller's choosing) is for builders; everyone else reaches a service through the components
//! builders wrote, in production. Every refusal is in Operations.

use crate::common;

use app::error::AppError;
use app::invoke::InvokeRequest;
use common::fixtures::{api_key_auth, Authorization};
use common::TestApp;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// One request the upstream received: method, path with query, the API key header, its
/// content type and body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    key: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A stand-in for the third party: counts what reaches it and answers a list of records.
struct Upstream {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let log = log.clone();
            async move {
                let (parts, body) = req.into_parts();
                let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (key, content_type) = (header("x-api-key"), header("content-type"));
                let (method, target) = (parts.method.to_string(), parts.uri.to_string());
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let body = String::from_utf8_lossy(&body).into_owned();
                log.lock().unwrap().push(Seen { method, target, key, content_type, body });
                axum::Json(json!({"data": [{"id": "R-1", "name": "First record"}]}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Upstream { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

const PROD_KEY: &str = "prod-admin-key-5d1f";
const DEV_KEY: &str = "dev-admin-key-a2c9";

/// The app (demo workspace) with the upstream allowlisted, and an admin API-key connection
/// `vault` to it (usable by Field Service, one key per environment) that the admin authorized
/// for Production and Development.
async fn setup() -> (TestApp, Upstream, reqwest::Client) {
    let upstream = Upstream::start().await;
    let (mut settings, dir) = common::settings().await;
    settings.outbound_allowlist = vec![upstream.addr.to_string()];
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let created: Value = app
        .json(
            &admin,
            "create_custom_connector",
            &[
                ("input[name]", "Vault Service"),
                ("input[auth_type]", "api_key"),
                ("input[key_name]", "X-Api-Key"),
                ("input[api_base]", &upstream.url("")),
            ],
        )
        .await;
    let connector = created["id"].as_i64().expect("connector id").to_string();
    let conn: Value = app
        .json(
            &admin,
            "create_connection",
            &[
                ("input[connector_id]", connector.as_str()),
                ("input[display_name]", "Vault"),
                ("input[same_for_all_envs]", "false"),
                ("input[conn_type]", "admin"),
            ],
        )
        .await;
    assert_eq!(conn["link_name"], "vault");
    app.enable_access(&admin, "vault", "field_service").await;
    for (env, key) in [("Production", PROD_KEY), ("Development", DEV_KEY)] {
        let auth = Authorization { environments: &[env], ..api_key_auth(env, key) };
        app.authorize(&admin, "vault", &auth).await;
    }
    (app, upstream, admin)
}

async fn raw_invoke(app: &TestApp, c: &reqwest::Client, method: &str, url: &str, env: &str) -> reqwest::Response {
    app.call(
        c,
        "invoke_url",
        &[
            ("request[app]", "field_service"),
            ("request[connection]", "vault"),
            ("request[method]", method),
            ("request[url]", url),
            ("request[environment]", env),
        ],
    )
    .await
}

/// A plain user's raw call over the admin's connection is refused before anything reaches the
/// service; builders' calls go through, in the environment they pick. The refusal is in
/// Operations without the URL's query string or any key.
#[tokio::test]
async fn raw_invoke_is_for_builders_only() {
    let (app, upstream, admin) = setup().await;
    let user = app.signed_in("user@demo.test").await;
    let target = upstream.url("/records/7?token=query-secret");

    let res = raw_invoke(&app, &user, "DELETE", &target, "Development").await;
    let status = res.status().as_u16();
    let e: AppError = serde_json::from_str(&res.text().await.unwrap()).expect("AppError body");
    assert_eq!(status, 403, "{e:?}");
    assert!(matches!(e, AppError::Forbidden(ref m) if m.contains("Only super admins, admins and developers")), "{e:?}");
    // Also with the production default: still refused.
    let res = app
        .call(
            &user,
            "invoke_url",
            &[
                ("request[app]", "field_service"),
                ("request[connection]", "vault"),
                ("request[method]", "GET"),
                ("request[url]", &target),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(upstream.seen().is_empty(), "the service was reached: {:?}", upstream.seen());

    // A builder's "Test" reaches it, with the key of the environment the builder picked.
    let dev = app.signed_in("developer@demo.test").await;
    let res = raw_invoke(&app, &dev, "DELETE", &upstream.url("/records/7"), "Development").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].method.as_str(), seen[0].key.as_deref()), ("DELETE", Some(DEV_KEY)));

    // The refusals are in Operations: who tried what, never the query string or a key.
    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let denied: Vec<&Value> = ops
        .iter()
        .filter(|o| o["kind"] == "access_denied" && o["detail"].as_str().unwrap_or("").contains("raw call"))
        .collect();
    assert_eq!(denied.len(), 2, "{ops:#?}");
    for o in &denied {
        let detail = o["detail"].as_str().unwrap();
        assert!(detail.contains("user@demo.test") && detail.contains("vault"), "{detail}");
        assert!(!detail.contains("query-secret") && !detail.contains("token="), "{detail}");
        assert_eq!(o["level"], "warn");
    }
    let all = serde_json::to_string(&ops).unwrap();
    assert!(!all.contains(PROD_KEY) && !all.contains(DEV_KEY));
}

/// A component a builder wrote over the admin connection works for a plain user once the admin
/// authorized it, and always in production, whatever environment the request names.
#[tokio::test]
async fn plain_users_use_admin_connections_through_components_in_production() {
    let (app, upstream, admin) = setup().await;
    let pool = &app.state.db.pool;
    let field: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE link_name = 'field_service'")
        .fetch_one(pool)
        .await
        .unwrap();
    let definition =
        json!({"panels": [{"title": "Vault records", "invoke": {"connection": "vault", "url": "{api_base}/records"}}]});
    let component: i64 = sqlx::query_scalar(
        "INSERT INTO components (application_id, kind, name, link_name, definition)
         VALUES ($1, 'page', 'Vault Page', 'vault_page', $2) RETURNING id",
    )
    .bind(field)
    .bind(definition.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    let uma: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'user@demo.test'").fetch_one(pool).await.unwrap();
    sqlx::query("INSERT INTO component_connections (component_id, connection_id) VALUES ($1, $2)")
        .bind(component)
        .bind(app.connection_id("vault").await)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO component_permissions (component_id, user_id) VALUES ($1, $2)")
        .bind(component)
        .bind(uma)
        .execute(pool)
        .await
        .unwrap();

    let user = app.signed_in("user@demo.test").await;
    let out: Value = app
        .json(
            &user,
            "run_component",
            &[("app", "field_service"), ("component", "vault_page"), ("environment", "Development")],
        )
        .await;
    assert_eq!(out["sections"][0]["rows"][0][0], "R-1", "{out}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("GET", "/records"));
    assert_eq!(seen[0].key.as_deref(), Some(PROD_KEY), "a plain user's component runs in production");

    // The call path itself ignores a plain user's environment, whoever asks for it.
    let uma_user = app::auth::ssr::user_by_id(&app.state, uma).await.unwrap().unwrap();
    let request = InvokeRequest {
        app: "field_service".into(),
        connection: "vault".into(),
        method: "GET".into(),
        url: upstream.url("/records"),
        environment: Some(app::domain::Environment::Development),
        ..Default::default()
    };
    let res = app::invoke::ssr::call(&app.state, &uma_user, app::invoke::ssr::Purpose::Component, request)
        .await
        .expect("component call");
    assert_eq!(res.status, 200);
    assert_eq!(upstream.seen()[1].key.as_deref(), Some(PROD_KEY));

    // Both calls are logged as production calls by the user.
    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let calls: Vec<&Value> = ops.iter().filter(|o| o["kind"] == "invoke_url").collect();
    assert_eq!(calls.len(), 2, "{ops:#?}");
    assert!(calls.iter().all(|o| o["environment"] == "production"), "{calls:#?}");
}

/// A script's steps send what they say: Test runs a POST step with its JSON body in Development
/// (as the builder), saved steps keep them, and a PATCH panel runs in live mode with production's key.
#[tokio::test]
async fn script_steps_send_their_method_and_json_body() {
    let (app, upstream, admin) = setup().await;
    let args = |text: &'static str| [("app", "field_service"), ("component", "recent_charges"), ("text", text)];
    let text = "Create: POST vault {api_base}/records {\"name\": \"New record\", \"tags\": [1, 2]}\n\
                Drop: DELETE vault {api_base}/records/R-1\n";
    let answered = |test: app::scripts::StepTest| match test {
        app::scripts::StepTest::Answered(out) => out,
        other => panic!("expected the service's answer, got {other:?}"),
    };
    let out = answered(app.json(&admin, "test_script_step", &[args(text).as_slice(), &[("step", "0")]].concat()).await);
    assert_eq!(out.status, 200, "{}", out.body);
    let seen = upstream.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("POST", "/records"));
    assert_eq!(seen[0].key.as_deref(), Some(DEV_KEY));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    let sent: Value = serde_json::from_str(&seen[0].body).expect("a JSON body");
    assert_eq!(sent, json!({"name": "New record", "tags": [1, 2]}));
    let out = answered(app.json(&admin, "test_script_step", &[args(text).as_slice(), &[("step", "1")]].concat()).await);
    assert_eq!(out.status, 200, "{}", out.body);
    let seen = upstream.seen();
    assert_eq!(
        (seen[1].method.as_str(), seen[1].target.as_str(), seen[1].body.as_str()),
        ("DELETE", "/records/R-1", "")
    );

    // Saved, the steps keep their method and body; the editor reads them back as written.
    let saved = "Update: PATCH vault {api_base}/records/R-1 {\"name\":\"Renamed\"}\n";
    let res = app.call(&admin, "save_script", &args(saved)).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let script: app::scripts::ScriptView =
        app.json(&admin, "get_script", &[("app", "field_service"), ("component", "recent_charges")]).await;
    assert_eq!(script.text, saved);

    // A page whose panel is that PATCH step, opened in live mode: production's key.
    let pool = &app.state.db.pool;
    let definition = json!({"panels": [{"title": "Renamed", "invoke": {"connection": "vault", "method": "PATCH",
        "url": "{api_base}/records/R-1", "body": {"name": "Renamed"}}}]});
    let component: i64 = sqlx::query_scalar(
        "INSERT INTO components (application_id, kind, name, link_name, definition)
         SELECT id, 'page', 'Rename Page', 'rename_page', $1 FROM applications WHERE link_name = 'field_service'
         RETURNING id",
    )
    .bind(definition.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO component_connections (component_id, connection_id) VALUES ($1, $2)")
        .bind(component)
        .bind(app.connection_id("vault").await)
        .execute(pool)
        .await
        .unwrap();
    let out: Value = app.json(&admin, "run_component", &[("app", "field_service"), ("component", "rename_page")]).await;
    assert_eq!(out["sections"][0]["rows"][0][0], "R-1", "{out}");
    let last = upstream.seen().pop().expect("the panel's call");
    assert_eq!((last.method.as_str(), last.target.as_str()), ("PATCH", "/records/R-1"));
    assert_eq!(last.key.as_deref(), Some(PROD_KEY));
    assert_eq!(serde_json::from_str::<Value>(&last.body).unwrap(), json!({"name": "Renamed"}));
}
