//! The sync worker: every replica runs one; the database decides who executes what. Runs wait as
//! queued until they lease one of the `sync_slots` rows (R12.6); a running sync heartbeats its run
//! and its slot, and any replica marks a run whose server stopped heartbeating failed (R12.7).

use super::fetch::perform;
use super::stage::discard;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::ids::{now_ms, random_token};
use crate::ssr::AppState;
use crate::webhooks::{outbox::Event, EventType};
use std::time::Duration;

fn stale_ms(state: &AppState) -> i64 {
    (state.settings.sync_stale_secs.max(1) * 1000) as i64
}

/// This replica's sync worker: every tick it marks runs whose server stopped heartbeating
/// (at most once a second) and starts queued runs it can get a slot for.
pub struct SyncWorker {
    owner: String,
    last_sweep: std::sync::atomic::AtomicI64,
    slots_ready: std::sync::atomic::AtomicBool,
}

impl Default for SyncWorker {
    fn default() -> Self {
        SyncWorker { owner: random_token(16), last_sweep: Default::default(), slots_ready: Default::default() }
    }
}

/// Time between two ticks of the sync worker.
pub const TICK: Duration = Duration::from_millis(200);

impl SyncWorker {
    pub async fn tick(&self, state: &AppState) -> AppResult<()> {
        use std::sync::atomic::Ordering;
        if !self.slots_ready.load(Ordering::Relaxed) {
            ensure_slots(state).await?;
            self.slots_ready.store(true, Ordering::Relaxed);
        }
        let now = now_ms();
        if now - self.last_sweep.load(Ordering::Relaxed) > 1_000 {
            self.last_sweep.store(now, Ordering::Relaxed);
            if let Err(e) = sweep(state).await {
                tracing::warn!(error = %e, "sync sweep failed");
            }
        }
        dispatch(state, &self.owner).await
    }
}

async fn ensure_slots(state: &AppState) -> AppResult<()> {
    for slot in 0..state.settings.sync_max_running as i64 {
        sqlx::query("INSERT INTO sync_slots (slot) VALUES ($1) ON CONFLICT (slot) DO NOTHING")
            .bind(slot)
            .execute(&state.db.pool)
            .await?;
    }
    Ok(())
}

/// Starts queued runs while slots are free.
async fn dispatch(state: &AppState, owner: &str) -> AppResult<()> {
    loop {
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs WHERE status = 'queued'")
            .fetch_one(&state.db.pool)
            .await?;
        if queued == 0 {
            return Ok(());
        }
        let now = now_ms();
        let slot: Option<i64> = sqlx::query_scalar(
            "UPDATE sync_slots SET owner = $1, run_id = NULL, expires_at = $2
             WHERE slot = (SELECT slot FROM sync_slots WHERE slot < $3 AND (owner IS NULL OR expires_at < $4)
                           ORDER BY slot LIMIT 1)
               AND (owner IS NULL OR expires_at < $4)
             RETURNING slot",
        )
        .bind(owner)
        .bind(now + stale_ms(state))
        .bind(state.settings.sync_max_running as i64)
        .bind(now)
        .fetch_optional(&state.db.pool)
        .await?;
        let Some(slot) = slot else { return Ok(()) };
        let run: Option<i64> = sqlx::query_scalar(
            "UPDATE sync_runs SET status = 'ongoing', owner = $1, started_at = $2, heartbeat_at = $2
             WHERE id = (SELECT id FROM sync_runs WHERE status = 'queued' ORDER BY id LIMIT 1)
               AND status = 'queued'
             RETURNING id",
        )
        .bind(owner)
        .bind(now_ms())
        .fetch_optional(&state.db.pool)
        .await?;
        let Some(run_id) = run else {
            release_slot(state, slot, owner).await;
            return Ok(());
        };
        sqlx::query("UPDATE sync_slots SET run_id = $1 WHERE slot = $2 AND owner = $3")
            .bind(run_id)
            .bind(slot)
            .bind(owner)
            .execute(&state.db.pool)
            .await?;
        let (state, owner) = (state.clone(), owner.to_string());
        tokio::spawn(async move { execute(&state, slot, &owner, run_id).await });
    }
}

async fn release_slot(state: &AppState, slot: i64, owner: &str) {
    if let Err(e) = sqlx::query("UPDATE sync_slots SET owner = NULL, run_id = NULL WHERE slot = $1 AND owner = $2")
        .bind(slot)
        .bind(owner)
        .execute(&state.db.pool)
        .await
    {
        tracing::warn!(error = %e, slot, "could not release a sync slot (its lease expires by itself)");
    }
}

/// A sync run with whom and what it belongs to, for its Operations entries.
#[derive(sqlx::FromRow)]
struct RunOwner {
    id: i64,
    user_id: i64,
    workspace_id: i64,
    connection_id: i64,
    application_id: i64,
    name: String,
}

const RUN_OWNER: &str =
    "SELECT r.id, r.user_id, a.workspace_id, d.connection_id, d.application_id, d.name FROM sync_runs r
     JOIN datasources d ON d.id = r.datasource_id JOIN applications a ON a.id = d.application_id";

impl RunOwner {
    /// Queues `sync.failed` for the run in the transaction that marks it failed.
    async fn emit_failed(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, reason: &str) -> AppResult<()> {
        let event = Event::new(EventType::SyncFailed, self.workspace_id)
            .application(self.application_id)
            .connection(self.connection_id)
            .status("failed")
            .reason(reason);
        crate::webhooks::outbox::emit(tx, event).await.map(drop)
    }

    async fn log_failure(&self, state: &AppState, detail: String) {
        Operation::new(Level::Error, OperationKind::SyncFailed)
            .workspace(self.workspace_id)
            .actor(self.user_id)
            .on(self.connection_id)
            .detail(detail)
            .record(&state.db)
            .await;
    }
}

/// Marks runs whose process stopped heartbeating as failed, with the reason.
pub async fn sweep(state: &AppState) -> AppResult<()> {
    let cutoff = now_ms() - stale_ms(state);
    let stale: Vec<RunOwner> =
        sqlx::query_as(&format!("{RUN_OWNER} WHERE r.status = 'ongoing' AND r.heartbeat_at < $1"))
            .bind(cutoff)
            .fetch_all(&state.db.pool)
            .await?;
    for run in stale {
        let id = run.id;
        let reason = format!(
            "The server stopped while this sync was running (no progress for {} s). Nothing was changed; initiate it again.",
            state.settings.sync_stale_secs
        );
        let mut tx = state.db.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE sync_runs SET status = 'failed', error = $1, finished_at = $2
             WHERE id = $3 AND status = 'ongoing' AND heartbeat_at < $4",
        )
        .bind(&reason)
        .bind(now_ms())
        .bind(id)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 1 {
            discard(&mut tx, id).await?;
            run.emit_failed(&mut tx, &reason).await?;
        }
        tx.commit().await?;
        if done == 1 {
            tracing::warn!(run_id = id, "sync run abandoned by a stopped server marked failed");
            run.log_failure(state, format!("sync run {id}: {reason}")).await;
        }
    }
    Ok(())
}

/// Runs one claimed sync to its end (completed or failed), heartbeating meanwhile.
#[tracing::instrument(skip(state, owner))]
async fn execute(state: &AppState, slot: i64, owner: &str, run_id: i64) {
    let beat = {
        let (state, owner) = (state.clone(), owner.to_string());
        let every = Duration::from_millis((stale_ms(&state) / 4).max(200) as u64);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let now = now_ms();
                let _ = sqlx::query("UPDATE sync_runs SET heartbeat_at = $1 WHERE id = $2 AND owner = $3")
                    .bind(now)
                    .bind(run_id)
                    .bind(&owner)
                    .execute(&state.db.pool)
                    .await;
                let _ = sqlx::query("UPDATE sync_slots SET expires_at = $1 WHERE slot = $2 AND owner = $3")
                    .bind(now + stale_ms(&state))
                    .bind(slot)
                    .bind(&owner)
                    .execute(&state.db.pool)
                    .await;
            }
        })
    };
    let outcome = perform(state, owner, run_id).await;
    beat.abort();
    if let Err(reason) = outcome {
        let reason = match reason {
            AppError::Internal { reference } => {
                format!("Something went wrong on our side (reference {reference}).")
            }
            other => other.to_string(),
        };
        fail(state, owner, run_id, &reason).await;
    }
    release_slot(state, slot, owner).await;
}

async fn fail(state: &AppState, owner: &str, run_id: i64, reason: &str) {
    match mark_failed(state, owner, run_id, reason).await {
        Ok(Some(run)) => {
            let detail = format!("sync run {run_id} of datasource {} failed: {reason}", run.name);
            run.log_failure(state, detail).await;
        }
        Ok(None) => {} // given up meanwhile: the sweeper said so
        Err(e) => tracing::error!(error = %e, run_id, "could not mark a sync run failed (the sweeper will)"),
    }
}

/// Marks the run failed while this worker still owns it, with `sync.failed` queued in the same
/// transaction; the run when it was marked.
async fn mark_failed(state: &AppState, owner: &str, run_id: i64, reason: &str) -> AppResult<Option<RunOwner>> {
    let mut tx = state.db.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE sync_runs SET status = 'failed', error = $1, finished_at = $2
         WHERE id = $3 AND owner = $4 AND status = 'ongoing'",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(run_id)
    .bind(owner)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    let run: RunOwner =
        sqlx::query_as(&format!("{RUN_OWNER} WHERE r.id = $1")).bind(run_id).fetch_one(&mut *tx).await?;
    discard(&mut tx, run_id).await?;
    run.emit_failed(&mut tx, reason).await?;
    tx.commit().await?;
    Ok(Some(run))
}
