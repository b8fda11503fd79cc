//! Live encryption-key rotation: which key version every stored ciphertext uses, the start-up
//! rule that each version still in use is configured (and readable), and the background pass
//! that re-encrypts older versions to the primary key in small batches while the server serves.
//!
//! Key versions only go up: the pass rewrites ciphertexts whose version is *lower* than the
//! primary. During a rolling restart some replicas still write with the old primary; if every
//! replica rewrote "anything not mine", two replicas would re-encrypt each other's rows back
//! and forth until the last one restarted.

use crate::ssr::crypto::{Cipher, CryptoError};
use crate::ssr::db::Db;
use sqlx::Row;
use std::collections::BTreeSet;
use std::fmt;

/// Associated data of the start-up key check value in `server_facts`.
mod reencrypt;
pub use reencrypt::*;

pub const KEY_CHECK_AAD: &[u8] = b"server_facts:key_check";

/// Rows rewritten per batch (one short transaction each).
pub const BATCH_SIZE: i64 = 100;

/// Every encrypted column. Adding an encrypted column means adding it here, or start-up and
/// `server keys status` would not see it and the pass would never rotate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    KeyCheck,
    AccountCredentials,
    ConnectorSecrets,
    PendingFlowVerifiers,
    PendingRevocations,
    IdempotentAnswers,
    WebhookSecrets,
}

/// A row's identity: what its associated data is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    Id(i64),
    Name(String),
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::KeyCheck,
        Column::AccountCredentials,
        Column::ConnectorSecrets,
        Column::PendingFlowVerifiers,
        Column::PendingRevocations,
        Column::IdempotentAnswers,
        Column::WebhookSecrets,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Column::KeyCheck => "server_facts",
            Column::AccountCredentials => "authorized_accounts",
            Column::ConnectorSecrets => "connectors",
            Column::PendingFlowVerifiers => "oauth_pending",
            Column::PendingRevocations => "pending_revocations",
            Column::IdempotentAnswers => "api_idempotency",
            Column::WebhookSecrets => "webhook_endpoints",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            Column::KeyCheck => "value",
            Column::AccountCredentials => "credentials_ct",
            Column::ConnectorSecrets => "secret_ct",
            Column::PendingFlowVerifiers => "pkce_verifier_ct",
            Column::PendingRevocations => "token_ct",
            Column::IdempotentAnswers => "answer_ct",
            Column::WebhookSecrets => "secret_ct",
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            Column::KeyCheck => "name",
            Column::PendingFlowVerifiers => "state",
            _ => "id",
        }
    }

    /// Which rows of the table are encrypted (other server facts may be plain).
    fn filter(self) -> &'static str {
        match self {
            Column::KeyCheck => "name = 'key_check'",
            _ => "1 = 1",
        }
    }

    /// Where the pass starts: before every key.
    fn first_key(self) -> RowKey {
        match self {
            Column::KeyCheck | Column::PendingFlowVerifiers => RowKey::Name(String::new()),
            _ => RowKey::Id(i64::MIN),
        }
    }

    /// The associated data the writers of this column bind each row's value to.
    pub fn aad(self, key: &RowKey) -> Vec<u8> {
        match (self, key) {
            (Column::KeyCheck, _) => KEY_CHECK_AAD.to_vec(),
            (Column::AccountCredentials, RowKey::Id(id)) => crate::authorizations::ssr::account_aad(*id),
            (Column::ConnectorSecrets, RowKey::Id(id)) => crate::connectors::ssr::secret_aad(*id),
            (Column::PendingFlowVerifiers, RowKey::Name(state)) => crate::authorizations::ssr::pending_aad(state),
            (Column::PendingRevocations, RowKey::Id(id)) => crate::revocations::ssr::pending_aad(*id),
            (Column::IdempotentAnswers, RowKey::Id(id)) => crate::platform::v1::guard::idempotency_aad(*id),
            (Column::WebhookSecrets, RowKey::Id(id)) => crate::webhooks::endpoints::secret_aad(*id),
            // A key of the wrong kind cannot come from `rows`; an AAD nothing was encrypted
            // with makes decryption fail instead of panicking.
            _ => Vec::new(),
        }
    }

    fn label(self) -> String {
        format!("{}.{}", self.table(), self.column())
    }

    /// Up to `limit` rows after `after` (by key) whose first byte matches `version_cmp` `version`.
    async fn rows(
        self,
        db: &Db,
        version_cmp: &str,
        version: u8,
        after: &RowKey,
        limit: i64,
    ) -> Result<Vec<(RowKey, Vec<u8>)>, sqlx::Error> {
        let (table, col, key, filter) = (self.table(), self.column(), self.key_column(), self.filter());
        // `substr` of a BLOB/BYTEA is the first byte as a one-byte BLOB/BYTEA on both backends,
        // compared byte-wise with the bound one-byte value.
        let sql = format!(
            "SELECT {key}, {col} FROM {table}
             WHERE {col} IS NOT NULL AND {filter} AND substr({col}, 1, 1) {version_cmp} $1 AND {key} > $2
             ORDER BY {key} LIMIT $3"
        );
        let query = sqlx::query(&sql).bind(vec![version]);
        let query = match after {
            RowKey::Id(id) => query.bind(*id),
            RowKey::Name(name) => query.bind(name.clone()),
        };
        let rows = query.bind(limit).fetch_all(&db.pool).await?;
        rows.iter()
            .map(|row| {
                let key = match after {
                    RowKey::Id(_) => RowKey::Id(row.try_get(0)?),
                    RowKey::Name(_) => RowKey::Name(row.try_get(0)?),
                };
                Ok((key, row.try_get(1)?))
            })
            .collect()
    }
}

/// How many stored values of one column use one key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCount {
    pub column: Column,
    pub version: u8,
    pub rows: i64,
}

/// Counts stored values per column and key version (the ciphertext's first byte).
///
/// Counted in SQL rather than by streaming every ciphertext to the server: the database only
/// sends a few numbers back, and `substr(col, 1, 1)` means the same on SQLite (BLOB) and
/// PostgreSQL (BYTEA), so one query serves both backends.
pub async fn count_by_version(db: &Db) -> Result<Vec<VersionCount>, sqlx::Error> {
    let mut out = Vec::new();
    for column in Column::ALL {
        let (table, col, filter) = (column.table(), column.column(), column.filter());
        let sql = format!(
            "SELECT substr({col}, 1, 1), COUNT(*) FROM {table} WHERE {col} IS NOT NULL AND {filter}
             GROUP BY substr({col}, 1, 1)"
        );
        let rows = sqlx::query(&sql).fetch_all(&db.pool).await?;
        for row in rows {
            let first: Option<Vec<u8>> = row.try_get(0)?;
            let rows: i64 = row.try_get(1)?;
            // An empty value is a row being written (filled in the same transaction): no version yet.
            if let Some(&version) = first.as_deref().and_then(|b| b.first()) {
                out.push(VersionCount { column, version, rows });
            }
        }
    }
    out.sort_by_key(|c| (c.column, c.version));
    Ok(out)
}

/// Why the server must not start with the configured keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "stored credentials need encryption key version(s) that are not configured: {0}. Configure those keys \
         again (e.g. CONNECTIONS_ENCRYPTION_KEYS=v1:<old>,v2:<new>) until `server keys status` shows 0 values \
         for them; refusing to start"
    )]
    MissingVersions(String),
    #[error(
        "the configured key v{version} cannot read the {table} values stored with version {version} (wrong key \
         for that version?); refusing to start"
    )]
    WrongKey { version: u8, table: &'static str },
    #[error("could not count stored credentials per key version: {0}")]
    Database(#[from] sqlx::Error),
}

/// Start-up: every key version stored values use must be configured, and each configured key
/// in use must read some of its own values (a mistyped old key would otherwise only show when
/// those rows are used). Returns the counts.
pub async fn ensure_configured(db: &Db, cipher: &Cipher) -> Result<Vec<VersionCount>, KeyCheckError> {
    let counts = count_by_version(db).await?;
    let status =
        KeyStatus { counts: counts.clone(), primary: Some(cipher.key_version()), configured: cipher.versions() };
    let missing = status.missing();
    if !missing.is_empty() {
        let detail = missing
            .iter()
            .map(|&v| {
                let per_table = counts
                    .iter()
                    .filter(|c| c.version == v)
                    .map(|c| format!("{}: {}", c.column.table(), c.rows))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("v{v} ({per_table})")
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(KeyCheckError::MissingVersions(detail));
    }
    let mut checked = BTreeSet::new();
    for c in &counts {
        if !checked.insert(c.version) {
            continue;
        }
        // A few samples, refused only when none reads: a wrong key reads none of them, while
        // one damaged row must not keep every replica from starting.
        let sample = c.column.rows(db, "=", c.version, &c.column.first_key(), 5).await?;
        let unreadable = |(key, blob): &(RowKey, Vec<u8>)| {
            cipher.decrypt(&c.column.aad(key), blob) == Err(CryptoError::Undecryptable)
        };
        if !sample.is_empty() && sample.iter().all(unreadable) {
            return Err(KeyCheckError::WrongKey { version: c.version, table: c.column.table() });
        }
    }
    Ok(counts)
}

/// Values per column and key version, with what the configuration makes of them
/// (`server keys status`).
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub counts: Vec<VersionCount>,
    /// The primary version, when keys were configured for the command.
    pub primary: Option<u8>,
    pub configured: Vec<u8>,
}

impl KeyStatus {
    pub async fn load(db: &Db, cipher: Option<&Cipher>) -> Result<Self, sqlx::Error> {
        Ok(KeyStatus {
            counts: count_by_version(db).await?,
            primary: cipher.map(Cipher::key_version),
            configured: cipher.map(Cipher::versions).unwrap_or_default(),
        })
    }

    pub fn total(&self, version: u8) -> i64 {
        self.counts.iter().filter(|c| c.version == version).map(|c| c.rows).sum()
    }

    pub fn rows(&self, column: Column, version: u8) -> i64 {
        self.counts.iter().filter(|c| c.column == column && c.version == version).map(|c| c.rows).sum()
    }

    /// Versions stored values use, ascending.
    pub fn in_use(&self) -> Vec<u8> {
        self.counts.iter().map(|c| c.version).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// Configured versions no stored value needs (never the primary).
    pub fn droppable(&self) -> Vec<u8> {
        self.configured.iter().copied().filter(|&v| Some(v) != self.primary && self.total(v) == 0).collect()
    }

    /// Versions stored values need that are not configured (empty when no keys are known).
    pub fn missing(&self) -> Vec<u8> {
        if self.primary.is_none() {
            return Vec::new();
        }
        self.in_use().into_iter().filter(|v| !self.configured.contains(v)).collect()
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: Vec<u8> = self
            .in_use()
            .into_iter()
            .chain(self.configured.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let list = |vs: &[u8]| vs.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", ");
        match self.primary {
            Some(p) => {
                writeln!(f, "Encrypted values per key version (primary v{p}; configured {})", list(&self.configured))?
            }
            None => writeln!(f, "Encrypted values per key version (no keys configured for this command)")?,
        }
        write!(f, "{:<36}", "table.column")?;
        for v in &versions {
            write!(f, "{:>8}", format!("v{v}"))?;
        }
        writeln!(f)?;
        for column in Column::ALL {
            write!(f, "{:<36}", column.label())?;
            for &v in &versions {
                write!(f, "{:>8}", self.rows(column, v))?;
            }
            writeln!(f)?;
        }
        write!(f, "{:<36}", "total")?;
        for &v in &versions {
            write!(f, "{:>8}", self.total(v))?;
        }
        writeln!(f)?;
        writeln!(f)?;
        for &v in &versions {
            let n = self.total(v);
            let configured = self.configured.contains(&v);
            let note = if Some(v) == self.primary {
                "primary: new values are written with it".to_string()
            } else if self.primary.is_none() {
                format!("{n} values still need it")
            } else if !configured {
                format!("{n} values need it but it is NOT configured: the server refuses to start")
            } else if n == 0 {
                "no values left: may be dropped from the configuration".to_string()
            } else if self.primary.is_some_and(|p| v > p) {
                format!("{n} values still need it; newer than the primary, so not re-encrypted (versions only go up)")
            } else {
                format!("{n} values still need it: keep it configured until re-encryption brings this to 0")
            };
            writeln!(f, "v{v}: {note}")?;
        }
        if self.primary.is_none() {
            writeln!(f, "Any key version not listed with values above may be dropped from the configuration.")?;
        } else {
            writeln!(
                f,
                "May be dropped now: {}",
                if self.droppable().is_empty() { "none".into() } else { list(&self.droppable()) }
            )?;
        }
        Ok(())
    }
}
