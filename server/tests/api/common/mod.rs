//! Test harness: the real router on port 0 with a fresh database — a SQLite file in a temp
//! directory by default, or a new database on the Postgres server named by
//! `TEST_DATABASE_URL` (the test command starts a throwaway cluster and sets it).
#![allow(dead_code)]

pub mod fixtures;
pub mod process;
pub mod sandbox;
pub mod watchdog;

use app::ssr::crypto::Cipher;
use app::ssr::settings::Settings;
use app::ssr::AppState;
use std::net::SocketAddr;

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub settings: Settings,
    /// The background workers, as `main` starts them (dropped with the test, or stopped by
    /// [`TestApp::stop_workers`]).
    workers: Option<app::ssr::workers::Workers>,
    _dir: tempfile::TempDir,
    _watched: watchdog::Watched,
}

/// `invoke_url` on the server at `base` as `client`: a GET of `url` over connection `conn` for
/// application `application`, the way a component's script calls it.
pub async fn invoke_at(
    base: &str,
    client: &reqwest::Client,
    application: &str,
    conn: &str,
    url: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/invoke_url"))
        .form(&[
            ("request[app]", application),
            ("request[connection]", conn),
            ("request[method]", "GET"),
            ("request[url]", url),
        ])
        .send()
        .await
        .expect("invoke_url request")
}

/// A plain HTTP client for the tests' own calls; a request that hangs fails its test after
/// 120 s instead of holding the run.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).build().expect("client")
}

/// A fresh database URL: SQLite in `dir`, or a new Postgres database.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!("cm_test_{}", app::ssr::ids::random_token(12).to_lowercase());
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to TEST_DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
            let (base, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL has a database name");
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/test.db?mode=rwc", dir.display()),
    }
}

pub fn is_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").map(|v| !v.is_empty()).unwrap_or(false)
}

/// Every log line at every level while [`capture_logs`] is on (the canary test reads it).
static CAPTURED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
static CAPTURING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Clone, Copy)]
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logs go to the test's captured output (shown for failing tests); while [`capture_logs`] is
/// on, every line at every level is also kept in memory. One subscriber for the whole binary.
pub fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{filter, fmt, EnvFilter, Layer};
    let to_test_output =
        fmt::layer().with_test_writer().with_filter(EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let to_memory = fmt::layer()
        .with_ansi(false)
        .with_writer(|| Capture)
        .with_filter(filter::dynamic_filter_fn(|_, _| CAPTURING.load(std::sync::atomic::Ordering::Relaxed)));
    let _ = tracing_subscriber::registry().with(to_test_output).with(to_memory).try_init();
}

/// Starts keeping every log line of this binary (all tests running meanwhile included).
pub fn capture_logs() {
    init_logs();
    CAPTURING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What was logged since [`capture_logs`].
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

pub async fn settings() -> (Settings, tempfile::TempDir) {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database(dir.path()).await;
    let mut s = Settings::for_tests(&url, dir.path().to_path_buf());
    s.encryption_key = Some(Cipher::generate_key());
    s.seed_demo = true;
    s.sandbox_url = "http://127.0.0.1:9".into();
    (s, dir)
}

/// The app with its built-in sandbox connectors pointing at `sandbox`.
pub async fn spawn_with_sandbox(sandbox: &sandbox::Sandbox) -> TestApp {
    spawn_with_sandbox_allowing(sandbox, &[]).await
}

/// The same, with more loopback services of the test (`host:port`) on the outbound allowlist.
pub async fn spawn_with_sandbox_allowing(sandbox: &sandbox::Sandbox, also: &[SocketAddr]) -> TestApp {
    let (mut settings, dir) = settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.outbound_allowlist = vec![sandbox.url.trim_start_matches("http://").to_string()];
    settings.outbound_allowlist.extend(also.iter().map(|a| a.to_string()));
    spawn_with(settings, dir).await
}

pub async fn spawn() -> TestApp {
    let (settings, dir) = settings().await;
    spawn_with(settings, dir).await
}

pub async fn spawn_with(mut settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    settings.listen = addr;
    // A test may give its own public URL (e.g. `https://…` to see the cookies sent then).
    settings.public_url.get_or_insert_with(|| format!("http://{addr}"));
    let built = server::build(settings.clone()).await.expect("build app");
    let state = built.state.clone();
    let workers = server::start_workers(&built);
    let router = server::router(built);
    tokio::spawn(server::serve(listener, router));
    TestApp { addr, state, settings, workers: Some(workers), _dir: dir, _watched: watchdog::watch() }
}

/// Another server process's worth of state (own pools, own caches) on the same database:
/// a replica behind the same load balancer.
pub async fn spawn_replica(first: &TestApp) -> (SocketAddr, AppState) {
    let mut settings = first.settings.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    settings.listen = addr;
    settings.public_url = Some(format!("http://{addr}"));
    let built = server::build(settings).await.expect("build replica");
    let state = built.state.clone();
    let workers = server::start_workers(&built);
    let router = server::router(built);
    // The replica's workers live as long as it serves (the test's runtime).
    tokio::spawn(async move {
        let _ = server::serve(listener, router).await;
        workers.shutdown().await;
    });
    (addr, state)
}

impl TestApp {
    /// Stops this server's background workers (it keeps serving requests), as if its worker
    /// process had stopped: another process's workers take over.
    pub async fn stop_workers(&mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A browser-like client with its own cookie jar.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            // A request that hangs fails its test with the URL instead of holding the run.
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .expect("client")
    }

    /// Calls a server function the way the WASM client does (url-encoded args, JSON answer).
    pub async fn call(&self, client: &reqwest::Client, name: &str, args: &[(&str, &str)]) -> reqwest::Response {
        client.post(self.url(&format!("/api/{name}"))).form(args).send().await.expect("request")
    }

    /// A client signed in as one of the demo users.
    pub async fn signed_in(&self, email: &str) -> reqwest::Client {
        let c = self.client();
        let res = self.call(&c, "login", &[("email", email), ("password", app::ssr::seed::DEMO_PASSWORD)]).await;
        assert_eq!(res.status(), 200, "sign in as {email}: {}", res.text().await.unwrap_or_default());
        c
    }

    /// Signs one of the demo users in at the server at `base` (this one or a replica): a client
    /// holding the session, and its `Cookie` header for requests made otherwise (wrk, a bare
    /// client).
    pub async fn signed_in_at(&self, base: &str, email: &str) -> (reqwest::Client, String) {
        let c = self.client();
        let res = c
            .post(format!("{base}/api/login"))
            .form(&[("email", email), ("password", app::ssr::seed::DEMO_PASSWORD)])
            .send()
            .await
            .expect("sign in");
        assert_eq!(res.status(), 200, "sign in as {email} at {base}");
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ");
        (c, cookie)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.state.db.pool).await.expect("count")
    }
}

impl TestApp {
    /// Calls a server function and decodes its JSON answer, panicking with the body otherwise.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        client: &reqwest::Client,
        name: &str,
        args: &[(&str, &str)],
    ) -> T {
        let res = self.call(client, name, args).await;
        let status = res.status();
        let body = res.text().await.expect("body");
        assert!(status.is_success(), "{name} answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
    }

    /// Calls a server function that must fail, returning the status and the error.
    pub async fn fails(
        &self,
        client: &reqwest::Client,
        name: &str,
        args: &[(&str, &str)],
    ) -> (u16, app::error::AppError) {
        let res = self.call(client, name, args).await;
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        assert!(status >= 400, "{name} should have failed: {body}");
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}")))
    }

    pub async fn connector_id(&self, client: &reqwest::Client, link: &str) -> i64 {
        let list: Vec<serde_json::Value> = self.json(client, "list_connectors", &[]).await;
        list.iter().find(|c| c["link_name"] == link).unwrap_or_else(|| panic!("no connector {link}"))["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn connection_id(&self, link: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM connections WHERE link_name = $1")
            .bind(link)
            .fetch_one(&self.state.db.pool)
            .await
            .expect("connection id")
    }
}

impl TestApp {
    /// Posts `auth` for the connection `link` as `client` would from the authorize dialog.
    pub async fn authorize_call(
        &self,
        client: &reqwest::Client,
        link: &str,
        auth: &fixtures::Authorization<'_>,
    ) -> reqwest::Response {
        let form = auth.form(self.connection_id(link).await);
        self.call(client, "authorize_connection", &pairs(&form)).await
    }

    /// [`Self::authorize_call`] that must succeed, with its outcome.
    pub async fn authorize(
        &self,
        client: &reqwest::Client,
        link: &str,
        auth: &fixtures::Authorization<'_>,
    ) -> app::authorizations::AuthorizeOutcome {
        let form = auth.form(self.connection_id(link).await);
        self.json(client, "authorize_connection", &pairs(&form)).await
    }

    /// [`Self::authorize_call`] that must fail, with its status and error.
    pub async fn authorize_fails(
        &self,
        client: &reqwest::Client,
        link: &str,
        auth: &fixtures::Authorization<'_>,
    ) -> (u16, app::error::AppError) {
        let form = auth.form(self.connection_id(link).await);
        self.fails(client, "authorize_connection", &pairs(&form)).await
    }
}

/// Borrowed form fields, as [`TestApp::call`] takes them.
pub fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl TestApp {
    /// Lets `app_link` use the connection (Connection Access switch on).
    pub async fn enable_access(&self, admin: &reqwest::Client, connection_link: &str, app_link: &str) {
        let app_id: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE link_name = $1")
            .bind(app_link)
            .fetch_one(&self.state.db.pool)
            .await
            .expect("application");
        let (conn, app_id) = (self.connection_id(connection_link).await.to_string(), app_id.to_string());
        self.json::<()>(
            admin,
            "set_connection_access",
            &[("connection_id", &conn), ("application_id", &app_id), ("enabled", "true")],
        )
        .await;
    }

    /// Creates a custom connector as the builder does.
    pub async fn custom_connector(
        &self,
        admin: &reqwest::Client,
        connector: &app::connectors::CustomConnectorInput,
    ) -> serde_json::Value {
        let form = fixtures::form(connector);
        let args: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.json(admin, "create_custom_connector", &args).await
    }

    /// Creates a custom connector, then an admin connection named `display_name` from it (same
    /// authorization everywhere, with `scopes`), usable by Field Service. Returns the
    /// connection's link name.
    pub async fn custom_connection(
        &self,
        admin: &reqwest::Client,
        connector: &app::connectors::CustomConnectorInput,
        display_name: &str,
        scopes: &[&str],
    ) -> String {
        let created = self.custom_connector(admin, connector).await;
        let cid = created["id"].as_i64().expect("connector id").to_string();
        let mut args: Vec<(String, String)> = vec![
            ("input[connector_id]".into(), cid),
            ("input[display_name]".into(), display_name.into()),
            ("input[same_for_all_envs]".into(), "true".into()),
            ("input[conn_type]".into(), "admin".into()),
        ];
        args.extend(scopes.iter().enumerate().map(|(i, s)| (format!("input[scopes][{i}]"), s.to_string())));
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let conn: serde_json::Value = self.json(admin, "create_connection", &args).await;
        let link = conn["link_name"].as_str().expect("link name").to_string();
        self.enable_access(admin, &link, "field_service").await;
        link
    }

    /// The credentials stored for a shared connection in production, decrypted.
    pub async fn stored_credentials(&self, link: &str) -> app::authorizations::ssr::Credentials {
        let conn =
            app::connections::ssr::load(&self.state, 1, self.connection_id(link).await).await.expect("connection");
        let admin = app::auth::ssr::user_by_id(&self.state, 2).await.expect("user").expect("admin");
        let (_, creds) =
            app::authorizations::ssr::credentials_for(&self.state, &conn, &admin, app::domain::Environment::Production)
                .await
                .expect("credentials")
                .expect("stored");
        creds
    }

    /// Authorizes a shared OAuth2 connection as alice on the sandbox provider (consent allowed,
    /// answer landing in `admin`'s session); returns the stored tokens.
    pub async fn connect_oauth(&self, admin: &reqwest::Client, link: &str) -> (String, Option<String>) {
        use app::authorizations::AuthorizeOutcome;
        let out = self.authorize(admin, link, &fixtures::oauth("Alice")).await;
        let AuthorizeOutcome::Redirect { authorize_url, .. } = out else { panic!("expected a redirect: {out:?}") };
        let consent = sandbox::authorize_in_browser(&authorize_url, "alice", "alice-password", true).await;
        let page = admin.get(consent.callback_url.clone()).send().await.expect("callback").text().await.expect("page");
        assert!(page.contains("Connected"), "{page}");
        self.oauth_tokens(link).await
    }

    /// The OAuth2 tokens stored for a shared connection in production, whatever its status.
    pub async fn oauth_tokens_any(&self, link: &str) -> (String, Option<String>) {
        let (id, ct): (i64, Vec<u8>) = sqlx::query_as(
            "SELECT a.id, a.credentials_ct FROM connection_authorizations ca
             JOIN authorized_accounts a ON a.id = ca.account_id
             WHERE ca.connection_id = $1 AND ca.environment = 'production' AND ca.subject_user_id = 0",
        )
        .bind(self.connection_id(link).await)
        .fetch_one(&self.state.db.pool)
        .await
        .expect("an account");
        let plain = self.state.cipher.decrypt(&app::authorizations::ssr::account_aad(id), &ct).expect("decrypt");
        match serde_json::from_slice(&plain).expect("credentials") {
            app::authorizations::ssr::Credentials::OAuth2 { access_token, refresh_token, .. } => {
                (access_token, refresh_token)
            }
            other => panic!("not OAuth2: {other:?}"),
        }
    }

    /// The OAuth2 access and refresh tokens stored for a shared connection.
    pub async fn oauth_tokens(&self, link: &str) -> (String, Option<String>) {
        match self.stored_credentials(link).await {
            app::authorizations::ssr::Credentials::OAuth2 { access_token, refresh_token, .. } => {
                (access_token, refresh_token)
            }
            other => panic!("not OAuth2: {other:?}"),
        }
    }
}

/// A value bound to a query whose plan is read ([`TestApp::sqlite_plan`]).
pub enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

impl TestApp {
    /// SQLite's plan for `sql` with `binds` (`$1`, `$2`, … in order): one line per step.
    pub async fn sqlite_plan(&self, sql: &str, binds: &[Bind<'_>]) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(*text),
                Bind::Int(n) => query.bind(*n),
            };
        }
        query.fetch_all(&self.state.db.pool).await.expect("plan").into_iter().map(|(.., step)| step).collect()
    }

    /// Adds connections `Bench <i>` / `bench_<i>` for each `i` in `range` to workspace 1, copied
    /// from `sales_crm` (every third one a logged-in-user connection), in one transaction. For
    /// the scale tests and benchmarks.
    pub async fn add_connections(&self, range: std::ops::Range<usize>) {
        let mut tx = self.state.db.pool.begin().await.expect("tx");
        for start in range.clone().step_by(200) {
            let end = (start + 200).min(range.end);
            let values: Vec<String> = (start..end)
                .map(|i| format!("('Bench {i:06}', 'bench_{i:06}', '{}')", ["user", "admin", "admin"][i % 3]))
                .collect();
            let sql = format!(
                "WITH v(name, link, kind) AS (VALUES {})
                 INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, created_at)
                 SELECT s.workspace_id, s.connector_id, v.name, v.link, v.kind, s.created_at
                 FROM connections s, v WHERE s.link_name = 'sales_crm'",
                values.join(",")
            );
            sqlx::query(&sql).execute(&mut *tx).await.expect("insert");
        }
        tx.commit().await.expect("commit");
    }
}
