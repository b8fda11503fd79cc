//! Operations entries written in batches, for the hot path (every invoke-URL call logs one).
//!
//! [`Queue::push`] keeps the entry (with the time it happened) and returns; the first entry of
//! an empty queue starts a writer that waits [`GATHER`] for others, then takes everything queued
//! by then and inserts it in one transaction, so entries that arrive meanwhile, or while a batch is
//! written, go out together. The rows go in statements of a few fixed sizes
//! ([`STATEMENT_SIZES`]), so each is prepared once per connection and then reused.
//! The queue holds at most [`CAPACITY`] entries: when it is full, callers wait for room rather
//! than drop an entry. Readers of the log call [`Queue::flush`] first (an entry a caller was
//! answered for is on the Operations page), and so does a graceful shutdown.

use super::ssr::Operation;
use crate::ssr::db::Db;
use crate::ssr::ids::now_ms;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// Entries waiting at most; a caller beyond that waits for the writer.
pub const CAPACITY: usize = 4096;
/// How long the writer started by a first entry waits for more before writing: under load, one
/// transaction per this interval instead of one per handful of calls.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// Rows per `INSERT` statement, largest first (8 bound parameters a row, under every backend's
/// limit): a batch is cut greedily into these, so only these few statements are ever prepared.
const STATEMENT_SIZES: [usize; 4] = [64, 16, 4, 1];

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
            tokio::spawn(async move {
                tokio::time::sleep(GATHER).await;
                queue.flush().await
            });
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

/// `n` rows cut greedily into [`STATEMENT_SIZES`].
fn statement_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    for size in STATEMENT_SIZES {
        while n >= size {
            sizes.push(size);
            n -= size;
        }
    }
    sizes
}

async fn write(db: &Db, batch: &[(i64, Operation<'static>)]) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let mut rest = batch;
    for size in statement_sizes(batch.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = format!(
            "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
             VALUES {}",
            db.backend.value_rows(size, 8)
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

#[cfg(test)]
mod tests {
    use super::statement_sizes;

    #[test]
    fn batches_are_cut_into_the_few_prepared_sizes() {
        assert_eq!(statement_sizes(0), Vec::<usize>::new());
        assert_eq!(statement_sizes(1), vec![1]);
        assert_eq!(statement_sizes(7), vec![4, 1, 1, 1]);
        assert_eq!(statement_sizes(150), vec![64, 64, 16, 4, 1, 1]);
        for n in 0..300 {
            assert_eq!(statement_sizes(n).iter().sum::<usize>(), n);
        }
    }
}
