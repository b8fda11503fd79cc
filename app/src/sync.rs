//! Integration-fields sync (seed 000 §8): pull a datasource's module from the third-party
//! service, page by page, and update the integration-field values in the application's form
//! records. Pull-only: nothing is written back to the service.
//!
//! The rules hold across server replicas because they live in the database:
//! - one queued-or-ongoing run per datasource (a partial unique index): whoever presses while a
//!   run is active joins it instead of starting another;
//! - one run per user per datasource per 24 hours (failed runs do not count);
//! - at most `--sync-max-running` runs execute at once in the deployment (10 by default): a run
//!   waits as "queued" until it leases one of that many rows of `sync_slots`;
//! - a running sync heartbeats; a run whose process died stops heartbeating and any replica marks
//!   it failed with the reason after `--sync-stale-secs`, so nothing stays "ongoing" forever.
//!
//! A run fetches every page first and applies the result in one transaction, so a failing or
//! garbage-answering service never leaves form records half updated.

use crate::domain::Environment;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One sync every 24 hours per user per datasource.
pub const COOLDOWN_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncStatus {
    Queued,
    Ongoing,
    Completed,
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Queued => "queued",
            SyncStatus::Ongoing => "ongoing",
            SyncStatus::Completed => "completed",
            SyncStatus::Failed => "failed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SyncStatus::Queued => "Queued",
            SyncStatus::Ongoing => "Ongoing",
            SyncStatus::Completed => "Completed",
            SyncStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, AppError> {
        [SyncStatus::Queued, SyncStatus::Ongoing, SyncStatus::Completed, SyncStatus::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| AppError::invalid("status", format!("Unknown sync status '{s}'.")))
    }

    pub fn is_active(self) -> bool {
        matches!(self, SyncStatus::Queued | SyncStatus::Ongoing)
    }
}

/// One sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    pub id: i64,
    pub datasource_id: i64,
    pub datasource: String,
    pub status: SyncStatus,
    /// Records fetched so far (the progress while ongoing).
    pub records: i64,
    /// Calls made to the service's API (they count against the account's quota there).
    pub api_calls: i64,
    pub error: Option<String>,
    pub initiated_by: String,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// For a queued run: how many runs are ahead of it, plus one.
    pub queue_position: Option<i64>,
}

/// The sync state of a datasource as one user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    pub datasource_id: i64,
    /// The active run, or else the most recent one.
    pub latest: Option<SyncRun>,
    pub last_completed_at_ms: Option<i64>,
    /// When the caller may initiate again (None: now).
    pub next_allowed_at_ms: Option<i64>,
}

/// The answer to "Initiate".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initiated {
    pub view: SyncView,
    /// True when a sync of this datasource was already queued or running: the caller joined it
    /// and no second run was started.
    pub joined: bool,
}

#[server(prefix = "/api", endpoint = "initiate_sync")]
pub async fn initiate_sync(datasource_id: i64, environment: Environment) -> Result<Initiated, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("sync datasources").await?;
    ssr::initiate(&state, &user, datasource_id, environment).await
}

#[server(prefix = "/api", endpoint = "get_sync_status")]
pub async fn get_sync_status(datasource_id: i64) -> Result<SyncView, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("see datasource syncs").await?;
    crate::datasources::ssr::load(&state, user.workspace_id, datasource_id).await?;
    ssr::view(&state, &user, datasource_id).await
}

/// Recent sync runs of the workspace, for the Operations page.
#[server(prefix = "/api", endpoint = "list_sync_runs")]
pub async fn list_sync_runs() -> Result<Vec<SyncRun>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("view the operations log").await?;
    ssr::recent(&state, user.workspace_id, 100).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::datasources::ssr::Datasource;
    use crate::error::AppResult;
    use crate::invoke::InvokeRequest;
    use crate::operations::ssr::{record, Level, Operation, OperationKind};
    use crate::ssr::db::is_unique_violation;
    use crate::ssr::ids::{now_ms, random_token};
    use crate::ssr::AppState;
    use std::collections::HashMap;
    use std::time::Duration;

    /// A guard against services that never stop saying "more records".
    const MAX_PAGES: i64 = 10_000;
    const INSERT_CHUNK: usize = 300;

    type RunRow = (i64, i64, String, String, i64, i64, Option<String>, String, i64, Option<i64>, Option<i64>);
    const RUN_SELECT: &str = "SELECT r.id, r.datasource_id, d.name, r.status, r.records, r.api_calls, r.error, u.email,
                                     r.created_at, r.started_at, r.finished_at
                              FROM sync_runs r JOIN datasources d ON d.id = r.datasource_id
                              JOIN users u ON u.id = r.user_id";

    async fn to_run(state: &AppState, r: RunRow) -> AppResult<SyncRun> {
        let (
            id,
            datasource_id,
            datasource,
            status,
            records,
            api_calls,
            error,
            initiated_by,
            created,
            started,
            finished,
        ) = r;
        let status = SyncStatus::parse(&status)?;
        let queue_position = if status == SyncStatus::Queued {
            let ahead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs WHERE status = 'queued' AND id < $1")
                .bind(id)
                .fetch_one(&state.db.pool)
                .await?;
            Some(ahead + 1)
        } else {
            None
        };
        Ok(SyncRun {
            id,
            datasource_id,
            datasource,
            status,
            records,
            api_calls,
            error,
            initiated_by,
            created_at_ms: created,
            started_at_ms: started,
            finished_at_ms: finished,
            queue_position,
        })
    }

    pub async fn run(state: &AppState, id: i64) -> AppResult<SyncRun> {
        let row: RunRow = sqlx::query_as(&format!("{RUN_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&state.db.pool)
            .await?
            .ok_or_else(|| AppError::not_found("There is no such sync run."))?;
        to_run(state, row).await
    }

    /// The sync state of a datasource for `user`.
    pub async fn view(state: &AppState, user: &SessionUser, datasource_id: i64) -> AppResult<SyncView> {
        let latest: Option<RunRow> = sqlx::query_as(&format!(
            "{RUN_SELECT} WHERE r.datasource_id = $1
             ORDER BY CASE WHEN r.status IN ('queued', 'ongoing') THEN 0 ELSE 1 END, r.id DESC LIMIT 1"
        ))
        .bind(datasource_id)
        .fetch_optional(&state.db.pool)
        .await?;
        let latest = match latest {
            Some(r) => Some(to_run(state, r).await?),
            None => None,
        };
        let last_completed_at_ms: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(finished_at) FROM sync_runs WHERE datasource_id = $1 AND status = 'completed'",
        )
        .bind(datasource_id)
        .fetch_one(&state.db.pool)
        .await?;
        let next_allowed_at_ms = last_own_run(state, user.id, datasource_id).await?.map(|at| at + COOLDOWN_MS);
        Ok(SyncView { datasource_id, latest, last_completed_at_ms, next_allowed_at_ms })
    }

    /// When `user_id` last initiated a sync of the datasource that counts against the daily
    /// limit (queued, ongoing or completed within 24 hours).
    async fn last_own_run(state: &AppState, user_id: i64, datasource_id: i64) -> AppResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(created_at) FROM sync_runs
             WHERE datasource_id = $1 AND user_id = $2 AND status <> 'failed' AND created_at > $3",
        )
        .bind(datasource_id)
        .bind(user_id)
        .bind(now_ms() - COOLDOWN_MS)
        .fetch_one(&state.db.pool)
        .await?)
    }

    async fn active_run(state: &AppState, datasource_id: i64) -> AppResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM sync_runs WHERE datasource_id = $1 AND status IN ('queued', 'ongoing')")
            .bind(datasource_id)
            .fetch_optional(&state.db.pool)
            .await?)
    }

    /// "Initiate": queues a run, joins the active one, or refuses with the next allowed time.
    #[tracing::instrument(skip(state), fields(user_id = user.id))]
    pub async fn initiate(
        state: &AppState,
        user: &SessionUser,
        datasource_id: i64,
        environment: Environment,
    ) -> AppResult<Initiated> {
        crate::auth::ssr::ensure_builder(state, user, "sync datasources").await?;
        let ds = crate::datasources::ssr::load(state, user.workspace_id, datasource_id).await?;
        let conn = crate::connections::ssr::load(state, user.workspace_id, ds.connection_id).await?;
        if let Some(reason) = crate::datasources::ssr::sync_blocked(state, user, &ds, &conn, environment).await? {
            return Err(AppError::Conflict(reason));
        }
        let joined = || async { Ok(Initiated { view: view(state, user, ds.id).await?, joined: true }) };
        if active_run(state, ds.id).await?.is_some() {
            return joined().await;
        }
        if let Some(at) = last_own_run(state, user.id, ds.id).await? {
            // A press that raced with another one may find that run here: join it.
            if active_run(state, ds.id).await?.is_some() {
                return joined().await;
            }
            use crate::format::format_ms;
            return Err(AppError::TooManyRequests(format!(
                "You synced {} at {}. A sync can be initiated once every 24 hours; your next one is allowed after {}.",
                ds.name,
                format_ms(at),
                format_ms(at + COOLDOWN_MS)
            )));
        }
        let now = now_ms();
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO sync_runs (datasource_id, user_id, status, environment, created_at)
             VALUES ($1, $2, 'queued', $3, $4) RETURNING id",
        )
        .bind(ds.id)
        .bind(user.id)
        .bind(environment.as_str())
        .bind(now)
        .fetch_one(&state.db.pool)
        .await;
        match inserted {
            Ok(id) => {
                record(
                    &state.db,
                    Operation {
                        workspace_id: Some(user.workspace_id),
                        actor_user_id: Some(user.id),
                        connection_id: Some(conn.id),
                        environment: Some(environment.as_str()),
                        detail: &format!("sync run {id} of datasource {} queued by {}", ds.name, user.email),
                        ..Operation::new(Level::Info, OperationKind::SyncQueued)
                    },
                )
                .await;
                Ok(Initiated { view: view(state, user, ds.id).await?, joined: false })
            }
            // Someone else's press won the race: only the first request is executed.
            Err(e) if is_unique_violation(&e) => joined().await,
            Err(e) => Err(e.into()),
        }
    }

    pub async fn recent(state: &AppState, workspace_id: i64, limit: i64) -> AppResult<Vec<SyncRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "{RUN_SELECT} JOIN applications a ON a.id = d.application_id
             WHERE a.workspace_id = $1 ORDER BY r.id DESC LIMIT $2"
        ))
        .bind(workspace_id)
        .bind(limit)
        .fetch_all(&state.db.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(to_run(state, r).await?);
        }
        Ok(out)
    }

    // ---------------------------------------------------------------------------------------
    // The worker: every replica runs one; the database decides who executes what.
    // ---------------------------------------------------------------------------------------

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

    /// Marks runs whose process stopped heartbeating as failed, with the reason.
    pub async fn sweep(state: &AppState) -> AppResult<()> {
        let cutoff = now_ms() - stale_ms(state);
        let stale: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT r.id, r.user_id, a.workspace_id, d.connection_id FROM sync_runs r
             JOIN datasources d ON d.id = r.datasource_id JOIN applications a ON a.id = d.application_id
             WHERE r.status = 'ongoing' AND r.heartbeat_at < $1",
        )
        .bind(cutoff)
        .fetch_all(&state.db.pool)
        .await?;
        for (id, user_id, workspace_id, connection_id) in stale {
            let reason = format!(
                "The server stopped while this sync was running (no progress for {} s). Nothing was changed; initiate it again.",
                state.settings.sync_stale_secs
            );
            let done = sqlx::query(
                "UPDATE sync_runs SET status = 'failed', error = $1, finished_at = $2
                 WHERE id = $3 AND status = 'ongoing' AND heartbeat_at < $4",
            )
            .bind(&reason)
            .bind(now_ms())
            .bind(id)
            .bind(cutoff)
            .execute(&state.db.pool)
            .await?
            .rows_affected();
            if done == 1 {
                tracing::warn!(run_id = id, "sync run abandoned by a stopped server marked failed");
                record(
                    &state.db,
                    Operation {
                        workspace_id: Some(workspace_id),
                        actor_user_id: Some(user_id),
                        connection_id: Some(connection_id),
                        detail: &format!("sync run {id}: {reason}"),
                        ..Operation::new(Level::Error, OperationKind::SyncFailed)
                    },
                )
                .await;
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
        let res = sqlx::query(
            "UPDATE sync_runs SET status = 'failed', error = $1, finished_at = $2
             WHERE id = $3 AND owner = $4 AND status = 'ongoing'",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(run_id)
        .bind(owner)
        .execute(&state.db.pool)
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, run_id, "could not mark a sync run failed (the sweeper will)");
            return;
        }
        let who: Option<(i64, i64, i64, String)> = sqlx::query_as(
            "SELECT r.user_id, a.workspace_id, d.connection_id, d.name FROM sync_runs r
             JOIN datasources d ON d.id = r.datasource_id JOIN applications a ON a.id = d.application_id
             WHERE r.id = $1",
        )
        .bind(run_id)
        .fetch_optional(&state.db.pool)
        .await
        .ok()
        .flatten();
        if let Some((user_id, workspace_id, connection_id, name)) = who {
            record(
                &state.db,
                Operation {
                    workspace_id: Some(workspace_id),
                    actor_user_id: Some(user_id),
                    connection_id: Some(connection_id),
                    detail: &format!("sync run {run_id} of datasource {name} failed: {reason}"),
                    ..Operation::new(Level::Error, OperationKind::SyncFailed)
                },
            )
            .await;
        }
    }

    /// Fetches every page, then applies the records in one transaction.
    async fn perform(state: &AppState, owner: &str, run_id: i64) -> AppResult<()> {
        let (datasource_id, user_id, environment): (i64, i64, String) =
            sqlx::query_as("SELECT datasource_id, user_id, environment FROM sync_runs WHERE id = $1")
                .bind(run_id)
                .fetch_one(&state.db.pool)
                .await?;
        let environment = Environment::parse(&environment)?;
        let user = crate::auth::ssr::user_by_id(state, user_id)
            .await?
            .ok_or_else(|| AppError::Conflict("The user who initiated this sync no longer exists.".into()))?;
        let ds = crate::datasources::ssr::load(state, user.workspace_id, datasource_id).await?;
        let conn = crate::connections::ssr::load(state, user.workspace_id, ds.connection_id).await?;
        if let Some(reason) = crate::datasources::ssr::blocked(state, &user, &ds, &conn, environment).await? {
            return Err(AppError::Conflict(reason));
        }
        let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
        let base = connector
            .config
            .api_base
            .clone()
            .ok_or_else(|| AppError::Upstream("This connector has no API address configured.".into()))?;
        let path = connector.config.records_path.clone().unwrap_or_else(|| "/{module}".into());
        let module_url = format!("{}{}", base.trim_end_matches('/'), path.replace("{module}", &ds.module));
        let mut base_url = url::Url::parse(&module_url)
            .map_err(|_| AppError::Upstream("This connector's records address is not a valid URL.".into()))?;
        {
            let values = ds.config_values.clone().unwrap_or_default();
            let mut q = base_url.query_pairs_mut();
            for f in &ds.config_fields {
                if let (Some(param), Some(v)) = (&f.param, values.get(&f.name)) {
                    q.append_pair(param, v);
                }
            }
        }

        let mut records: HashMap<String, String> = HashMap::new();
        let mut api_calls = 0i64;
        let mut page = 1i64;
        loop {
            if page > MAX_PAGES {
                return Err(AppError::Upstream(format!(
                    "The service kept reporting more records after {MAX_PAGES} pages; the sync stopped."
                )));
            }
            let mut url = base_url.clone();
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &state.settings.sync_page_size.to_string());
            api_calls += 1;
            let res = crate::invoke::ssr::invoke(
                state,
                &user,
                InvokeRequest {
                    app: ds.app_link.clone(),
                    connection: conn.link_name.clone(),
                    method: "GET".into(),
                    url: url.to_string(),
                    environment: Some(environment),
                    ..Default::default()
                },
            )
            .await;
            let res = match res {
                Ok(r) => r,
                Err(e) => {
                    record_progress(state, run_id, owner, records.len() as i64, api_calls).await;
                    return Err(on_page(page, e));
                }
            };
            let more = parse_page(page, res.status, &res.body, &mut records)?;
            record_progress(state, run_id, owner, records.len() as i64, api_calls).await;
            if !more {
                break;
            }
            page += 1;
        }
        apply(state, owner, run_id, &ds, records, api_calls).await
    }

    fn on_page(page: i64, e: AppError) -> AppError {
        match e {
            AppError::AuthorizationRequired { message, .. } => AppError::Upstream(message),
            AppError::Upstream(m) => AppError::Upstream(format!("Page {page}: {m}")),
            other => other,
        }
    }

    /// Reads one page (`{"data": [...], "info": {"more_records": bool}}`) into `records`.
    /// Returns whether more pages follow.
    pub fn parse_page(page: i64, status: u16, body: &str, records: &mut HashMap<String, String>) -> AppResult<bool> {
        let json: Result<serde_json::Value, _> = serde_json::from_str(body);
        if status != 200 {
            let why = json
                .ok()
                .and_then(|j| {
                    j.get("message")
                        .or_else(|| j.get("error"))
                        .and_then(|m| m.as_str())
                        .map(|m| m.chars().take(200).collect::<String>())
                })
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Err(AppError::Upstream(format!("The service answered HTTP {status} on page {page}{why}.")));
        }
        let json =
            json.map_err(|_| AppError::Upstream(format!("The service's answer on page {page} is not valid JSON.")))?;
        let data = json
            .get("data")
            .and_then(|d| d.as_array())
            .ok_or_else(|| AppError::Upstream(format!("The service's answer on page {page} has no \"data\" list.")))?;
        for item in data {
            let id = match item.get("id") {
                Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(AppError::Upstream(format!("A record on page {page} has no id.")));
                }
            };
            records.insert(id, item.to_string());
        }
        Ok(json.pointer("/info/more_records").and_then(|m| m.as_bool()).unwrap_or(false) && !data.is_empty())
    }

    async fn record_progress(state: &AppState, run_id: i64, owner: &str, records: i64, api_calls: i64) {
        let _ = sqlx::query(
            "UPDATE sync_runs SET records = $1, api_calls = $2, heartbeat_at = $3 WHERE id = $4 AND owner = $5",
        )
        .bind(records)
        .bind(api_calls)
        .bind(now_ms())
        .bind(run_id)
        .bind(owner)
        .execute(&state.db.pool)
        .await;
    }

    /// The display text of a record's field (strings as they are, other values as JSON).
    fn display(record: &serde_json::Value, field: &str) -> Option<String> {
        match record.get(field)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Replaces the datasource's records and updates integration-field values in form records,
    /// all in one transaction that also completes the run (only if this worker still owns it).
    async fn apply(
        state: &AppState,
        owner: &str,
        run_id: i64,
        ds: &Datasource,
        records: HashMap<String, String>,
        api_calls: i64,
    ) -> AppResult<()> {
        let mut tx = state.db.pool.begin().await?;
        sqlx::query("DELETE FROM datasource_records WHERE datasource_id = $1").bind(ds.id).execute(&mut *tx).await?;
        let rows: Vec<(&String, &String)> = records.iter().collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut sql = String::from("INSERT INTO datasource_records (datasource_id, record_id, data) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3));
            }
            let mut q = sqlx::query(&sql).bind(ds.id);
            for (id, data) in chunk {
                q = q.bind(id.as_str()).bind(data.as_str());
            }
            q.execute(&mut *tx).await?;
        }

        let fields: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT component_id, field_name, display_field FROM integration_fields WHERE datasource_id = $1 ORDER BY component_id",
        )
        .bind(ds.id)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_component: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for (component, field, display_field) in fields {
            by_component.entry(component).or_default().push((field, display_field));
        }
        let mut updated = 0i64;
        let mut missing = 0i64;
        let now = now_ms();
        for (component, fields) in by_component {
            let form_rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, data FROM form_records WHERE component_id = $1 ORDER BY id")
                    .bind(component)
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, data) in form_rows {
                let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&data) else {
                    tracing::warn!(form_record = id, "form record is not JSON; left as it is");
                    continue;
                };
                let mut changed = false;
                for (field, display_field) in &fields {
                    let Some(slot) = value.get_mut(field.as_str()).and_then(|v| v.as_object_mut()) else { continue };
                    let Some(ref_id) = slot.get("id").and_then(|v| v.as_str()).map(str::to_owned) else { continue };
                    match records.get(&ref_id).and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) {
                        Some(rec) => {
                            let text = display(&rec, display_field).unwrap_or_default();
                            if slot.get("value").and_then(|v| v.as_str()) != Some(text.as_str())
                                || slot.contains_key("missing")
                            {
                                slot.insert("value".into(), text.into());
                                slot.remove("missing");
                                changed = true;
                            }
                        }
                        None => {
                            missing += 1;
                            if !slot.contains_key("missing") {
                                slot.insert("missing".into(), true.into());
                                changed = true;
                            }
                        }
                    }
                }
                if changed {
                    updated += 1;
                    sqlx::query("UPDATE form_records SET data = $1, updated_at = $2 WHERE id = $3")
                        .bind(value.to_string())
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        let finished = sqlx::query(
            "UPDATE sync_runs SET status = 'completed', records = $1, api_calls = $2, finished_at = $3, error = NULL
             WHERE id = $4 AND owner = $5 AND status = 'ongoing'",
        )
        .bind(records.len() as i64)
        .bind(api_calls)
        .bind(now_ms())
        .bind(run_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if finished != 1 {
            // The run was given up (e.g. marked failed after losing its heartbeat): change nothing.
            tx.rollback().await?;
            return Ok(());
        }
        tx.commit().await?;
        let workspace: Option<i64> = sqlx::query_scalar("SELECT workspace_id FROM applications WHERE id = $1")
            .bind(ds.application_id)
            .fetch_optional(&state.db.pool)
            .await?;
        record(&state.db, Operation { workspace_id: workspace, connection_id: Some(ds.connection_id), detail: &format!(
                "sync run {run_id} of datasource {}: {} records in {api_calls} API calls; {updated} form records updated{}",
                ds.name,
                records.len(),
                if missing > 0 { format!(", {missing} references not found in the service") } else { String::new() }
            ), ..Operation::new(Level::Info, OperationKind::SyncCompleted) })
        .await;
        Ok(())
    }
}
