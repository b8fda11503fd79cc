//! One storage layer over SQLite (default) and Postgres (`DATABASE_URL=postgres://…`).
//!
//! Queries go through sqlx's `Any` driver with `$1`-style parameters, which both backends accept,
//! and only the types both share (BIGINT, TEXT, BOOLEAN, BLOB/BYTEA). Each backend has its own
//! migrations folder.

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err("DATABASE_URL must start with sqlite:// or postgres://".into())
        }
    }
}

impl Backend {
    /// SQL for the database's own clock in Unix milliseconds. Leases are judged by this one
    /// clock, never by a replica's, so replicas with skewed clocks agree on who holds one.
    pub fn now_ms_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Backend::Postgres => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        }
    }
}

/// The application's database handle.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// On PostgreSQL, a small pool of its own for what the `Any` driver cannot say: `COPY`, the
    /// fastest way to write many rows (a sync's pages). Connects when first used.
    pub copy: Option<sqlx::PgPool>,
}

impl Db {
    /// Connects, enables WAL on SQLite, and runs the backend's migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
        create_sqlite_dir(url)?;
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        options = match backend {
            Backend::Sqlite => options.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    // 1 MiB of page cache per connection (SQLite's default is 2 MiB): the OS
                    // caches the file too, and the server's memory stays small (README, bench).
                    sqlx::query("PRAGMA cache_size = -1024").execute(&mut *conn).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(16),
        };
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let copy = match backend {
            Backend::Postgres => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy(url)?,
            ),
            Backend::Sqlite => None,
        };
        let db = Db { pool, backend, copy };
        db.migrate().await?;
        Ok(db)
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    /// A transaction that is going to write. SQLite takes its write lock at `BEGIN IMMEDIATE`, so
    /// reads inside see the latest data and the first write cannot fail with
    /// `SQLITE_BUSY_SNAPSHOT` because another process wrote after the read (two replicas starting
    /// on one file); PostgreSQL locks per row and needs nothing more than `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Cheap liveness check used by `/healthz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// Creates the folder of a SQLite database file if it is missing (`sqlite://data/x.db` → `data/`).
pub fn create_sqlite_dir(url: &str) -> Result<(), sqlx::Error> {
    if let Some(dir) = sqlite_path(url).and_then(|p| std::path::Path::new(p).parent()) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
    }
    Ok(())
}

/// `sqlite://data/x.db?mode=rwc` → `data/x.db`.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Whether an error is a unique-constraint violation (mapped to a domain conflict by callers).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// A delete refused because another row still refers to the one deleted (a race with whoever
/// just put it to use) becomes a 409 saying `message`; any other failure stays internal.
#[track_caller]
pub fn conflict_if_referenced(e: sqlx::Error, message: impl FnOnce() -> String) -> crate::error::AppError {
    if is_foreign_key_violation(&e) {
        crate::error::AppError::Conflict(message())
    } else {
        e.into()
    }
}

impl Backend {
    /// The placeholders of parameters `first` to `first + count - 1` (a row of a multi-row VALUES
    /// list, an IN list), for statements written wholly with them: values are bound in the order
    /// the placeholders appear. Only placeholders go into the SQL; every value is bound.
    ///
    /// PostgreSQL gets `$first, …`; SQLite anonymous `?`s, because sqlx asks SQLite the name of
    /// every parameter it binds and SQLite finds a named one (`$3`) by scanning all the
    /// statement's names: n numbered parameters cost n² (a 64-row Operations batch has 512, a
    /// sync page's 200 rows 800). sqlx numbers anonymous parameters on its own, from 1, so a
    /// statement must not mix them with numbered ones.
    pub fn placeholders(self, first: usize, count: usize) -> String {
        match self {
            Backend::Postgres => (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", "),
            Backend::Sqlite => vec!["?"; count].join(", "),
        }
    }

    /// The VALUES list of a multi-row INSERT written wholly with placeholders: `rows` rows of
    /// `width` values each, `(…), (…)`, bound row by row in column order.
    pub fn value_rows(self, rows: usize, width: usize) -> String {
        (0..rows).map(|i| format!("({})", self.placeholders(i * width + 1, width))).collect::<Vec<_>>().join(", ")
    }
}

/// Appends one row of `COPY … FROM STDIN` in PostgreSQL's text format: fields separated by tabs,
/// the row ended by a newline, and backslash, tab, newline and carriage return escaped in each
/// field (so no field can end the row or the data early).
pub fn copy_text_row(out: &mut Vec<u8>, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        for &byte in field.as_bytes() {
            match byte {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                other => out.push(other),
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_numbered_on_postgres_anonymous_on_sqlite() {
        assert_eq!(Backend::Postgres.placeholders(3, 2), "$3, $4");
        assert_eq!(Backend::Postgres.placeholders(1, 1), "$1");
        assert_eq!(Backend::Postgres.placeholders(5, 0), "");
        assert_eq!(Backend::Sqlite.placeholders(3, 2), "?, ?");
        assert_eq!(Backend::Sqlite.placeholders(1, 1), "?");
        assert_eq!(Backend::Sqlite.placeholders(5, 0), "");
        assert_eq!(Backend::Postgres.value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(Backend::Sqlite.value_rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(Backend::Sqlite.value_rows(0, 2), "");
    }

    #[test]
    fn backends_and_paths() {
        assert_eq!(Backend::of("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert!(Backend::of("mysql://x").is_err());
        assert_eq!(sqlite_path("sqlite://data/x.db?mode=rwc"), Some("data/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn copy_rows_escape_what_would_end_a_field_or_the_row() {
        let mut out = Vec::new();
        copy_text_row(&mut out, &["7", "D-1", "{\"a\": \"x\\\"y\",\n\t\"b\": 1}\r"]);
        copy_text_row(&mut out, &["8", "\\.", ""]);
        assert_eq!(String::from_utf8(out).unwrap(), "7\tD-1\t{\"a\": \"x\\\\\"y\",\\n\\t\"b\": 1}\\r\n8\t\\\\.\t\n");
    }
}
