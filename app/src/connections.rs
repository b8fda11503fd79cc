//! Connections as the panel (live and edit mode) and the Microservices page list them.
//! What each person may see is decided here, on the server, by [`crate::policy`].

use crate::domain::{ConnectionType, Environment};
use crate::error::AppError;
use crate::policy::Decision;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Connected,
    /// Never authorized (for this environment and, for logged-in-user connections, this user).
    NotConnected,
    /// The stored authorization stopped working; `status_reason` says why (refresh token
    /// revoked or expired, provider unreachable, an interrupted refresh).
    NeedsReauthorization,
    /// Someone revoked it; stays until it is authorized again.
    Revoked,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Connected => "Connected",
            Status::NotConnected => "Not connected",
            Status::NeedsReauthorization => "Needs reauthorization",
            Status::Revoked => "Revoked",
        }
    }

    /// The label with the reason, e.g. "Needs reauthorization: provider unreachable".
    pub fn describe(self, reason: Option<&str>) -> String {
        match (self, reason) {
            (Status::NeedsReauthorization, Some(r)) if !r.is_empty() => format!("{}: {r}", self.label()),
            _ => self.label().to_string(),
        }
    }

    /// From the stored account status (`None`: no account).
    pub fn from_db(status: Option<&str>) -> Status {
        match status {
            Some("connected") => Status::Connected,
            Some("needs_reauthorization") => Status::NeedsReauthorization,
            Some("revoked") => Status::Revoked,
            _ => Status::NotConnected,
        }
    }
}

/// One connection in the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEntry {
    pub id: i64,
    pub display_name: String,
    pub link_name: String,
    pub service_name: String,
    pub conn_type: ConnectionType,
    pub status: Status,
    /// Why it needs reauthorization.
    #[serde(default)]
    pub status_reason: Option<String>,
    pub account_name: Option<String>,
    /// What the caller may do about authorizing it.
    pub authorize: Decision,
    pub installed_from: Option<String>,
    pub auth_type: crate::domain::AuthType,
    pub same_for_all_envs: bool,
    pub username_label: String,
    pub password_label: String,
    /// A payment gateway: listed under "Payment gateways" in the panel.
    #[serde(default)]
    pub payment_gateway: bool,
}

/// Connections used by an application (or by one of its components), as the caller may see
/// them, with their status in `environment`.
#[server(prefix = "/api", endpoint = "app_connections")]
pub async fn app_connections(
    app: String,
    component: Option<String>,
    environment: Environment,
) -> Result<Vec<ConnectionEntry>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::for_application(&state, &user, &app, component.as_deref(), environment).await
}

/// Every connection in the workspace, for the Microservices page (builders only).
#[server(prefix = "/api", endpoint = "workspace_connections")]
pub async fn workspace_connections() -> Result<Vec<ConnectionEntry>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("manage connections").await?;
    ssr::for_workspace(&state, &user).await
}

/// What "Create" / "Create and Authorize" submits (seed 002 steps 5–8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NewConnection {
    pub connector_id: i64,
    pub display_name: String,
    /// Derived from the name when left empty.
    #[serde(default)]
    pub link_name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub same_for_all_envs: bool,
    /// `admin` or `user` (system connections are created by the platform).
    pub conn_type: String,
}

/// Who authorized a connection for one environment (seed 002 "Connection details").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentAuthorization {
    pub environment: Environment,
    pub account_name: Option<String>,
    pub authorized_by: Option<String>,
    pub authorized_at_ms: Option<i64>,
    pub status: Status,
    /// Why it needs reauthorization.
    #[serde(default)]
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAccess {
    pub application_id: i64,
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionDetails {
    pub id: i64,
    pub display_name: String,
    pub link_name: String,
    pub service_name: String,
    pub connector_id: i64,
    pub auth_type: crate::domain::AuthType,
    pub custom_connector: bool,
    pub username_label: String,
    pub password_label: String,
    pub conn_type: ConnectionType,
    pub scopes: Vec<String>,
    pub same_for_all_envs: bool,
    pub created_by: Option<String>,
    pub environments: Vec<EnvironmentAuthorization>,
    pub access: Vec<AppAccess>,
    pub authorize: Decision,
    pub can_manage: bool,
}

#[server(prefix = "/api", endpoint = "create_connection")]
pub async fn create_connection(input: NewConnection) -> Result<ConnectionDetails, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("create connections").await?;
    let id = ssr::create(&state, &user, input).await?;
    ssr::details(&state, &user, id).await
}

#[server(prefix = "/api", endpoint = "get_connection")]
pub async fn get_connection(link_name: String) -> Result<ConnectionDetails, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    let id = ssr::find_by_link(&state, &user, &link_name).await?;
    ssr::details(&state, &user, id).await
}

#[server(prefix = "/api", endpoint = "set_connection_access")]
pub async fn set_connection_access(connection_id: i64, application_id: i64, enabled: bool) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("change connection access").await?;
    ssr::set_access(&state, &user, connection_id, application_id, enabled).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::policy::{decide, Action, Context};
    use crate::ssr::AppState;

    type Row = (
        i64,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        i64,
        String,
        String,
        i64,
        Option<String>,
    );

    /// The panel entry's columns; each caller adds its own bound `WHERE` (no SQL is assembled
    /// from values).
    macro_rules! entry_select {
        () => {
            "
        SELECT c.id, c.display_name, c.link_name, k.name, c.conn_type, c.installed_from,
               a.name,
               CASE WHEN a.status IS NULL AND EXISTS (
                      SELECT 1 FROM revoked_authorizations r
                      WHERE r.connection_id = c.id AND r.environment = $1
                        AND r.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE 0 END)
                    THEN 'revoked' ELSE a.status END,
               (SELECT COUNT(*) FROM datasources d WHERE d.connection_id = c.id)
                 + (SELECT COUNT(*) FROM component_connections cc JOIN components sc ON sc.id = cc.component_id
                    WHERE cc.connection_id = c.id AND sc.kind = 'schedule'),
               (SELECT COUNT(*) FROM connection_authorizations p
                 WHERE p.connection_id = c.id AND p.subject_user_id = 0),
               k.auth_type, k.config, c.same_for_all_envs, a.status_reason
        FROM connections c
        JOIN connectors k ON k.id = c.connector_id
        LEFT JOIN connection_authorizations ca
               ON ca.connection_id = c.id AND ca.environment = $1
              AND ca.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE 0 END
        LEFT JOIN authorized_accounts a ON a.id = ca.account_id"
        };
    }

    fn entry(user: &SessionUser, row: Row) -> AppResult<Option<ConnectionEntry>> {
        let (
            id,
            display_name,
            link_name,
            service_name,
            kind,
            installed_from,
            account,
            status,
            used_in_ds,
            primary,
            auth,
            config,
            same,
            status_reason,
        ) = row;
        let config: crate::connectors::ConnectorConfig =
            serde_json::from_str(&config).map_err(|e| AppError::internal("connector config", e))?;
        let conn_type = ConnectionType::parse(&kind)?;
        let cx = Context { used_in_datasource_or_schedule: used_in_ds > 0, primary_account_configured: primary > 0 };
        if !decide(user.role, conn_type, Action::View, cx).is_allowed() {
            return Ok(None);
        }
        let status = Status::from_db(status.as_deref());
        let account_name = if matches!(status, Status::NotConnected | Status::Revoked) { None } else { account };
        Ok(Some(ConnectionEntry {
            id,
            display_name,
            link_name,
            service_name,
            conn_type,
            status,
            status_reason: if status == Status::NeedsReauthorization { status_reason } else { None },
            account_name,
            authorize: decide(user.role, conn_type, Action::Authorize, cx),
            installed_from,
            auth_type: crate::domain::AuthType::parse(&auth)?,
            same_for_all_envs: same != 0,
            username_label: config.username_label(),
            password_label: config.password_label(),
            payment_gateway: config.payment_gateway,
        }))
    }

    fn visible(user: &SessionUser, rows: Vec<Row>) -> AppResult<Vec<ConnectionEntry>> {
        Ok(rows.into_iter().map(|r| entry(user, r)).collect::<AppResult<Vec<_>>>()?.into_iter().flatten().collect())
    }

    /// The panel of one application (or one of its components): driven from the application's
    /// components, so its cost follows the connections the application uses, not the size of
    /// the workspace. `$1` environment, `$2` caller, `$3` workspace, `$4` application, `$5` one
    /// component's link name or '', `$6` 1 when the caller may open every component.
    pub const FOR_APPLICATION: &str = concat!(
        entry_select!(),
        // `+ 0` keeps SQLite from walking the workspace's connections by their workspace index:
        // the ids from the subquery drive the look-ups.
        " WHERE c.workspace_id + 0 = $3 AND c.id IN (
           SELECT cc.connection_id FROM components sc
           JOIN component_connections cc ON cc.component_id = sc.id
           WHERE sc.application_id = $4
             AND ($5 = '' OR sc.link_name = $5)
             AND ($6 = 1 OR EXISTS (SELECT 1 FROM component_permissions p
                                    WHERE p.component_id = sc.id AND p.user_id = $2)))
         ORDER BY c.display_name"
    );

    pub async fn for_application(
        state: &AppState,
        user: &SessionUser,
        app: &str,
        component: Option<&str>,
        environment: Environment,
    ) -> AppResult<Vec<ConnectionEntry>> {
        let app = crate::applications::ssr::find(state, user, app).await?;
        if let Some(link) = component {
            // Only components the caller may open count (plain users: the ones they have
            // permission for); asking for another one is "not found".
            let allowed = crate::applications::ssr::components(state, user, app.id).await?;
            if !allowed.iter().any(|c| c.link_name == link) {
                return Err(AppError::not_found(format!("There is no component '{link}' you can open.")));
            }
        }
        let rows: Vec<Row> = sqlx::query_as(FOR_APPLICATION)
            .bind(environment.as_str())
            .bind(user.id)
            .bind(user.workspace_id)
            .bind(app.id)
            .bind(component.unwrap_or_default())
            .bind(user.role.is_builder() as i64)
            .fetch_all(&state.db.pool)
            .await?;
        visible(user, rows)
    }

    pub async fn for_workspace(state: &AppState, user: &SessionUser) -> AppResult<Vec<ConnectionEntry>> {
        let sql = concat!(entry_select!(), " WHERE c.workspace_id = $3 ORDER BY c.display_name");
        let rows: Vec<Row> = sqlx::query_as(sql)
            .bind(Environment::Development.as_str())
            .bind(user.id)
            .bind(user.workspace_id)
            .fetch_all(&state.db.pool)
            .await?;
        visible(user, rows)
    }

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
        pub deprecated: bool,
        pub used_in_datasource_or_schedule: bool,
        pub primary_account_configured: bool,
    }

    impl Connection {
        pub fn policy_context(&self) -> Context {
            Context {
                used_in_datasource_or_schedule: self.used_in_datasource_or_schedule,
                primary_account_configured: self.primary_account_configured,
            }
        }
    }

    type ConnRow = (i64, i64, i64, String, String, String, String, i64, i64, i64, i64, i64);

    /// Loads a connection of the caller's workspace (other workspaces' ids are "not found").
    pub async fn load(state: &AppState, workspace_id: i64, id: i64) -> AppResult<Connection> {
        let row: Option<ConnRow> = sqlx::query_as(
            "SELECT c.id, c.workspace_id, c.connector_id, c.display_name, c.link_name, c.conn_type, c.scopes,
                    c.same_for_all_envs, c.enabled, c.deprecated,
                    (SELECT COUNT(*) FROM datasources d WHERE d.connection_id = c.id)
                      + (SELECT COUNT(*) FROM component_connections cc JOIN components sc ON sc.id = cc.component_id
                         WHERE cc.connection_id = c.id AND sc.kind = 'schedule'),
                    (SELECT COUNT(*) FROM connection_authorizations p WHERE p.connection_id = c.id AND p.subject_user_id = 0)
             FROM connections c WHERE c.id = $1 AND c.workspace_id = $2",
        )
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&state.db.pool)
        .await?;
        let (
            id,
            workspace_id,
            connector_id,
            display_name,
            link_name,
            kind,
            scopes,
            same,
            enabled,
            deprecated,
            ds,
            primary,
        ) = row.ok_or_else(|| AppError::not_found("There is no such connection."))?;
        Ok(Connection {
            id,
            workspace_id,
            connector_id,
            display_name,
            link_name,
            conn_type: ConnectionType::parse(&kind)?,
            scopes,
            same_for_all_envs: same != 0,
            enabled: enabled != 0,
            deprecated: deprecated != 0,
            used_in_datasource_or_schedule: ds > 0,
            primary_account_configured: primary > 0,
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
        let link_raw = if input.link_name.trim().is_empty() {
            LinkName::derive_from(name.as_str())
        } else {
            input.link_name.clone()
        };
        let link = LinkName::parse(&link_raw)?;
        let conn_type = match input.conn_type.as_str() {
            "admin" => ConnectionType::Admin,
            "user" => ConnectionType::LoggedInUser,
            "system" => {
                return Err(AppError::invalid(
                    "conn_type",
                    "System connections are created by the platform when an integration needs one.",
                ))
            }
            other => return Err(AppError::invalid("conn_type", format!("Unknown connection type '{other}'."))),
        };
        let summaries = crate::connectors::ssr::list(state, user.workspace_id).await?;
        let connector = summaries
            .into_iter()
            .find(|c| c.id == input.connector_id)
            .ok_or_else(|| AppError::invalid("connector_id", "Pick a connector from the list."))?;
        let mut scopes: Vec<String> = Vec::new();
        for s in &input.scopes {
            if !connector.scopes.iter().any(|d| &d.name == s) {
                return Err(AppError::invalid("scopes", format!("'{s}' is not a scope of {}.", connector.name)));
            }
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        for required in connector.scopes.iter().filter(|d| d.required) {
            if !scopes.contains(&required.name) {
                scopes.push(required.name.clone());
            }
        }
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
        crate::operations::ssr::record(
            &state.db,
            Some(user.workspace_id),
            crate::operations::ssr::Level::Info,
            "connection_created",
            Some(user.id),
            Some(id),
            None,
            &format!("{} ({})", link, connector.name),
        )
        .await;
        Ok(id)
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
        let rows: Vec<(String, Option<String>, String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT ca.environment, a.name, u.display_name, ca.authorized_at, a.status, a.status_reason
             FROM connection_authorizations ca
             JOIN authorized_accounts a ON a.id = ca.account_id
             JOIN users u ON u.id = ca.authorized_by
             WHERE ca.connection_id = $1 AND ca.subject_user_id = $2",
        )
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
            .map(|env| match rows.iter().find(|r| r.0 == env.as_str()) {
                Some((_, account, by, at, status, reason)) => {
                    let status = Status::from_db(Some(status));
                    EnvironmentAuthorization {
                        environment: env,
                        account_name: account.clone(),
                        authorized_by: Some(by.clone()),
                        authorized_at_ms: Some(*at),
                        status,
                        status_reason: if status == Status::NeedsReauthorization { reason.clone() } else { None },
                    }
                }
                None => EnvironmentAuthorization {
                    environment: env,
                    account_name: None,
                    authorized_by: None,
                    authorized_at_ms: None,
                    status: if revoked.iter().any(|r| r == env.as_str()) {
                        Status::Revoked
                    } else {
                        Status::NotConnected
                    },
                    status_reason: None,
                },
            })
            .collect();
        let can_manage = decide(user.role, conn.conn_type, Action::Manage, cx).is_allowed();
        let access = if can_manage {
            let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
                "SELECT a.id, a.name, x.enabled FROM applications a
                 LEFT JOIN connection_access x ON x.application_id = a.id AND x.connection_id = $1
                 WHERE a.workspace_id = $2 ORDER BY a.name",
            )
            .bind(id)
            .bind(user.workspace_id)
            .fetch_all(&state.db.pool)
            .await?;
            rows.into_iter()
                .map(|(application_id, name, enabled)| AppAccess {
                    application_id,
                    name,
                    enabled: enabled.unwrap_or(0) != 0,
                })
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
        })
    }

    pub async fn set_access(
        state: &AppState,
        user: &SessionUser,
        connection_id: i64,
        application_id: i64,
        enabled: bool,
    ) -> AppResult<()> {
        let conn = load(state, user.workspace_id, connection_id).await?;
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
        crate::operations::ssr::record(
            &state.db,
            Some(user.workspace_id),
            crate::operations::ssr::Level::Info,
            if enabled { "access_enabled" } else { "access_disabled" },
            Some(user.id),
            Some(conn.id),
            None,
            &format!("application {application_id}"),
        )
        .await;
        Ok(())
    }

    /// Only applications with access may use a connection (datasources, workflows, invoke URL).
    pub async fn ensure_app_access(state: &AppState, connection_id: i64, application_id: i64) -> AppResult<()> {
        let enabled: Option<i64> = sqlx::query_scalar(
            "SELECT enabled FROM connection_access WHERE connection_id = $1 AND application_id = $2",
        )
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
}
