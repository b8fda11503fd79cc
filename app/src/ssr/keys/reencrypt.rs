//! The background pass that re-encrypts ciphertexts of older key versions to the primary key,
//! in small batches, while the server serves (versions only go up: see the module above).

use super::{Column, RowKey, BATCH_SIZE};
use crate::ssr::crypto::Cipher;
use crate::ssr::db::Db;
use std::time::Duration;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows read that still used an older key.
    pub scanned: usize,
    /// Rows now encrypted with the primary key.
    pub rewritten: usize,
    /// Rows another writer changed between our read and our write (a refresh, another
    /// replica's pass): theirs stands.
    pub lost_race: usize,
    /// Rows that could not be decrypted (logged, left as they are).
    pub failed: usize,
    /// The last key read: the next batch starts after it.
    pub last: Option<RowKey>,
}

/// Re-encrypts up to `limit` values of `column` whose key version is lower than the primary,
/// after `after` (`None`: from the start). Each row keeps its own associated data. The write
/// is a compare-and-swap on the old ciphertext, so a concurrent writer always wins and two
/// replicas never both rewrite a row.
#[tracing::instrument(skip(db, cipher, after), fields(table = column.table()))]
pub async fn reencrypt_batch(
    db: &Db,
    cipher: &Cipher,
    column: Column,
    after: Option<&RowKey>,
    limit: i64,
) -> Result<Batch, sqlx::Error> {
    let first = column.first_key();
    let rows = column.rows(db, "<", cipher.key_version(), after.unwrap_or(&first), limit).await?;
    let mut batch = Batch { scanned: rows.len(), last: rows.last().map(|(k, _)| k.clone()), ..Batch::default() };
    let mut updates = Vec::with_capacity(rows.len());
    for (key, old) in rows {
        match cipher.reencrypt(&column.aad(&key), &old) {
            Ok(new) => updates.push((key, old, new)),
            Err(e) => {
                batch.failed += 1;
                // The key of a pending flow is its OAuth `state`: not logged.
                let id = match &key {
                    RowKey::Id(id) => Some(*id),
                    RowKey::Name(_) => None,
                };
                tracing::warn!(id, version = Cipher::version_of(&old), error = %e, "value not re-encrypted");
            }
        }
    }
    if updates.is_empty() {
        return Ok(batch);
    }
    let sql = format!(
        "UPDATE {table} SET {col} = $1 WHERE {key} = $2 AND {col} = $3",
        table = column.table(),
        col = column.column(),
        key = column.key_column()
    );
    // Writes only: on SQLite the first statement takes the write lock, so the transaction
    // cannot fail for reading a snapshot another process wrote after.
    let mut tx = db.pool.begin().await?;
    for (key, old, new) in updates {
        let query = sqlx::query(&sql).bind(new);
        let query = match key {
            RowKey::Id(id) => query.bind(id),
            RowKey::Name(name) => query.bind(name),
        };
        let done = query.bind(old).execute(&mut *tx).await?;
        if done.rows_affected() == 1 {
            batch.rewritten += 1;
        } else {
            batch.lost_race += 1;
        }
    }
    tx.commit().await?;
    Ok(batch)
}

/// What a whole pass did, over every column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub rewritten: usize,
    pub lost_race: usize,
    pub failed: usize,
}

/// Re-encrypts every value with a key version lower than the primary, in batches of
/// `batch_size`, pausing briefly between batches so requests keep the database.
pub async fn reencrypt_all(db: &Db, cipher: &Cipher, batch_size: i64) -> Result<Pass, sqlx::Error> {
    let mut pass = Pass::default();
    for column in Column::ALL {
        let mut after: Option<RowKey> = None;
        loop {
            let batch = reencrypt_batch(db, cipher, column, after.as_ref(), batch_size).await?;
            pass.rewritten += batch.rewritten;
            pass.lost_race += batch.lost_race;
            pass.failed += batch.failed;
            if (batch.scanned as i64) < batch_size {
                break;
            }
            after = batch.last;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(pass)
}

/// Seconds between re-encryption passes. Rows keep arriving under an older key while other
/// replicas of a rolling restart still write with it; a later pass picks them up.
pub const PASS_INTERVAL: Duration = Duration::from_secs(300);

/// Whether a re-encryption worker has anything to do: only when some configured key is older
/// than the primary (start-up refuses values under unconfigured versions).
pub fn needs_reencryption(cipher: &Cipher) -> bool {
    let primary = cipher.key_version();
    cipher.versions().iter().any(|&v| v < primary)
}

/// One background pass of [`reencrypt_all`] to the primary key, logged when it did anything.
pub async fn reencryption_pass(db: &Db, cipher: &Cipher) -> Result<(), sqlx::Error> {
    let pass = reencrypt_all(db, cipher, BATCH_SIZE).await?;
    if pass.rewritten > 0 || pass.failed > 0 {
        tracing::info!(
            primary = cipher.key_version(),
            rewritten = pass.rewritten,
            lost_race = pass.lost_race,
            failed = pass.failed,
            "re-encryption pass to the primary key"
        );
    }
    Ok(())
}
