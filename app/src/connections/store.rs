//! One connection: its row for server-side decisions, creation, details and application access.

use super::{AppAccess, ConnectionDetails, EnvironmentAuthorization, NewConnection, Status};
use crate::auth::SessionUser;
use crate::domain::{ApplicationId, ConnectionId, ConnectionType, Environment};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide, Action, Context};
use crate::ssr::AppState;

/// A connection row, for server-side decisions.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: i64,
    pub workspace_id: i64,
    pub connector_id: i64,
    pub display_name: String,
    pub link_name: String,
    pub conn_type: ConnectionType,
    pub scopes: String,
    pub same_for_all_envs: bool,
    pub enabled: bool,
    /// Who disabled it, while it is disabled.
    pub disabled_by: Option<String>,
    pub deprecated: bool,
    pub used_in_datasource_or_schedule: bool,
    pub primary_account_configured: bool,
}

impl Connection {
    /// Refuses (403 "This connection is disabled by <who>.") while the connection is disabled.
    pub fn ensure_enabled(&self) -> AppResult<()> {
        if self.enabled {
            return Ok(());
        }
        Err(AppError::forbidden(self.disabled_message()))
    }

    /// "This connection is disabled by <who>." (or without the name when nobody is recorded).
    pub fn disabled_message(&self) -> String {
        match &self.disabled_by {
            Some(who) => format!("This connection is disabled by {who}."),
            None => "This connection is disabled.".to_string(),
        }
    }

    pub fn policy_context(&self) -> Context {
        Context {
            used_in_datasource_or_schedule: self.used_in_datasource_or_schedule,
            primary_account_configured: self.primary_account_configured,
        }
    }
}

/// [`Connection`] as read.
#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: i64,
    workspace_id: i64,
    connector_id: i64,
    display_name: String,
    link_name: String,
    conn_type: String,
    scopes: String,
    same_for_all_envs: i64,
    enabled: i64,
    disabled_by: Option<String>,
    deprecated: i64,
    used_in_datasource_or_schedule: i64,
    primary_accounts: i64,
}

/// Loads a connection of the caller's workspace (other workspaces' ids are "not found").
pub async fn load(state: &AppState, workspace_id: i64, id: i64) -> AppResult<Connection> {
    let row: Option<ConnectionRow> = sqlx::query_as(concat!(
        "SELECT c.id, c.workspace_id, c.connector_id, c.display_name, c.link_name, c.conn_type, c.scopes,
                c.same_for_all_envs, c.enabled, c.deprecated,
                (SELECT u.display_name FROM users u WHERE u.id = c.disabled_by) AS disabled_by, ",
        usage_columns!(),
        "
         FROM connections c WHERE c.id = $1 AND c.workspace_id = $2"
    ))
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let row = row.ok_or_else(|| AppError::not_found("There is no such connection."))?;
    Ok(Connection {
        id: row.id,
        workspace_id: row.workspace_id,
        connector_id: row.connector_id,
        display_name: row.display_name,
        link_name: row.link_name,
        conn_type: ConnectionType::parse(&row.conn_type)?,
        scopes: row.scopes,
        same_for_all_envs: row.same_for_all_envs != 0,
        enabled: row.enabled != 0,
        disabled_by: row.disabled_by,
        deprecated: row.deprecated != 0,
        used_in_datasource_or_schedule: row.used_in_datasource_or_schedule > 0,
        primary_account_configured: row.primary_accounts > 0,
    })
}

pub async fn find_by_link(state: &AppState, user: &SessionUser, link_name: &str) -> AppResult<i64> {
    sqlx::query_scalar("SELECT id FROM connections WHERE workspace_id = $1 AND link_name = $2")
        .bind(user.workspace_id)
        .bind(link_name)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no connection '{link_name}'.")))
}

/// Creates a connection after checking its name, link name and scopes against the connector.
pub async fn create(state: &AppState, user: &SessionUser, input: NewConnection) -> AppResult<i64> {
    use crate::domain::{DisplayName, LinkName};
    let name = DisplayName::parse("display_name", &input.display_name)?;
    let link_raw =
        if input.link_name.trim().is_empty() { LinkName::derive_from(name.as_str()) } else { input.link_name.clone() };
    let link = LinkName::parse(&link_raw)?;
    let conn_type = match input.conn_type {
        ConnectionType::Admin | ConnectionType::LoggedInUser => input.conn_type,
        ConnectionType::System => {
            return Err(AppError::invalid(
                "conn_type",
                "System connections are created by the platform when an integration needs one.",
            ))
        }
    };
    let summaries = crate::connectors::ssr::list(state, user.workspace_id).await?;
    let connector = summaries
        .into_iter()
        .find(|c| c.id == input.connector_id)
        .ok_or_else(|| AppError::invalid("connector_id", "Pick a connector from the list."))?;
    let scopes = checked_scopes(&connector.name, &connector.scopes, &input.scopes)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, scopes,
                                  same_for_all_envs, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(user.workspace_id)
    .bind(connector.id)
    .bind(name.as_str())
    .bind(link.as_str())
    .bind(conn_type.as_str())
    .bind(scopes.join(" "))
    .bind(input.same_for_all_envs as i64)
    .bind(user.id)
    .bind(crate::ssr::ids::now_ms())
    .fetch_one(&state.db.pool)
    .await
    .map_err(|e| {
        if crate::ssr::db::is_unique_violation(&e) {
            AppError::invalid(
                "link_name",
                format!("A connection with the link name '{link}' already exists. Choose another."),
            )
        } else {
            e.into()
        }
    })?;
    Operation::by(user, Level::Info, OperationKind::ConnectionCreated)
        .on(id)
        .detail(format!("{} ({})", link, connector.name))
        .record(&state.db)
        .await;
    Ok(id)
}

/// The scopes asked for, checked against the connector's (`name`, `offered`): unknown ones are
/// refused, duplicates dropped, required ones added.
pub fn checked_scopes(
    name: &str,
    offered: &[crate::connectors::ScopeDef],
    requested: &[String],
) -> AppResult<Vec<String>> {
    let mut scopes: Vec<String> = Vec::new();
    for s in requested {
        if !offered.iter().any(|d| &d.name == s) {
            return Err(AppError::invalid("scopes", format!("'{s}' is not a scope of {name}.")));
        }
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    for required in offered.iter().filter(|d| d.required) {
        if !scopes.contains(&required.name) {
            scopes.push(required.name.clone());
        }
    }
    Ok(scopes)
}

/// One environment's authorization, for [`details`].
#[derive(sqlx::FromRow)]
struct AuthorizationRow {
    environment: String,
    account_name: Option<String>,
    authorized_by: String,
    authorized_at: i64,
    status: String,
    status_reason: Option<String>,
}

/// One application's access to the connection, for [`details`].
#[derive(sqlx::FromRow)]
struct AccessRow {
    application_id: i64,
    name: String,
    enabled: Option<i64>,
}

pub async fn details(state: &AppState, user: &SessionUser, id: i64) -> AppResult<ConnectionDetails> {
    let conn = load(state, user.workspace_id, id).await?;
    let cx = conn.policy_context();
    if !decide(user.role, conn.conn_type, Action::View, cx).is_allowed() {
        return Err(AppError::not_found("There is no such connection."));
    }
    let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
    let created_by: Option<String> = sqlx::query_scalar(
        "SELECT u.display_name FROM connections c JOIN users u ON u.id = c.created_by WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?;
    let subject = crate::authorizations::ssr::subject_for(&conn, user);
    let rows: Vec<AuthorizationRow> = sqlx::query_as(concat!(
        "SELECT ca.environment, a.name AS account_name, u.display_name AS authorized_by, ca.authorized_at, ",
        link_status!(),
        " AS status, ",
        link_reason!(),
        " AS status_reason
         FROM connection_authorizations ca
         JOIN authorized_accounts a ON a.id = ca.account_id
         JOIN users u ON u.id = ca.authorized_by
         WHERE ca.connection_id = $1 AND ca.subject_user_id = $2"
    ))
    .bind(id)
    .bind(subject)
    .fetch_all(&state.db.pool)
    .await?;
    let revoked: Vec<String> = sqlx::query_scalar(
        "SELECT environment FROM revoked_authorizations WHERE connection_id = $1 AND subject_user_id = $2",
    )
    .bind(id)
    .bind(subject)
    .fetch_all(&state.db.pool)
    .await?;
    let environments = Environment::ALL
        .into_iter()
        .map(|env| match rows.iter().find(|r| r.environment == env.as_str()) {
            Some(r) => {
                let status = Status::from_db(Some(&r.status));
                EnvironmentAuthorization {
                    environment: env,
                    account_name: r.account_name.clone(),
                    authorized_by: Some(r.authorized_by.clone()),
                    authorized_at_ms: Some(r.authorized_at),
                    status,
                    status_reason: if status == Status::NeedsReauthorization { r.status_reason.clone() } else { None },
                }
            }
            None => EnvironmentAuthorization {
                environment: env,
                account_name: None,
                authorized_by: None,
                authorized_at_ms: None,
                status: if revoked.iter().any(|r| r == env.as_str()) { Status::Revoked } else { Status::NotConnected },
                status_reason: None,
            },
        })
        .collect();
    let can_manage = decide(user.role, conn.conn_type, Action::Manage, cx).is_allowed();
    let access = if can_manage {
        let rows: Vec<AccessRow> = sqlx::query_as(
            "SELECT a.id AS application_id, a.name, x.enabled FROM applications a
             LEFT JOIN connection_access x ON x.application_id = a.id AND x.connection_id = $1
             WHERE a.workspace_id = $2 ORDER BY a.name",
        )
        .bind(id)
        .bind(user.workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
        rows.into_iter()
            .map(|r| AppAccess { application_id: r.application_id, name: r.name, enabled: r.enabled.unwrap_or(0) != 0 })
            .collect()
    } else {
        vec![]
    };
    Ok(ConnectionDetails {
        id,
        display_name: conn.display_name.clone(),
        link_name: conn.link_name.clone(),
        service_name: connector.name.clone(),
        connector_id: connector.id,
        auth_type: connector.auth_type,
        custom_connector: connector.kind == crate::connectors::ConnectorKind::Custom,
        username_label: connector.config.username_label(),
        password_label: connector.config.password_label(),
        conn_type: conn.conn_type,
        scopes: conn.scopes.split_whitespace().map(str::to_owned).collect(),
        same_for_all_envs: conn.same_for_all_envs,
        created_by,
        environments,
        access,
        authorize: decide(user.role, conn.conn_type, Action::Authorize, cx),
        can_manage,
        enabled: conn.enabled,
        disabled_by: conn.disabled_by.clone(),
        available_scopes: connector.config.scopes.clone(),
        oversees_users: decide(user.role, conn.conn_type, Action::OthersAuthorizations, cx).is_allowed(),
    })
}

pub async fn set_access(
    state: &AppState,
    user: &SessionUser,
    connection_id: ConnectionId,
    application_id: ApplicationId,
    enabled: bool,
) -> AppResult<()> {
    let conn = load(state, user.workspace_id, connection_id.0).await?;
    let app: Option<i64> = sqlx::query_scalar("SELECT id FROM applications WHERE id = $1 AND workspace_id = $2")
        .bind(application_id)
        .bind(user.workspace_id)
        .fetch_optional(&state.db.pool)
        .await?;
    app.ok_or_else(|| AppError::not_found("There is no such application."))?;
    sqlx::query(
        "INSERT INTO connection_access (connection_id, application_id, enabled) VALUES ($1, $2, $3)
         ON CONFLICT (connection_id, application_id) DO UPDATE SET enabled = excluded.enabled",
    )
    .bind(conn.id)
    .bind(application_id)
    .bind(enabled as i64)
    .execute(&state.db.pool)
    .await?;
    Operation::by(
        user,
        Level::Info,
        if enabled { OperationKind::AccessEnabled } else { OperationKind::AccessDisabled },
    )
    .on(conn.id)
    .detail(format!("application {application_id}"))
    .record(&state.db)
    .await;
    Ok(())
}

/// Gives an application access to a connection (Connection Access on), in the caller's transaction.
pub async fn grant_access(db: &mut sqlx::AnyConnection, connection_id: i64, application_id: i64) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO connection_access (connection_id, application_id, enabled) VALUES ($1, $2, 1)
         ON CONFLICT (connection_id, application_id) DO UPDATE SET enabled = 1",
    )
    .bind(connection_id)
    .bind(application_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Only applications with access may use a connection (datasources, workflows, invoke URL).
pub async fn ensure_app_access(
    state: &AppState,
    connection_id: ConnectionId,
    application_id: ApplicationId,
) -> AppResult<()> {
    let enabled: Option<i64> =
        sqlx::query_scalar("SELECT enabled FROM connection_access WHERE connection_id = $1 AND application_id = $2")
            .bind(connection_id)
            .bind(application_id)
            .fetch_optional(&state.db.pool)
            .await?;
    if enabled == Some(1) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "This application has no access to the connection. An admin can enable it under Connection Access.",
        ))
    }
}
