//! Typed settings, loaded once from flags and environment. `server --help` lists them all.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Parser)]
#[command(name = "server", about = "The connections manager: web app, server functions and OAuth callbacks.")]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Public base URL browsers use to reach this server (used for OAuth redirect URIs).
    /// Defaults to http://<listen>.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Database URL: `sqlite://path/to/file.db` or `postgres://user@host:port/db`.
    /// Defaults to a SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for the SQLite file and the generated demo key.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The credentials encryption key: 32 bytes, base64-encoded.
    #[arg(long, env = "CONNECTIONS_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// A file holding the base64 encryption key (alternative to --encryption-key).
    #[arg(long, env = "CONNECTIONS_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<PathBuf>,

    /// Several keys at once, while rotating: `v1:<base64>,v2:<base64>` (instead of
    /// --encryption-key). Every listed version can be read; new values use --encryption-key-version.
    #[arg(long, env = "CONNECTIONS_ENCRYPTION_KEYS", hide_env_values = true, value_delimiter = ',')]
    pub encryption_keys: Vec<String>,

    /// A file with one `v<version>:<base64>` key per line (`#` starts a comment line), read like
    /// --encryption-keys.
    #[arg(long, env = "CONNECTIONS_ENCRYPTION_KEYS_FILE")]
    pub encryption_keys_file: Option<PathBuf>,

    /// The version number stamped on every new ciphertext (raise it when rotating keys). With
    /// several keys it names the primary one; older versions are re-encrypted to it in the background.
    #[arg(long, env = "CONNECTIONS_ENCRYPTION_KEY_VERSION", default_value_t = 1)]
    pub encryption_key_version: u8,

    /// Generate a key into <data-dir>/encryption.key when none is configured (demo only).
    #[arg(long, env = "GENERATE_KEY")]
    pub generate_key: bool,

    /// Seed the demo workspace (users, applications, connections) when the database is empty.
    #[arg(long, env = "SEED_DEMO")]
    pub seed_demo: bool,

    /// Base URL of the sandbox third-party service used by the demo's connectors.
    #[arg(long, env = "SANDBOX_URL", default_value = "http://127.0.0.1:4010")]
    pub sandbox_url: String,

    /// Hosts (host:port) outbound calls may reach although they are loopback or private.
    #[arg(long, env = "OUTBOUND_ALLOWLIST", value_delimiter = ',')]
    pub outbound_allowlist: Vec<String>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Served over HTTPS: session cookies are Secure, SameSite=None and Partitioned, so the
    /// connections panel embedded on another site keeps a session (on loopback, the default).
    #[arg(long, env = "SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "SESSION_IDLE_MINUTES", default_value_t = 60)]
    pub session_idle_minutes: i64,

    /// Hours after sign-in at which a session ends however active it is.
    #[arg(long, env = "SESSION_MAX_HOURS", default_value_t = 12.0)]
    pub session_max_hours: f64,

    /// Wrong passwords in a row for one account before sign-ins to it back off.
    #[arg(long, env = "LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,

    /// Wrong passwords in a row from one client address (any accounts) before sign-ins from it
    /// back off (higher: many people may share an address).
    #[arg(long, env = "LOGIN_FREE_FAILURES_PER_ADDRESS", default_value_t = 20)]
    pub login_free_failures_per_address: u32,

    /// The first back-off after the free failures, in milliseconds; it doubles with each further
    /// failure.
    #[arg(long, env = "LOGIN_BACKOFF_START_MS", default_value_t = 1000)]
    pub login_backoff_start_ms: u64,

    /// The longest back-off, in seconds.
    #[arg(long, env = "LOGIN_BACKOFF_MAX_SECS", default_value_t = 900)]
    pub login_backoff_max_secs: u64,

    /// Passwords checked at once in this process; sign-ins beyond that are answered 429 at once.
    #[arg(long, env = "LOGIN_HASH_CONCURRENCY", default_value_t = 4)]
    pub login_hash_concurrency: usize,

    /// Take the client address for sign-in throttling from the first `X-Forwarded-For` hop
    /// (only behind a proxy that sets it); otherwise the peer address is used.
    #[arg(long, env = "TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Serve `/metrics` on this address only (not on the main listener).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Require `Authorization: Bearer <token>` for `/metrics`.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Seconds an OAuth2 authorization may take. The product is 90; tests shorten it.
    #[arg(long, env = "OAUTH_WINDOW_SECS", default_value_t = 90)]
    pub oauth_window_secs: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// At most this many integration-fields syncs run at once in the whole deployment (R12.6); more wait in a queue.
    #[arg(long, env = "SYNC_MAX_RUNNING", default_value_t = 10)]
    pub sync_max_running: u32,

    /// A running sync whose server stopped heartbeating for this long is marked failed.
    #[arg(long, env = "SYNC_STALE_SECS", default_value_t = 30)]
    pub sync_stale_secs: u64,

    /// Records asked for per page when a sync reads a module.
    #[arg(long, env = "SYNC_PAGE_SIZE", default_value_t = 200)]
    pub sync_page_size: u32,

    /// Milliseconds a token-refresh lease lasts without renewal (judged by the database's
    /// clock). The holder renews it every third of this while the provider answers, so it
    /// only runs out when the holder is gone; tests shorten it below a slow token endpoint.
    #[arg(long, env = "REFRESH_LEASE_MS", default_value_t = 45_000)]
    pub refresh_lease_ms: i64,

    /// Keep-alive: every OAuth2 account with a refresh token is refreshed at least this often
    /// (hours), even when nobody calls it, so the provider does not let it lapse. Refreshes are
    /// spread over the last quarter of the interval.
    #[arg(long, env = "KEEPALIVE_HOURS", default_value_t = 24)]
    pub keepalive_hours: u64,

    /// Requests each API key may make to `/v1` per minute, counted in the database so the
    /// limit holds across replicas; beyond it the API answers 429 with `Retry-After`.
    #[arg(long, env = "API_REQUESTS_PER_MINUTE", default_value_t = 600)]
    pub api_requests_per_minute: i64,

    /// Seconds a revocation the provider could not be told about is retried (with growing
    /// delays) before it is given up with an entry in Operations.
    #[arg(long, env = "REVOCATION_RETRY_SECS", default_value_t = 24 * 3600)]
    pub revocation_retry_secs: i64,

    /// Seconds a webhook delivery is retried (with growing delays) before it is marked failed;
    /// an endpoint whose deliveries fail for this long without a success is turned off.
    #[arg(long, env = "WEBHOOK_RETRY_SECS", default_value_t = 24 * 3600)]
    pub webhook_retry_secs: i64,

    /// Where the built site (pkg/*.wasm, *.js, *.css) is served from.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url())
            .field("database", &self.database_url().split('?').next().map(redact_url))
            .field("data_dir", &self.data_dir)
            .field("encryption_key", &self.encryption_key.as_ref().map(|_| "<redacted>"))
            .field("encryption_key_file", &self.encryption_key_file)
            .field("encryption_keys", &self.encryption_keys.iter().map(|k| redact_key_entry(k)).collect::<Vec<_>>())
            .field("encryption_keys_file", &self.encryption_keys_file)
            .field("encryption_key_version", &self.encryption_key_version)
            .field("seed_demo", &self.seed_demo)
            .field("sandbox_url", &self.sandbox_url)
            .field("outbound_allowlist", &self.outbound_allowlist)
            .field("oauth_window_secs", &self.oauth_window_secs)
            .field("metrics_listen", &self.metrics_listen)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `v2:<base64>` → `v2:<redacted>`: the version helps, the key never shows.
fn redact_key_entry(entry: &str) -> String {
    match entry.split_once(':') {
        Some((version, _)) if version.len() <= 4 => format!("{}:<redacted>", version.trim()),
        _ => "<redacted>".into(),
    }
}

/// Hides the password in `scheme://user:password@host/...`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}:<redacted>{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

impl Settings {
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_string()
    }

    /// Whether session cookies can be `SameSite=None; Secure; Partitioned`, so the connections
    /// panel embedded on another site keeps a session in its frame: served over HTTPS
    /// (`--secure-cookies`), or on a loopback address, where browsers accept Secure cookies
    /// over plain HTTP. Otherwise cookies stay `SameSite=Lax` and embedding works on this site only.
    pub fn cross_site_cookies(&self) -> bool {
        if self.secure_cookies {
            return true;
        }
        let Ok(url) = url::Url::parse(&self.public_url()) else { return false };
        match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// This server's own origin (`scheme://host[:port]`), which every state-changing browser
    /// request must come from.
    pub fn public_origin(&self) -> String {
        url::Url::parse(&self.public_url())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| self.public_url())
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/connections.db?mode=rwc", self.data_dir.display()))
    }

    /// Settings for tests: every default, with the given database and data directory.
    pub fn for_tests(database_url: &str, data_dir: PathBuf) -> Self {
        let mut s = Settings::parse_from(["server"]);
        s.database_url = Some(database_url.to_string());
        s.data_dir = data_dir;
        s.listen = "127.0.0.1:0".parse().expect("literal address");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/x"), "postgres://app:<redacted>@db:5432/x");
        let mut s = Settings::parse_from(["server"]);
        s.database_url = Some("postgres://app:s3cret@db/x".into());
        s.encryption_key = Some("c2VjcmV0LWtleQ==".into());
        s.metrics_token = Some("m3tr1cs-t0ken".into());
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("s3cret") && !dbg.contains("c2VjcmV0LWtleQ") && !dbg.contains("m3tr1cs"), "{dbg}");

        // Several keys (flag or environment): versions show, keys never, malformed entries neither.
        let s = Settings::parse_from(["server", "--encryption-keys", "v1:b2xkLWtleQ==,v2:bmV3LWtleQ==,bmFrZWQta2V5"]);
        assert_eq!(s.encryption_keys.len(), 3, "comma-separated");
        let dbg = format!("{s:?}");
        assert!(dbg.contains("v1:<redacted>") && dbg.contains("v2:<redacted>"), "{dbg}");
        for key in ["b2xkLWtleQ", "bmV3LWtleQ", "bmFrZWQta2V5"] {
            assert!(!dbg.contains(key), "{dbg}");
        }
    }

    /// Cookies for other sites' frames only where browsers accept Secure cookies.
    #[test]
    fn cross_site_cookies_need_https_or_loopback() {
        let with = |args: &[&str]| Settings::parse_from(std::iter::once("server").chain(args.iter().copied()));
        assert!(with(&[]).cross_site_cookies(), "the default listen address is loopback");
        assert!(with(&["--public-url", "http://localhost:3000"]).cross_site_cookies());
        assert!(with(&["--public-url", "http://[::1]:3000"]).cross_site_cookies());
        assert!(!with(&["--public-url", "http://connections.lan:3000"]).cross_site_cookies());
        assert!(!with(&["--listen", "0.0.0.0:3000"]).cross_site_cookies());
        assert!(with(&["--public-url", "http://connections.lan", "--secure-cookies"]).cross_site_cookies());
        assert_eq!(with(&["--public-url", "https://c.example.com/"]).public_origin(), "https://c.example.com");
        assert_eq!(with(&["--public-url", "http://127.0.0.1:3000/x"]).public_origin(), "http://127.0.0.1:3000");
    }
}
