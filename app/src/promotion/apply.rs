//! Applying an import: refused with every conflict when the plan has any; otherwise custom
//! connectors (without a secret), connections (unauthorized) and application access are written
//! in one transaction, then the import is written to Operations.

use super::export::Actor;
use super::plan::{prepare, ConnectorTarget, Import, Target};
use super::{ImportPlan, PlanAction};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, OperationKind};
use crate::ssr::db::is_unique_violation;
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;

/// Imports a document: the plan of [`super::plan`], written at once, or a 409 listing every
/// conflict with nothing written.
pub async fn apply(state: &AppState, actor: &Actor<'_>, import: Import<'_>) -> AppResult<ImportPlan> {
    let plan = apply_or_refuse(state, actor, import).await?;
    if plan.applied {
        Ok(plan)
    } else {
        Err(plan.refusal())
    }
}

/// `server import`: the workspace by id or name, then the plan alone (`dry_run`) or the import;
/// a plan with conflicts comes back unapplied, nothing written.
pub async fn import_command(
    state: &AppState,
    workspace: &str,
    import: Import<'_>,
    dry_run: bool,
) -> AppResult<ImportPlan> {
    let actor = Actor::Operator { workspace_id: super::export::find_workspace(state, workspace).await? };
    if dry_run {
        super::plan::plan(state, &actor, import).await
    } else {
        apply_or_refuse(state, &actor, import).await
    }
}

/// The import when the plan has no conflict (`applied`); otherwise the plan, nothing written.
#[tracing::instrument(skip_all, fields(app = import.app, workspace = actor.workspace_id()))]
async fn apply_or_refuse(state: &AppState, actor: &Actor<'_>, import: Import<'_>) -> AppResult<ImportPlan> {
    let (mut plan, prepared) = prepare(state, actor, import).await?;
    if !plan.conflicts.is_empty() {
        actor
            .operation(Level::Warn, OperationKind::ConnectionsImportRefused)
            .detail(format!(
                "application {}: {} conflict(s), nothing written{}",
                plan.application,
                plan.conflicts.len(),
                actor.by_whom()
            ))
            .record(&state.db)
            .await;
        return Ok(plan);
    }
    let raced = |e: sqlx::Error| -> AppError {
        if is_unique_violation(&e) {
            AppError::Conflict(
                "A connection or connector with one of these link names was created meanwhile. Nothing was imported; preview the import again."
                    .into(),
            )
        } else {
            e.into()
        }
    };
    let ws = actor.workspace_id();
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let mut connector_ids = Vec::with_capacity(prepared.connectors.len());
    for k in &prepared.connectors {
        let config = serde_json::to_string(&k.config).map_err(|e| AppError::internal("connector config", e))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO connectors (workspace_id, kind, name, link_name, description, auth_type, config, created_by, created_at)
             VALUES ($1, 'custom', $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(ws)
        .bind(k.name.as_str())
        .bind(k.link_name.as_str())
        .bind(&k.description)
        .bind(k.auth_type.as_str())
        .bind(config)
        .bind(actor.user_id())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(raced)?;
        connector_ids.push(id);
    }
    let mut created = Vec::new();
    for (target, grant_access) in &prepared.connections {
        let id = match target {
            Target::Existing(id) => *id,
            Target::New(c) => {
                let connector_id = match c.connector {
                    ConnectorTarget::Existing(id) => id,
                    ConnectorTarget::New(i) => connector_ids[i],
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, scopes,
                                              same_for_all_envs, installed_from, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(ws)
                .bind(connector_id)
                .bind(c.display_name.as_str())
                .bind(c.link_name.as_str())
                .bind(c.conn_type.as_str())
                .bind(c.scopes.join(" "))
                .bind(c.same_for_all_envs as i64)
                .bind(&prepared.source)
                .bind(actor.user_id())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(raced)?;
                created.push((id, c.link_name.to_string()));
                id
            }
        };
        if *grant_access {
            crate::connections::ssr::grant_access(&mut tx, id, prepared.app_id).await?;
        }
    }
    tx.commit().await?;
    for k in plan.connectors.iter().filter(|k| k.action == PlanAction::Create) {
        actor
            .operation(Level::Info, OperationKind::ConnectorCreated)
            .detail(format!("custom connector {} (imported, no client secret){}", k.link_name, actor.by_whom()))
            .record(&state.db)
            .await;
    }
    for (id, link) in &created {
        actor
            .operation(Level::Info, OperationKind::ConnectionCreated)
            .on(*id)
            .detail(format!("{link} (imported, unauthorized){}", actor.by_whom()))
            .record(&state.db)
            .await;
    }
    let matched = plan.connections.iter().filter(|c| c.action == PlanAction::Match).count();
    actor
        .operation(Level::Info, OperationKind::ConnectionsImported)
        .detail(format!(
            "application {}: {} connection(s) created, {matched} matched, {} need authorizing{}",
            plan.application,
            created.len(),
            plan.needing_authorization().count(),
            actor.by_whom()
        ))
        .record(&state.db)
        .await;
    plan.applied = true;
    Ok(plan)
}
