//! The panel's entries (live and edit mode), and the entry's columns the Microservices list
//! (`listing.rs`) reads too: what each person may see is decided by [`crate::policy`] row by row.

use super::{ConnectionEntry, Status};
use crate::auth::SessionUser;
use crate::domain::{ConnectionType, Environment};
use crate::error::{AppError, AppResult};
use crate::policy::{decide, Action, Context};
use crate::ssr::AppState;

/// One panel entry as read (before the policy decides whether the caller sees it).
#[derive(sqlx::FromRow)]
pub(super) struct EntryRow {
    id: i64,
    display_name: String,
    pub(super) link_name: String,
    service_name: String,
    conn_type: String,
    installed_from: Option<String>,
    account_name: Option<String>,
    account_status: Option<String>,
    used_in_datasource_or_schedule: i64,
    primary_accounts: i64,
    auth_type: String,
    connector_config: String,
    same_for_all_envs: i64,
    status_reason: Option<String>,
}

/// The panel entry's columns; each caller adds its own bound `WHERE` (no SQL is assembled
/// from values).
macro_rules! entry_select {
    () => {
        concat!(
            "
    SELECT c.id, c.display_name, c.link_name, k.name AS service_name, c.conn_type, c.installed_from,
           a.name AS account_name,
           CASE WHEN c.enabled = 0 THEN 'disabled'
                WHEN a.status IS NULL AND EXISTS (
                  SELECT 1 FROM revoked_authorizations r
                  WHERE r.connection_id = c.id AND r.environment = $1
                    AND r.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE ",
            shared_subject!(),
            " END)
                THEN 'revoked' ELSE ",
            link_status!(),
            " END AS account_status, ",
            usage_columns!(),
            ",
           k.auth_type, k.config AS connector_config, c.same_for_all_envs, ",
            link_reason!(),
            " AS status_reason
    FROM connections c
    JOIN connectors k ON k.id = c.connector_id
    LEFT JOIN connection_authorizations ca
           ON ca.connection_id = c.id AND ca.environment = $1
          AND ca.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE ",
            shared_subject!(),
            " END
    LEFT JOIN authorized_accounts a ON a.id = ca.account_id"
        )
    };
}

pub(super) use entry_select;

fn entry(user: &SessionUser, row: EntryRow) -> AppResult<Option<ConnectionEntry>> {
    let config: crate::connectors::ConnectorConfig =
        serde_json::from_str(&row.connector_config).map_err(|e| AppError::internal("connector config", e))?;
    let conn_type = ConnectionType::parse(&row.conn_type)?;
    let cx = Context {
        used_in_datasource_or_schedule: row.used_in_datasource_or_schedule > 0,
        primary_account_configured: row.primary_accounts > 0,
    };
    if !decide(user.role, conn_type, Action::View, cx).is_allowed() {
        return Ok(None);
    }
    let status = Status::from_db(row.account_status.as_deref());
    let account_name = if matches!(status, Status::NotConnected | Status::Revoked) { None } else { row.account_name };
    Ok(Some(ConnectionEntry {
        id: row.id,
        display_name: row.display_name,
        link_name: row.link_name,
        service_name: row.service_name,
        conn_type,
        status,
        status_reason: if status == Status::NeedsReauthorization { row.status_reason } else { None },
        account_name,
        authorize: decide(user.role, conn_type, Action::Authorize, cx),
        installed_from: row.installed_from,
        auth_type: crate::domain::AuthType::parse(&row.auth_type)?,
        same_for_all_envs: row.same_for_all_envs != 0,
        username_label: config.username_label(),
        password_label: config.password_label(),
        payment_gateway: config.payment_gateway,
    }))
}

pub(super) fn visible(user: &SessionUser, rows: Vec<EntryRow>) -> AppResult<Vec<ConnectionEntry>> {
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
    // Opened on every page of the running app: the answer is kept a second (`ssr::cache`),
    // cleared by any write through this server; a worker's or another replica's change
    // (a refresh that failed, a revoke) shows within the second.
    let key = crate::ssr::cache::PanelKey {
        user_id: user.id,
        app: app.to_string(),
        component: component.map(str::to_string),
        environment,
    };
    state.caches.panels.get_or_load(key, || read_for_application(state, user, app, component, environment)).await
}

async fn read_for_application(
    state: &AppState,
    user: &SessionUser,
    app: &str,
    component: Option<&str>,
    environment: Environment,
) -> AppResult<Vec<ConnectionEntry>> {
    let app = crate::applications::ssr::find_cached(state, user, app).await?;
    if let Some(link) = component {
        // Only components the caller may open count (plain users: the ones they have
        // permission for); asking for another one is "not found".
        let allowed = crate::applications::ssr::components(state, user, app.id).await?;
        if !allowed.iter().any(|c| c.link_name == link) {
            return Err(AppError::not_found(format!("There is no component '{link}' you can open.")));
        }
    }
    let rows: Vec<EntryRow> = sqlx::query_as(FOR_APPLICATION)
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
    let rows: Vec<EntryRow> = sqlx::query_as(sql)
        .bind(Environment::Development.as_str())
        .bind(user.id)
        .bind(user.workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
    visible(user, rows)
}
