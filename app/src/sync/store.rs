//! The sync's database side: the run queries behind the panel and the Operations page,
//! "Initiate" with its once-a-day and one-active-run rules (R12.4, R12.5), and the apply
//! transaction that writes a finished run's records into the form records (R12.1).

use super::stage::discard;
use super::{Initiated, SyncRun, SyncStatus, SyncView, COOLDOWN_MS};
use crate::auth::SessionUser;
use crate::datasources::ssr::Datasource;
use crate::domain::Environment;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::db::{is_unique_violation, Backend};
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use std::collections::HashMap;

type RunRow = (i64, i64, String, String, i64, i64, Option<String>, String, i64, Option<i64>, Option<i64>);
const RUN_SELECT: &str = "SELECT r.id, r.datasource_id, d.name, r.status, r.records, r.api_calls, r.error, u.email,
                                 r.created_at, r.started_at, r.finished_at
                          FROM sync_runs r JOIN datasources d ON d.id = r.datasource_id
                          JOIN users u ON u.id = r.user_id";

async fn to_run(state: &AppState, r: RunRow) -> AppResult<SyncRun> {
    let (id, datasource_id, datasource, status, records, api_calls, error, initiated_by, created, started, finished) =
        r;
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
    let last_completed_at_ms: Option<i64> =
        sqlx::query_scalar("SELECT MAX(finished_at) FROM sync_runs WHERE datasource_id = $1 AND status = 'completed'")
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
    let used = crate::datasources::ssr::InUse::load(state, user, datasource_id, environment).await?;
    if let Some(reason) = crate::datasources::ssr::sync_blocked(state, &used).await? {
        return Err(AppError::Conflict(reason));
    }
    let (ds, conn) = (&used.ds, &used.conn);
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
            state.sync_queued.notify_one();
            Operation::by(user, Level::Info, OperationKind::SyncQueued)
                .on(conn.id)
                .env(environment)
                .detail(format!("sync run {id} of datasource {} queued by {}", ds.name, user.email))
                .record(&state.db)
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

pub(super) async fn record_progress(state: &AppState, run_id: i64, owner: &str, records: i64, api_calls: i64) {
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

/// Record ids per lookup when form records are updated.
const LOOKUP_CHUNK: usize = 500;

/// The run's records with the given ids, parsed.
async fn records_by_id(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    datasource_id: i64,
    run_id: i64,
    ids: &[String],
) -> AppResult<HashMap<String, serde_json::Value>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT record_id, data FROM datasource_records WHERE datasource_id = {} AND run_id = {} AND record_id IN ({})",
            backend.placeholders(1, 1),
            backend.placeholders(2, 1),
            backend.placeholders(3, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, String)>(&sql).bind(datasource_id).bind(run_id);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for (id, data) in q.fetch_all(&mut **tx).await? {
            if let Ok(value) = serde_json::from_str(&data) {
                found.insert(id, value);
            }
        }
    }
    Ok(found)
}

/// Makes the run's records the datasource's (deleting every other generation) and updates
/// integration-field values in form records, all in one transaction that also completes the
/// run (only if this worker still owns it).
pub(super) async fn apply(
    state: &AppState,
    owner: &str,
    run_id: i64,
    ds: &Datasource,
    records: i64,
    api_calls: i64,
) -> AppResult<()> {
    let mut tx = state.db.pool.begin().await?;
    // Every other generation is an earlier run's (one run per datasource is active at a time, and
    // run ids grow): `<` reads only their rows in the key's order, not this run's too.
    sqlx::query("DELETE FROM datasource_records WHERE datasource_id = $1 AND run_id < $2")
        .bind(ds.id)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;

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
        let mut forms = Vec::with_capacity(form_rows.len());
        for (id, data) in form_rows {
            match serde_json::from_str::<serde_json::Value>(&data) {
                Ok(value) => forms.push((id, value)),
                Err(_) => tracing::warn!(form_record = id, "form record is not JSON; left as it is"),
            }
        }
        let referenced = |value: &serde_json::Value, field: &str| -> Option<String> {
            value.get(field)?.as_object()?.get("id")?.as_str().map(str::to_owned)
        };
        let mut wanted: Vec<String> =
            forms.iter().flat_map(|(_, v)| fields.iter().filter_map(|(f, _)| referenced(v, f))).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let found = records_by_id(&mut tx, state.db.backend, ds.id, run_id, &wanted).await?;
        for (id, mut value) in forms {
            let mut changed = false;
            for (field, display_field) in &fields {
                let Some(ref_id) = referenced(&value, field) else { continue };
                let Some(slot) = value.get_mut(field.as_str()).and_then(|v| v.as_object_mut()) else { continue };
                match found.get(&ref_id) {
                    Some(rec) => {
                        let text = display(rec, display_field).unwrap_or_default();
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
    .bind(records)
    .bind(api_calls)
    .bind(now_ms())
    .bind(run_id)
    .bind(owner)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if finished != 1 {
        // The run was given up (e.g. marked failed after losing its heartbeat): change nothing,
        // and drop what it wrote after that.
        tx.rollback().await?;
        let mut tx = state.db.pool.begin().await?;
        discard(&mut tx, run_id).await?;
        tx.commit().await?;
        return Ok(());
    }
    let workspace: Option<i64> = sqlx::query_scalar("SELECT workspace_id FROM applications WHERE id = $1")
        .bind(ds.application_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(ws) = workspace {
        let event = crate::webhooks::outbox::Event::new(crate::webhooks::EventType::SyncCompleted, ws)
            .application(ds.application_id)
            .connection(ds.connection_id)
            .status("completed");
        crate::webhooks::outbox::emit(&mut tx, event).await?;
    }
    tx.commit().await?;
    Operation::new(Level::Info, OperationKind::SyncCompleted)
        .workspace(workspace)
        .on(ds.connection_id)
        .detail(format!(
            "sync run {run_id} of datasource {}: {} records in {api_calls} API calls; {updated} form records updated{}",
            ds.name,
            records,
            if missing > 0 { format!(", {missing} references not found in the service") } else { String::new() }
        ))
        .record(&state.db)
        .await;
    Ok(())
}
