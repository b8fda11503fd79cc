#![recursion_limit = "512"]
//! Wiring only: state from settings, the router with its layers, and serving with graceful
//! shutdown. Domain code lives in the `app` crate.

use anyhow::Context as _;
use app::ssr::crypto::Cipher;
use app::ssr::db::Db;
use app::ssr::outbound::{Allowlist, Outbound};
use app::ssr::sessions::Store;
use app::ssr::settings::Settings;
use app::ssr::state::AppState;
use app::ssr::workers::Workers;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub mod telemetry;

/// Everything the router needs, built once at start-up.
pub struct Built {
    pub state: AppState,
    pub sessions: Store,
}

/// Connects to the database, loads the encryption key, checks it against stored credentials,
/// and seeds the demo workspace when asked.
pub async fn build(settings: Settings) -> anyhow::Result<Built> {
    let allowlist = Allowlist::parse(&settings.outbound_allowlist).map_err(|e| anyhow::anyhow!(e))?;
    let outbound = Outbound::new(allowlist).context("could not build the outbound HTTP client")?;
    let url = settings.database_url();
    // The session store creates its table before the application's pool reads the schema:
    // on SQLite, a connection that read the schema before another one changed it fails its
    // next write to `connections` once (its triggers reach the FTS5 search index,
    // migration 0016, which reloads the schema in the middle of the statement).
    let sessions = Store::connect(&url).await.context("could not open the session store")?;
    let db = Db::connect(&url).await.context("could not open the database")?;
    let cipher = load_cipher(&settings)?;
    app::ssr::keys::ensure_configured(&db, &cipher).await?;
    check_key(&db, &cipher).await?;
    app::connectors::ssr::sync_catalog(&db, &cipher, &settings.sandbox_url)
        .await
        .map_err(|e| anyhow::anyhow!("could not load the connector catalog: {e}"))?;
    if settings.seed_demo {
        app::ssr::seed::seed_demo(&db).await.map_err(|e| anyhow::anyhow!("could not seed the demo workspace: {e}"))?;
    }
    let leptos_options = LeptosOptions::builder()
        .output_name("connections")
        .site_root(settings.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(settings.listen)
        .hash_files(app::ssr::assets::hashed_names())
        .build();
    let login_hashing = Arc::new(tokio::sync::Semaphore::new(settings.login_hash_concurrency.max(1)));
    let state = AppState::new(app::ssr::state::Shared {
        leptos_options,
        db: db.clone(),
        settings: Arc::new(settings),
        cipher,
        outbound,
        refreshes: Default::default(),
        login_hashing,
        caches: Default::default(),
        operations: app::operations::queue::Queue::new(db.clone()),
        sync_queued: Default::default(),
    });
    Ok(Built { state, sessions })
}

fn load_cipher(settings: &Settings) -> anyhow::Result<Cipher> {
    let version = settings.encryption_key_version;
    if !settings.encryption_keys.is_empty() || settings.encryption_keys_file.is_some() {
        anyhow::ensure!(
            settings.encryption_key.is_none() && settings.encryption_key_file.is_none(),
            "set either CONNECTIONS_ENCRYPTION_KEY(_FILE) or CONNECTIONS_ENCRYPTION_KEYS(_FILE), not both \
             (list the single key as v<version>:<key> among the others)"
        );
        let mut entries: Vec<String> = settings.encryption_keys.clone();
        if let Some(path) = &settings.encryption_keys_file {
            let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
            entries.extend(Cipher::key_file_entries(&text).into_iter().map(str::to_owned));
        }
        entries.retain(|e| !e.trim().is_empty());
        return Cipher::from_entries(version, &entries).context(
            "the encryption keys (CONNECTIONS_ENCRYPTION_KEYS / CONNECTIONS_ENCRYPTION_KEYS_FILE) are not usable",
        );
    }
    if let Some(key) = &settings.encryption_key {
        return Cipher::from_base64(version, key).context("CONNECTIONS_ENCRYPTION_KEY is not usable");
    }
    if let Some(path) = &settings.encryption_key_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
        return Cipher::from_base64(version, &text)
            .with_context(|| format!("the key in {} is not usable", path.display()));
    }
    if settings.generate_key {
        let path = settings.data_dir.join("encryption.key");
        return Cipher::load_or_generate(version, &path)
            .with_context(|| format!("could not create {}", path.display()))?
            .with_context(|| format!("the key in {} is not usable", path.display()));
    }
    anyhow::bail!(
        "no encryption key: set CONNECTIONS_ENCRYPTION_KEY (32 bytes, base64) or CONNECTIONS_ENCRYPTION_KEY_FILE, \
         or pass --generate-key for a demo"
    )
}

use app::ssr::keys::KEY_CHECK_AAD;

/// `server keys status`: stored values per table and key version, from the database the
/// settings name, judged against the keys they configure (if any; none is generated).
pub async fn keys_status(settings: &Settings) -> anyhow::Result<app::ssr::keys::KeyStatus> {
    let db = Db::connect(&settings.database_url()).await.context("could not open the database")?;
    let configured = settings.encryption_key.is_some()
        || settings.encryption_key_file.is_some()
        || !settings.encryption_keys.is_empty()
        || settings.encryption_keys_file.is_some()
        || (settings.generate_key && settings.data_dir.join("encryption.key").exists());
    let cipher = if configured { Some(load_cipher(settings)?) } else { None };
    Ok(app::ssr::keys::KeyStatus::load(&db, cipher.as_ref()).await?)
}

/// Refuses to start with a key that cannot read what is stored.
async fn check_key(db: &Db, cipher: &Cipher) -> anyhow::Result<()> {
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM server_facts WHERE name = 'key_check'").fetch_optional(&db.pool).await?;
    match stored {
        Some(blob) => {
            cipher.decrypt(KEY_CHECK_AAD, &blob).map_err(|e| {
                anyhow::anyhow!(
                    "the configured encryption key cannot read the stored credentials ({e}); refusing to start"
                )
            })?;
        }
        None => {
            let accounts: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM authorized_accounts").fetch_one(&db.pool).await?;
            anyhow::ensure!(accounts == 0, "credentials exist but no key check is stored; refusing to start");
            sqlx::query("INSERT INTO server_facts (name, value) VALUES ('key_check', $1)")
                .bind(cipher.encrypt(KEY_CHECK_AAD, b"ok"))
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(())
}

/// The Prometheus recorder is process-wide; it is installed once.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // A recorder may already be installed (e.g. by a test harness); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Starts the background workers: revocation retries, the sync worker, interrupted-refresh
/// recovery, re-encryption to the primary key (only while an older key is configured) and the
/// removal of expired sessions, keep-alive refreshes. `main` starts them beside [`router`] (building the router starts
/// nothing) and stops them with [`Workers::shutdown`] once [`serve`] has returned.
pub fn start_workers(built: &Built) -> Workers {
    use app::sync::ssr::SyncWorker;
    use tower_sessions::session_store::ExpiredDeletion;
    let secs = std::time::Duration::from_secs;
    let state = built.state.clone();
    let mut workers = Workers::new();
    workers.every("revocation retries", secs(5), secs(5), state.clone(), |state| async move {
        app::revocations::ssr::retry_due(&state).await.map(drop)
    });
    let sync = (state.clone(), Arc::new(SyncWorker::default()));
    workers.every_or_woken(
        "sync",
        secs(0),
        app::sync::ssr::TICK,
        Some(state.sync_queued.clone()),
        sync,
        |(state, worker)| async move { worker.tick(&state).await },
    );
    workers.every("refresh recovery", secs(5), secs(5), state.clone(), |state| async move {
        app::authorizations::ssr::recover_interrupted(&state).await.map(drop)
    });
    workers.every("keep-alive", secs(30), secs(60), state.clone(), |state| async move {
        app::authorizations::ssr::keepalive_pass(&state, app::ssr::ids::now_ms()).await.map(drop)
    });
    workers.every("API housekeeping", secs(60), secs(600), state.clone(), |state| async move {
        app::platform::v1::guard::housekeeping(&state).await
    });
    workers.every("webhook deliveries", secs(1), app::webhooks::delivery::TICK, state.clone(), |state| async move {
        app::webhooks::delivery::deliver_due(&state, app::ssr::ids::now_ms()).await.map(drop)
    });
    workers.every("webhook housekeeping", secs(120), secs(3600), state.clone(), |state| async move {
        app::webhooks::delivery::housekeeping(&state, app::ssr::ids::now_ms()).await
    });
    if app::ssr::keys::needs_reencryption(&state.cipher) {
        workers.every("re-encryption", secs(1), app::ssr::keys::PASS_INTERVAL, state, |state| async move {
            app::ssr::keys::reencryption_pass(&state.db, &state.cipher).await
        });
    }
    workers.every("expired sessions", secs(60), secs(600), built.sessions.clone(), |store| async move {
        store.delete_expired().await
    });
    workers
}

/// How hard answers made per request are compressed: quality 4, not the codecs' default
/// (brotli's is 11, its slowest, meant for files compressed once). The bench's compressed panel
/// row shows what compressing still costs a small answer (mostly setting up the encoder).
pub const COMPRESSION: CompressionLevel = CompressionLevel::Precise(4);

/// The application's page routes, generated once per process. While Leptos generates them it
/// stops every resource *in the process* from loading (a process-wide flag), and a resource first
/// polled meanwhile never loads (leptos-rs/leptos#4773): a page that another router of the same
/// process (the tests build many) was rendering then never finished. Generated once, before the
/// first router serves, nothing can render during it.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// The whole application: pages, server functions, health, metrics and static files.
pub fn router(built: Built) -> Router {
    let Built { state, sessions } = built;
    let settings = state.settings.clone();
    let routes = route_list();
    let metrics = metrics_handle();

    // With --metrics-listen, /metrics is served there only ([`spawn_metrics_listener`]).
    let on_main = settings.metrics_listen.is_none();
    let metrics_routes: Router<AppState> = if on_main { metrics_router(&settings, metrics) } else { Router::new() };

    Router::new()
        .route("/healthz", get(healthz))
        .route("/favicon.ico", get(|| async { axum::response::Redirect::permanent("/favicon.svg") }))
        .merge(metrics_routes)
        .route("/oauth/callback", get(app::authorizations::ssr::callback_handler))
        .route("/oauth/ended", get(app::authorizations::ssr::ended_handler))
        .route("/embed.js", get(app::embed::ssr::script))
        .route("/embed-example", get(app::embed::ssr::example_page))
        // The client's files, sent as precompressed by `scripts/precompress.mjs` (brotli at
        // quality 11, gzip) where those exist; otherwise the compression layer compresses them.
        .nest_service(
            "/pkg",
            ServeDir::new(std::path::Path::new(settings.site_root.as_str()).join("pkg"))
                .precompressed_br()
                .precompressed_gzip(),
        )
        .route("/embed/{app}/session", get(app::platform::connect_sessions::exchange_handler))
        .merge(app::platform::v1::router())
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(middleware::from_fn_with_state(state.clone(), app::embed::ssr::frame_headers))
        .layer(middleware::from_fn_with_state(state.clone(), app::ssr::cache::invalidate_on_writes))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .layer(sessions.layer(&settings))
        .layer(middleware::from_fn(app::ssr::sessions::partition_session_cookie))
        .layer(middleware::from_fn_with_state(
            app::ssr::sessions::OwnOrigin(settings.public_origin().into()),
            app::ssr::sessions::refuse_cross_site_writes,
        ))
        // Brotli or gzip, as the browser accepts: pages and server-function answers (the client's
        // files come precompressed from /pkg), at [`COMPRESSION`].
        .layer(CompressionLayer::new().br(true).gzip(true).quality(COMPRESSION))
        .layer(middleware::from_fn(app::ssr::assets::cache_headers))
        .layer(middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// Who may read `/metrics`: everyone, or with `--metrics-token` only `Bearer <token>`.
#[derive(Clone)]
struct MetricsAccess {
    handle: PrometheusHandle,
    token: Option<Arc<str>>,
}

/// `/metrics` alone, guarded by the token when one is set.
fn metrics_router<S: Clone + Send + Sync + 'static>(settings: &Settings, handle: PrometheusHandle) -> Router<S> {
    let access = MetricsAccess { handle, token: settings.metrics_token.as_deref().map(Arc::from) };
    Router::new().route("/metrics", get(render_metrics)).with_state(access)
}

async fn render_metrics(State(access): State<MetricsAccess>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &access.token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same_secret(given.as_bytes(), token.as_bytes()) {
            return (StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, "Bearer")], "unauthorized")
                .into_response();
        }
    }
    access.handle.render().into_response()
}

/// Compares without stopping at the first difference (the token's length is not secret).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// With `--metrics-listen`, binds that address and serves `/metrics` there (and only there);
/// returns the bound address. Call before [`serve`]; a bind failure stops start-up.
pub async fn spawn_metrics_listener(settings: &Settings) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(addr) = settings.metrics_listen else { return Ok(None) };
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("could not listen on {addr} for metrics"))?;
    let bound = listener.local_addr()?;
    let app: Router = metrics_router(settings, metrics_handle());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(Some(bound))
}

/// Labels come from closed sets only, so `/metrics` stays bounded whatever clients send: the
/// route template (never the raw path; anything no route matched is `unmatched`) and the
/// method (non-standard ones are `other`).
async fn record_metrics(req: Request, next: Next) -> Response {
    use axum::http::Method;
    let start = Instant::now();
    let path =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
    .to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
/// The peer address is handed to handlers (`ConnectInfo`) for sign-in throttling.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
