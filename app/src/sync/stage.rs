//! Writing a run's pages while it reads the next ones: each batch goes in under the run (not yet
//! the datasource's records, `store::apply` makes them so), with many-row `INSERT`s on SQLite
//! and `COPY` on PostgreSQL; what a run that did not complete wrote is deleted.

use crate::error::AppResult;
use crate::ssr::db::copy_text_row;
use crate::ssr::AppState;

/// Rows per INSERT statement when pages are written on SQLite (four parameters per row).
const STAGE_CHUNK: usize = 200;

/// A record read again replaces the version an earlier page of the run had.
const UPDATE_AGAIN: &str =
    "UPDATE datasource_records SET data = $1 WHERE datasource_id = $2 AND run_id = $3 AND record_id = $4";

/// Pages of a run on their way to the database: records not read before, and records an
/// earlier page already had (read again because the service's paging moved; the last one read
/// is kept).
#[derive(Debug, Default)]
pub(super) struct Staged {
    pub new: Vec<(String, String)>,
    pub again: Vec<(String, String)>,
}

impl Staged {
    pub fn append(&mut self, mut later: Staged) {
        self.new.append(&mut later.new);
        self.again.append(&mut later.again);
    }
}

/// Writes pages read by run `run_id` under that run, in one transaction: rows the datasource
/// does not offer yet (its records are its latest completed run's).
pub(super) async fn stage(state: &AppState, datasource_id: i64, run_id: i64, rows: Staged) -> AppResult<()> {
    if let Some(pg) = &state.db.copy {
        return stage_by_copy(pg, datasource_id, run_id, rows).await;
    }
    let mut tx = state.db.pool.begin().await?;
    for chunk in rows.new.chunks(STAGE_CHUNK) {
        let sql = format!(
            "INSERT INTO datasource_records (datasource_id, run_id, record_id, data) VALUES {}",
            state.db.backend.value_rows(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (id, data) in chunk {
            q = q.bind(datasource_id).bind(run_id).bind(id.as_str()).bind(data.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    for (id, data) in &rows.again {
        sqlx::query(UPDATE_AGAIN)
            .bind(data.as_str())
            .bind(datasource_id)
            .bind(run_id)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// [`stage`] on PostgreSQL: the new rows in one `COPY` (PostgreSQL's bulk load, cheaper than
/// many-row `INSERT`s), and the rows read again updated in the same transaction. A `COPY`
/// alone is atomic by itself, so it goes without `BEGIN` and `COMMIT` (two round trips fewer).
async fn stage_by_copy(pg: &sqlx::PgPool, datasource_id: i64, run_id: i64, rows: Staged) -> AppResult<()> {
    if rows.again.is_empty() {
        let mut conn = pg.acquire().await?;
        return copy_new(&mut conn, datasource_id, run_id, &rows.new).await;
    }
    let mut tx = pg.begin().await?;
    copy_new(&mut tx, datasource_id, run_id, &rows.new).await?;
    for (id, data) in &rows.again {
        sqlx::query(UPDATE_AGAIN)
            .bind(data.as_str())
            .bind(datasource_id)
            .bind(run_id)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `COPY`s `rows` into the run's records over `conn`.
async fn copy_new(
    conn: &mut sqlx::PgConnection,
    datasource_id: i64,
    run_id: i64,
    rows: &[(String, String)],
) -> AppResult<()> {
    /// Data handed to PostgreSQL at a time.
    const SEND_AT: usize = 1 << 20;
    if rows.is_empty() {
        return Ok(());
    }
    let (datasource, run) = (datasource_id.to_string(), run_id.to_string());
    let mut copy =
        conn.copy_in_raw("COPY datasource_records (datasource_id, run_id, record_id, data) FROM STDIN").await?;
    let mut buf = Vec::with_capacity(SEND_AT);
    for (id, data) in rows {
        copy_text_row(&mut buf, &[&datasource, &run, id, data]);
        if buf.len() >= SEND_AT {
            copy.send(std::mem::replace(&mut buf, Vec::with_capacity(SEND_AT))).await?;
        }
    }
    copy.send(buf).await?;
    copy.finish().await?;
    Ok(())
}

/// Deletes what run `run_id` wrote, when it did not complete (in the transaction that marks it).
pub(super) async fn discard(tx: &mut sqlx::Transaction<'_, sqlx::Any>, run_id: i64) -> AppResult<()> {
    sqlx::query(
        "DELETE FROM datasource_records
         WHERE datasource_id = (SELECT datasource_id FROM sync_runs WHERE id = $1) AND run_id = $1",
    )
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
