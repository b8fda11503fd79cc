//! Who promotes (a signed-in builder, or the operator running `server export` / `server
//! import`), and the export: the application's connections with their connectors, read from
//! the rows — never from `secret_ct` or any account, so no secret can be part of it.

use super::{ConnectorRef, CustomConnectorDefinition, ExportDocument, ExportedApplication, ExportedConnection};
use crate::auth::SessionUser;
use crate::connectors::{input_from_config, ConnectorConfig, ConnectorKind};
use crate::domain::AuthType;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide_workspace, WorkspaceAction};
use crate::ssr::AppState;

/// Who exports or imports.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in person: the policy decides ([`WorkspaceAction::PromoteConnections`]).
    User(&'a SessionUser),
    /// Whoever runs `server export` / `server import` on the server with its database settings.
    Operator { workspace_id: i64 },
}

impl Actor<'_> {
    pub fn workspace_id(&self) -> i64 {
        match self {
            Actor::User(u) => u.workspace_id,
            Actor::Operator { workspace_id } => *workspace_id,
        }
    }

    /// The user recorded as creator (none for the operator).
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Actor::User(u) => Some(u.id),
            Actor::Operator { .. } => None,
        }
    }

    /// An Operations entry done by this actor.
    pub fn operation(&self, level: Level, kind: OperationKind) -> Operation<'static> {
        match self {
            Actor::User(u) => Operation::by(u, level, kind),
            Actor::Operator { workspace_id } => Operation::new(level, kind).workspace(*workspace_id),
        }
    }

    /// Builders may export and import (R1.3); anyone else gets 403, written to Operations.
    pub(super) async fn ensure_may_promote(&self, state: &AppState) -> AppResult<()> {
        let Actor::User(user) = self else { return Ok(()) };
        if decide_workspace(user.role, WorkspaceAction::PromoteConnections) {
            return Ok(());
        }
        Operation::by(user, Level::Warn, OperationKind::AccessDenied)
            .detail(format!("{} tried to export or import connections", user.email))
            .record(&state.db)
            .await;
        Err(AppError::forbidden(
            "Only super admins, admins and developers can export or import connections. Contact your admin if you need this.",
        ))
    }

    /// How entries name who did it (the operator has no user).
    pub(super) fn by_whom(&self) -> &'static str {
        match self {
            Actor::User(_) => "",
            Actor::Operator { .. } => " (server command)",
        }
    }
}

/// A workspace by id or by name (a name several workspaces share must be given as the id).
pub async fn find_workspace(state: &AppState, id_or_name: &str) -> AppResult<i64> {
    let wanted = id_or_name.trim();
    let ids: Vec<i64> = match wanted.parse::<i64>() {
        Ok(id) => {
            sqlx::query_scalar("SELECT id FROM workspaces WHERE id = $1").bind(id).fetch_all(&state.db.pool).await?
        }
        Err(_) => {
            sqlx::query_scalar("SELECT id FROM workspaces WHERE name = $1 ORDER BY id")
                .bind(wanted)
                .fetch_all(&state.db.pool)
                .await?
        }
    };
    match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(AppError::not_found(format!("There is no workspace '{wanted}'."))),
        _ => Err(AppError::invalid("workspace", format!("Several workspaces are named '{wanted}'; give its id."))),
    }
}

/// An application of the workspace by link name: its id and name.
pub(super) async fn find_application(
    state: &AppState,
    workspace_id: i64,
    link: &str,
) -> AppResult<Option<(i64, String)>> {
    Ok(sqlx::query_as("SELECT id, name FROM applications WHERE workspace_id = $1 AND link_name = $2")
        .bind(workspace_id)
        .bind(link)
        .fetch_optional(&state.db.pool)
        .await?)
}

/// One connection the application references, with its connector.
#[derive(sqlx::FromRow)]
struct ReferencedRow {
    link_name: String,
    display_name: String,
    conn_type: String,
    scopes: String,
    same_for_all_envs: i64,
    access: i64,
    #[sqlx(try_from = "String")]
    connector_kind: ConnectorKind,
    connector_link: String,
    connector_name: String,
    connector_description: String,
    #[sqlx(try_from = "String")]
    connector_auth: AuthType,
    connector_config: String,
}

/// The connections `app_link` references — used by its components or datasources, or with a
/// Connection Access row for it — as a document.
#[tracing::instrument(skip_all, fields(app = app_link, workspace = actor.workspace_id()))]
pub async fn export(state: &AppState, actor: &Actor<'_>, app_link: &str) -> AppResult<ExportDocument> {
    actor.ensure_may_promote(state).await?;
    let ws = actor.workspace_id();
    let (app_id, app_name) = find_application(state, ws, app_link)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no application '{app_link}'.")))?;
    let workspace: String =
        sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1").bind(ws).fetch_one(&state.db.pool).await?;
    let rows: Vec<ReferencedRow> = sqlx::query_as(
        "SELECT c.link_name, c.display_name, c.conn_type, c.scopes, c.same_for_all_envs,
                COALESCE((SELECT x.enabled FROM connection_access x
                          WHERE x.connection_id = c.id AND x.application_id = $2), 0) AS access,
                k.kind AS connector_kind, k.link_name AS connector_link, k.name AS connector_name,
                k.description AS connector_description, k.auth_type AS connector_auth, k.config AS connector_config
         FROM connections c JOIN connectors k ON k.id = c.connector_id
         WHERE c.workspace_id = $1 AND (
               EXISTS (SELECT 1 FROM connection_access x WHERE x.connection_id = c.id AND x.application_id = $2)
            OR EXISTS (SELECT 1 FROM component_connections cc JOIN components p ON p.id = cc.component_id
                       WHERE cc.connection_id = c.id AND p.application_id = $2)
            OR EXISTS (SELECT 1 FROM datasources d WHERE d.connection_id = c.id AND d.application_id = $2))
         ORDER BY c.link_name",
    )
    .bind(ws)
    .bind(app_id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut connections = Vec::with_capacity(rows.len());
    let mut custom_connectors: Vec<CustomConnectorDefinition> = Vec::new();
    for r in rows {
        let connector = match r.connector_kind {
            ConnectorKind::BuiltIn => ConnectorRef::Builtin { link_name: r.connector_link },
            ConnectorKind::Custom => {
                if !custom_connectors.iter().any(|d| d.link_name == r.connector_link) {
                    let config: ConnectorConfig = serde_json::from_str(&r.connector_config)
                        .map_err(|e| AppError::internal("connector config", e))?;
                    let input = input_from_config(
                        &r.connector_name,
                        &r.connector_link,
                        &r.connector_description,
                        r.connector_auth,
                        &config,
                    );
                    custom_connectors
                        .push(CustomConnectorDefinition::from_input(input, config.iss_parameter_supported));
                }
                ConnectorRef::Custom { link_name: r.connector_link }
            }
        };
        connections.push(ExportedConnection {
            link_name: r.link_name,
            display_name: r.display_name,
            conn_type: r.conn_type,
            connector,
            scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
            same_for_all_environments: r.same_for_all_envs != 0,
            application_access: r.access != 0,
        });
    }
    actor
        .operation(Level::Info, OperationKind::ConnectionsExported)
        .detail(format!(
            "application {app_link}: {} connection(s), {} custom connector(s){}",
            connections.len(),
            custom_connectors.len(),
            actor.by_whom()
        ))
        .record(&state.db)
        .await;
    Ok(ExportDocument {
        format: super::FORMAT.into(),
        version: super::VERSION,
        exported_at_ms: crate::ssr::ids::now_ms(),
        workspace,
        application: ExportedApplication { link_name: app_link.to_string(), name: app_name },
        connections,
        custom_connectors,
    })
}

/// `server export`: the workspace by id or name, the application's document as JSON.
pub async fn export_command(state: &AppState, workspace: &str, app_link: &str) -> AppResult<String> {
    let actor = Actor::Operator { workspace_id: find_workspace(state, workspace).await? };
    to_json(&export(state, &actor, app_link).await?)
}

/// The document as people and files get it (pretty JSON).
pub fn to_json(doc: &ExportDocument) -> AppResult<String> {
    serde_json::to_string_pretty(doc).map_err(|e| AppError::internal("export document", e))
}
