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
    NotConnected,
    NeedsReauthorization,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Connected => "Connected",
            Status::NotConnected => "Not connected",
            Status::NeedsReauthorization => "Needs reauthorization",
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
    pub account_name: Option<String>,
    /// What the caller may do about authorizing it.
    pub authorize: Decision,
    pub installed_from: Option<String>,
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

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::policy::{decide, Action, Context};
    use crate::ssr::AppState;

    type Row = (i64, String, String, String, String, Option<String>, Option<String>, Option<String>, i64, i64);

    const SELECT: &str = "
        SELECT c.id, c.display_name, c.link_name, k.name, c.conn_type, c.installed_from,
               a.name, a.status,
               (SELECT COUNT(*) FROM datasources d WHERE d.connection_id = c.id)
                 + (SELECT COUNT(*) FROM component_connections cc JOIN components sc ON sc.id = cc.component_id
                    WHERE cc.connection_id = c.id AND sc.kind = 'schedule'),
               (SELECT COUNT(*) FROM connection_authorizations p
                 WHERE p.connection_id = c.id AND p.subject_user_id = 0)
        FROM connections c
        JOIN connectors k ON k.id = c.connector_id
        LEFT JOIN connection_authorizations ca
               ON ca.connection_id = c.id AND ca.environment = $1
              AND ca.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE 0 END
        LEFT JOIN authorized_accounts a ON a.id = ca.account_id";

    fn entry(user: &SessionUser, row: Row) -> AppResult<Option<ConnectionEntry>> {
        let (id, display_name, link_name, service_name, kind, installed_from, account, status, used_in_ds, primary) =
            row;
        let conn_type = ConnectionType::parse(&kind)?;
        let cx = Context { used_in_datasource_or_schedule: used_in_ds > 0, primary_account_configured: primary > 0 };
        if !decide(user.role, conn_type, Action::View, cx).is_allowed() {
            return Ok(None);
        }
        let status = match status.as_deref() {
            Some("connected") => Status::Connected,
            Some("needs_reauthorization") => Status::NeedsReauthorization,
            _ => Status::NotConnected,
        };
        let account_name = if status == Status::NotConnected { None } else { account };
        Ok(Some(ConnectionEntry {
            id,
            display_name,
            link_name,
            service_name,
            conn_type,
            status,
            account_name,
            authorize: decide(user.role, conn_type, Action::Authorize, cx),
            installed_from,
        }))
    }

    fn visible(user: &SessionUser, rows: Vec<Row>) -> AppResult<Vec<ConnectionEntry>> {
        Ok(rows.into_iter().map(|r| entry(user, r)).collect::<AppResult<Vec<_>>>()?.into_iter().flatten().collect())
    }

    pub async fn for_application(
        state: &AppState,
        user: &SessionUser,
        app: &str,
        component: Option<&str>,
        environment: Environment,
    ) -> AppResult<Vec<ConnectionEntry>> {
        let app = crate::applications::ssr::find(state, user, app).await?;
        // Only components the caller may open count (plain users: the ones they have permission for).
        let allowed = crate::applications::ssr::components(state, user, app.id).await?;
        let ids: Vec<i64> = match component {
            Some(link) => {
                let c = allowed
                    .iter()
                    .find(|c| c.link_name == link)
                    .ok_or_else(|| AppError::not_found(format!("There is no component '{link}' you can open.")))?;
                vec![c.id]
            }
            None => allowed.iter().map(|c| c.id).collect(),
        };
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let list = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let sql = format!(
            "{SELECT} WHERE c.workspace_id = $3 AND c.id IN
               (SELECT cc.connection_id FROM component_connections cc WHERE cc.component_id IN ({list}))
             ORDER BY c.display_name"
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(environment.as_str())
            .bind(user.id)
            .bind(user.workspace_id)
            .fetch_all(&state.db.pool)
            .await?;
        visible(user, rows)
    }

    pub async fn for_workspace(state: &AppState, user: &SessionUser) -> AppResult<Vec<ConnectionEntry>> {
        let sql = format!("{SELECT} WHERE c.workspace_id = $3 ORDER BY c.display_name");
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(Environment::Development.as_str())
            .bind(user.id)
            .bind(user.workspace_id)
            .fetch_all(&state.db.pool)
            .await?;
        visible(user, rows)
    }
}
