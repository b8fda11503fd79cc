//! Sessions: `tower-sessions` with the sqlx store of whichever backend is configured, in the
//! same database as everything else (so every replica sees every session).

use super::db::{sqlite_path, Backend};
use super::settings::Settings;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The session key holding the signed-in user's id.
pub const USER_ID: &str = "user_id";

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
                let path = sqlite_path(url).unwrap_or(":memory:");
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(std::time::Duration::from_secs(10));
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

    /// HttpOnly, SameSite=Lax cookies that expire after the configured idle time.
    pub fn layer(self, settings: &Settings) -> SessionManagerLayer<Store> {
        SessionManagerLayer::new(self)
            .with_name("cm_session")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(settings.secure_cookies)
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(settings.session_idle_minutes)))
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
