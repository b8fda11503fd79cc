//! Sessions: `tower-sessions` with the sqlx store of whichever backend is configured, in the
//! same database as everything else (so every replica sees every session).

use super::cache::TtlCache;
use super::db::{sqlite_path, Backend};
use super::settings::Settings;
use std::sync::Arc;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, CachingSessionStore, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The session key holding the signed-in user's id.
pub const USER_ID: &str = "user_id";
/// When the user signed in (Unix ms): the session ends `--session-max-hours` later however active.
pub const SIGNED_IN_AT: &str = "signed_in_at";
/// When the session was last written because it was used (Unix ms), see `auth::ssr::session_user`.
pub const SEEN_AT: &str = "seen_at";

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens the store on its own small pool and creates its table.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let store = match Backend::of(url).map_err(|e| sqlx::Error::Configuration(e.into()))? {
            Backend::Sqlite => {
                super::db::create_sqlite_dir(url)?;
                let path = sqlite_path(url).unwrap_or(":memory:");
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(std::time::Duration::from_secs(10))
                    .pragma("cache_size", "-1024");
                let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
                Store::Sqlite(SqliteStore::new(pool))
            }
            Backend::Postgres => {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await?;
                Store::Postgres(PostgresStore::new(pool))
            }
        };
        match &store {
            Store::Sqlite(s) => s.migrate().await?,
            Store::Postgres(s) => s.migrate().await?,
        }
        Ok(store)
    }

    /// HttpOnly cookies that expire after the configured idle time. Where browsers accept
    /// Secure cookies ([`Settings::cross_site_cookies`]) they are `SameSite=None; Secure`, and
    /// [`partition_session_cookie`] adds `Partitioned` (CHIPS), so an embedded panel on another
    /// site keeps its own session; [`refuse_cross_site_writes`] then stands in for what
    /// `SameSite=Lax` did against cross-site requests. Elsewhere they are `SameSite=Lax`.
    ///
    /// Served from an `https://` public URL the cookie is always Secure and named with the
    /// `__Host-` prefix ([`cookie_name`]): browsers then only accept it Secure, for this host
    /// alone (no Domain) and the whole site (Path=/), so a sibling subdomain cannot plant one.
    ///
    /// Sessions read are kept in front of the store for a second ([`RecentSessions`]).
    pub fn layer(self, settings: &Settings) -> SessionManagerLayer<CachingSessionStore<RecentSessions, Store>> {
        let cross_site = settings.cross_site_cookies();
        SessionManagerLayer::new(CachingSessionStore::new(RecentSessions::default(), self))
            .with_name(cookie_name(settings))
            .with_path("/")
            .with_http_only(true)
            .with_same_site(if cross_site { SameSite::None } else { SameSite::Lax })
            .with_secure(cross_site || settings.secure_cookies || is_https(settings))
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(settings.session_idle_minutes)))
    }
}

/// The session cookie's name.
pub const COOKIE_NAME: &str = "cm_session";
/// The session cookie's name when served over HTTPS.
pub const HOST_COOKIE_NAME: &str = "__Host-cm_session";

/// The session cookie's name for these settings.
pub fn cookie_name(settings: &Settings) -> &'static str {
    if is_https(settings) {
        HOST_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

fn is_https(settings: &Settings) -> bool {
    settings.public_url().to_ascii_lowercase().starts_with("https://")
}

/// Adds `Partitioned` to the session cookie when it is `SameSite=None` (the session layer has
/// no option for it). A partitioned cookie set in a frame on another site is kept for that
/// site only, which is what lets browsers that block third-party cookies keep it at all.
pub async fn partition_session_cookie(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header::SET_COOKIE, HeaderValue};
    let mut res = next.run(req).await;
    let cookies: Vec<HeaderValue> = res.headers_mut().get_all(SET_COOKIE).iter().cloned().collect();
    if !cookies.iter().any(|c| needs_partition(c.as_bytes())) {
        return res;
    }
    res.headers_mut().remove(SET_COOKIE);
    for cookie in cookies {
        let value = if needs_partition(cookie.as_bytes()) {
            let mut bytes = cookie.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Partitioned");
            HeaderValue::from_bytes(&bytes).unwrap_or(cookie)
        } else {
            cookie
        };
        res.headers_mut().append(SET_COOKIE, value);
    }
    res
}

fn needs_partition(cookie: &[u8]) -> bool {
    let text = String::from_utf8_lossy(cookie);
    (text.starts_with(&format!("{COOKIE_NAME}=")) || text.starts_with(&format!("{HOST_COOKIE_NAME}=")))
        && text.contains("SameSite=None")
        && !text.to_ascii_lowercase().contains("partitioned")
}

/// Refuses state-changing requests (anything but GET, HEAD, OPTIONS) that a browser says come
/// from another site or origin: with `SameSite=None` cookies a page elsewhere could otherwise
/// post to a server function with the visitor's session. The panel embedded on an allowed site
/// runs in a frame of this origin, so its own requests pass. Clients that send neither header
/// (not browsers: scripts, tests) are not affected; they carry no ambient session anyway.
/// This server's own origin ([`Settings::public_origin`]), worked out once when the router is
/// built: the state of [`refuse_cross_site_writes`].
#[derive(Clone)]
pub struct OwnOrigin(pub std::sync::Arc<str>);

pub async fn refuse_cross_site_writes(
    axum::extract::State(OwnOrigin(own)): axum::extract::State<OwnOrigin>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let host = text("host");
    let refused = match (text("origin"), text("sec-fetch-site")) {
        (_, Some(site)) if site == "cross-site" => Some(format!("sec-fetch-site {site}")),
        (Some(origin), _) if !same_origin(&origin, &own, host.as_deref()) => Some(origin),
        _ => None,
    };
    match refused {
        None => next.run(req).await,
        Some(from) => {
            tracing::warn!(%from, path = %req.uri().path(), "cross-site request refused");
            (axum::http::StatusCode::FORBIDDEN, "Cross-site request refused.").into_response()
        }
    }
}

/// `origin` is this server's: its public origin, or the host the request was addressed to.
fn same_origin(origin: &str, public_origin: &str, host: Option<&str>) -> bool {
    if origin == public_origin {
        return true;
    }
    let Some(host) = host else { return false };
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

/// Sessions this replica read or wrote in the last second ([`super::cache::TTL`]), in front
/// of the database store (`tower_sessions`' `CachingSessionStore`): a busy client's requests
/// read its session once a second instead of once each. Writes and deletions go to both, so
/// this replica sees a sign-out at once; another replica within the second. An entry is never
/// answered past the session's own expiry.
#[derive(Clone, Default)]
pub struct RecentSessions(Arc<TtlCache<Id, Record>>);

impl std::fmt::Debug for RecentSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecentSessions")
    }
}

#[async_trait::async_trait]
impl SessionStore for RecentSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.0.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.0.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = time::OffsetDateTime::now_utc();
        Ok(self.0.get(id).filter(|r| r.expiry_date > now).map(|r| (*r).clone()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.0.remove(id);
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.create(record).await,
            Store::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.save(record).await,
            Store::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Store::Sqlite(s) => s.load(id).await,
            Store::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.delete(id).await,
            Store::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for Store {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.delete_expired().await,
            Store::Postgres(s) => s.delete_expired().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expiry_date: time::OffsetDateTime) -> Record {
        Record { id: Id::default(), data: Default::default(), expiry_date }
    }

    #[tokio::test]
    async fn recent_sessions_forget_deleted_and_expired_sessions() {
        let recent = RecentSessions::default();
        let mut live = record(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
        recent.create(&mut live).await.unwrap();
        assert_eq!(recent.load(&live.id).await.unwrap(), Some(live.clone()));
        recent.delete(&live.id).await.unwrap();
        assert_eq!(recent.load(&live.id).await.unwrap(), None);

        let over = record(time::OffsetDateTime::now_utc() - time::Duration::seconds(1));
        recent.save(&over).await.unwrap();
        assert_eq!(recent.load(&over.id).await.unwrap(), None, "an expired session is not answered");
    }
}
