//! Operations entries written in batches, for the hot path (every invoke-URL call logs one).
//!
//! [`Queue::push`] keeps the entry (with the time it happened) and returns; the first entry of
//! an empty queue starts a writer that takes everything queued by then and inserts it in one
//! transaction, so entries that arrive while a batch is written go out together in the next.
//! The queue holds at most [`CAPACITY`] entries: when it is full, callers wait for room rather
//! than drop an entry. Readers of the log call [`Queue::flush`] first (an entry a caller was
//! answered for is on the Operations page), and so does a graceful shutdown.

use super::ssr::Operation;
use crate::ssr::db::{placeholders, Db};
use crate::ssr::ids::now_ms;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// Entries waiting at most; a caller beyond that waits for the writer.
pub const CAPACITY: usize = 4096;
/// Rows per `INSERT` statement (8 bound parameters each, under every backend's limit).
const ROWS_PER_STATEMENT: usize = 200;

#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    pending: Mutex<Vec<(i64, Operation<'static>)>>,
    /// A permit per free place.
    room: Semaphore,
    /// One batch is written at a time, in order.
    writer: tokio::sync::Mutex<()>,
}

impl Queue {
    pub fn new(db: Db) -> Self {
        Queue {
            inner: Arc::new(Inner {
                db,
                pending: Mutex::new(Vec::new()),
                room: Semaphore::new(CAPACITY),
                writer: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Queues `op`, timed now; waits while the queue is full.
    pub async fn push(&self, op: Operation<'static>) {
        let at = now_ms();
        match self.inner.room.acquire().await {
            Ok(permit) => permit.forget(),
            // The semaphore is never closed; should it be, write the entry directly.
            Err(_) => return op.record(&self.inner.db).await,
        }
        let first = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.push((at, op));
            pending.len() == 1
        };
        if first {
            let queue = self.clone();
            tokio::spawn(async move { queue.flush().await });
        }
    }

    /// Writes everything queued so far (after any batch being written), in one transaction.
    pub async fn flush(&self) {
        let _writing = self.inner.writer.lock().await;
        let batch = std::mem::take(&mut *self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        if let Err(e) = write(&self.inner.db, &batch).await {
            tracing::error!(error = %e, entries = batch.len(), "could not write the operations log");
        }
        self.inner.room.add_permits(batch.len());
    }

    /// Entries queued and not written yet.
    pub fn len(&self) -> usize {
        self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn write(db: &Db, batch: &[(i64, Operation<'static>)]) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("({})", placeholders(i * 8 + 1, 8))).collect();
        let sql = format!(
            "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
             VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (at, op) in chunk {
            query = query
                .bind(op.workspace_id)
                .bind(*at)
                .bind(op.level.as_str())
                .bind(op.kind.as_str())
                .bind(op.actor_user_id)
                .bind(op.connection_id)
                .bind(op.environment.as_deref())
                .bind(op.detail.as_ref());
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await
}
