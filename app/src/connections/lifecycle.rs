//! A connection's later life (issue 13): edit (display name and scopes), disable and enable,
//! what uses it, delete (revoking every authorization at the provider through the durable
//! revocation queue) and each user's authorization of a logged-in-user connection.

use super::store::{checked_scopes, load, Connection};
use super::{ConnectionEdit, Status, UseKind, UsedBy, UserAuthorization};
use crate::auth::SessionUser;
use crate::authorizations::ssr::reason;
use crate::domain::{ComponentKind, ConnectionId, ConnectionType, DisplayName, Environment};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide, Action};
use crate::revocations::ssr::{drop_unused_accounts, send_now, Target};
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use crate::webhooks::outbox::Event;
use crate::webhooks::EventType;

/// Loads a connection of the caller's workspace that the caller may manage.
async fn managed(state: &AppState, user: &SessionUser, id: ConnectionId) -> AppResult<Connection> {
    let conn = load(state, user.workspace_id, id.0).await?;
    if !decide(user.role, conn.conn_type, Action::Manage, conn.policy_context()).is_allowed() {
        return Err(AppError::forbidden("Only super admins, admins and developers manage connections."));
    }
    Ok(conn)
}

#[tracing::instrument(skip_all, fields(connection = id.0, user_id = user.id))]
pub async fn edit(state: &AppState, user: &SessionUser, id: ConnectionId, edit: ConnectionEdit) -> AppResult<()> {
    let conn = managed(state, user, id).await?;
    let name = DisplayName::parse("display_name", &edit.display_name)?;
    let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
    let scopes = checked_scopes(&connector.name, &connector.config.scopes, &edit.scopes)?;
    let old: Vec<&str> = conn.scopes.split_whitespace().collect();
    let added: Vec<&str> = scopes.iter().map(String::as_str).filter(|s| !old.contains(s)).collect();
    let removed: Vec<&str> = old.iter().copied().filter(|o| !scopes.iter().any(|s| s == o)).collect();
    let renamed = name.as_str() != conn.display_name;
    if !renamed && added.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("UPDATE connections SET display_name = $1, scopes = $2 WHERE id = $3 AND workspace_id = $4")
        .bind(name.as_str())
        .bind(scopes.join(" "))
        .bind(conn.id)
        .bind(user.workspace_id)
        .execute(&mut *tx)
        .await?;
    let mut marked = 0;
    if !added.is_empty() {
        // The stored grants lack the new permissions: every authorization of this connection
        // needs consent again. (Removed scopes are simply not asked for next time.)
        // Marked on this connection's links, not on the accounts: an account it shares with
        // another connection stays connected there.
        let envs: Vec<String> = sqlx::query_scalar(
            "UPDATE connection_authorizations SET reconsent_reason = $1
             WHERE connection_id = $2 AND reconsent_reason IS NULL
               AND account_id IN (SELECT id FROM authorized_accounts WHERE status = 'connected')
             RETURNING environment",
        )
        .bind(reason::NEW_PERMISSIONS)
        .bind(conn.id)
        .fetch_all(&mut *tx)
        .await?;
        marked = envs.len();
        for env in &envs {
            let event = Event::new(EventType::ConnectionNeedsReauthorization, conn.workspace_id)
                .connection(conn.id)
                .env(env)
                .status("needs_reauthorization")
                .reason(reason::NEW_PERMISSIONS);
            crate::webhooks::outbox::emit(&mut tx, event).await?;
        }
    }
    tx.commit().await?;
    let mut changes = Vec::new();
    if renamed {
        changes.push(format!("renamed from '{}' to '{}'", conn.display_name, name.as_str()));
    }
    if !added.is_empty() {
        changes.push(format!("scopes added: {} ({marked} authorizations need reauthorization)", added.join(", ")));
    }
    if !removed.is_empty() {
        changes.push(format!("scopes removed: {} (from the next authorization)", removed.join(", ")));
    }
    Operation::by(user, Level::Info, OperationKind::ConnectionEdited)
        .on(conn.id)
        .detail(format!("{}: {}", conn.link_name, changes.join("; ")))
        .record(&state.db)
        .await;
    Ok(())
}

#[tracing::instrument(skip_all, fields(connection = id.0, user_id = user.id, enabled))]
pub async fn set_enabled(state: &AppState, user: &SessionUser, id: ConnectionId, enabled: bool) -> AppResult<()> {
    let conn = managed(state, user, id).await?;
    if conn.enabled == enabled {
        return Ok(());
    }
    sqlx::query(
        "UPDATE connections SET enabled = $1, disabled_by = $2, disabled_at = $3 WHERE id = $4 AND workspace_id = $5",
    )
    .bind(enabled as i64)
    .bind((!enabled).then_some(user.id))
    .bind((!enabled).then(now_ms))
    .bind(conn.id)
    .bind(user.workspace_id)
    .execute(&state.db.pool)
    .await?;
    let kind = if enabled { OperationKind::ConnectionEnabled } else { OperationKind::ConnectionDisabled };
    Operation::by(user, Level::Info, kind).on(conn.id).detail(conn.link_name.clone()).record(&state.db).await;
    Ok(())
}

/// A component that uses the connection, as read.
#[derive(sqlx::FromRow)]
struct ComponentUse {
    kind: String,
    name: String,
    link_name: String,
    application: String,
    app_link: String,
}

/// A datasource over the connection, as read.
#[derive(sqlx::FromRow)]
struct DatasourceUse {
    name: String,
    application: String,
    app_link: String,
}

pub async fn usage(state: &AppState, user: &SessionUser, id: ConnectionId) -> AppResult<Vec<UsedBy>> {
    let conn = managed(state, user, id).await?;
    used_by(state, &conn).await
}

async fn used_by(state: &AppState, conn: &Connection) -> AppResult<Vec<UsedBy>> {
    let components: Vec<ComponentUse> = sqlx::query_as(
        "SELECT sc.kind, sc.name, sc.link_name, a.name AS application, a.link_name AS app_link
         FROM component_connections cc
         JOIN components sc ON sc.id = cc.component_id
         JOIN applications a ON a.id = sc.application_id
         WHERE cc.connection_id = $1 ORDER BY a.name, sc.name",
    )
    .bind(conn.id)
    .fetch_all(&state.db.pool)
    .await?;
    let datasources: Vec<DatasourceUse> = sqlx::query_as(
        "SELECT d.name, a.name AS application, a.link_name AS app_link
         FROM datasources d JOIN applications a ON a.id = d.application_id
         WHERE d.connection_id = $1 ORDER BY a.name, d.name",
    )
    .bind(conn.id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut used = Vec::new();
    for c in components {
        used.push(UsedBy {
            kind: UseKind::Component(ComponentKind::parse(&c.kind)?),
            href: format!("/app/{}/edit?component={}", c.app_link, c.link_name),
            name: c.name,
            application: c.application,
        });
    }
    for d in datasources {
        used.push(UsedBy {
            kind: UseKind::Datasource,
            href: format!("/app/{}/edit", d.app_link),
            name: d.name,
            application: d.application,
        });
    }
    Ok(used)
}

/// Deletes a connection nothing uses: in one transaction its authorizations are removed, the
/// accounts nothing else uses deleted with their tokens queued for revocation at the provider,
/// and the row deleted; then the queued revocations are sent (what fails is retried by the
/// revocation worker).
#[tracing::instrument(skip_all, fields(connection = id.0, user_id = user.id))]
pub async fn delete(state: &AppState, user: &SessionUser, id: ConnectionId) -> AppResult<()> {
    let conn = managed(state, user, id).await?;
    let used = used_by(state, &conn).await?;
    if !used.is_empty() {
        let list: Vec<String> = used.iter().map(|u| format!("{} '{}' ({})", u.kind, u.name, u.application)).collect();
        return Err(AppError::Conflict(format!(
            "{} cannot be deleted while it is used by: {}. Remove it from them first.",
            conn.display_name,
            list.join(", ")
        )));
    }
    let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
    let mut tx = state.db.pool.begin().await?;
    let mut accounts: Vec<i64> =
        sqlx::query_scalar("DELETE FROM connection_authorizations WHERE connection_id = $1 RETURNING account_id")
            .bind(conn.id)
            .fetch_all(&mut *tx)
            .await?;
    let authorizations = accounts.len();
    accounts.sort_unstable();
    accounts.dedup();
    let target = Target { connector_id: connector.id, workspace_id: user.workspace_id, connection_id: Some(conn.id) };
    let queued = drop_unused_accounts(&mut tx, state, &target, &accounts).await?;
    let event = Event::new(EventType::ConnectionDeleted, conn.workspace_id).connection(conn.id).status("deleted");
    crate::webhooks::outbox::emit(&mut tx, event).await?;
    let deleted = sqlx::query("DELETE FROM connections WHERE id = $1 AND workspace_id = $2")
        .bind(conn.id)
        .bind(user.workspace_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            crate::ssr::db::conflict_if_referenced(e, || {
                format!("{} was just put to use. Reload and try again.", conn.display_name)
            })
        })?;
    if deleted.rows_affected() == 0 {
        return Err(AppError::not_found("There is no such connection."));
    }
    tx.commit().await?;
    Operation::by(user, Level::Info, OperationKind::ConnectionDeleted)
        .on(conn.id)
        .detail(format!(
            "{} ({}): {authorizations} authorizations removed, {} tokens queued for revocation",
            conn.link_name,
            connector.name,
            queued.len()
        ))
        .record(&state.db)
        .await;
    send_now(state, &queued).await;
    Ok(())
}

/// One user's authorization, as read.
#[derive(sqlx::FromRow)]
struct UserAuthorizationRow {
    user_id: i64,
    user_name: String,
    environment: String,
    account_name: Option<String>,
    authorized_at: i64,
    status: String,
    status_reason: Option<String>,
}

pub async fn users_authorizations(
    state: &AppState,
    user: &SessionUser,
    id: ConnectionId,
) -> AppResult<Vec<UserAuthorization>> {
    let conn = load(state, user.workspace_id, id.0).await?;
    let cx = conn.policy_context();
    if !decide(user.role, conn.conn_type, Action::View, cx).is_allowed() {
        return Err(AppError::not_found("There is no such connection."));
    }
    if conn.conn_type != ConnectionType::LoggedInUser {
        return Ok(Vec::new());
    }
    let everyone = decide(user.role, conn.conn_type, Action::OthersAuthorizations, cx).is_allowed();
    let rows: Vec<UserAuthorizationRow> = sqlx::query_as(concat!(
        "SELECT ca.subject_user_id AS user_id, u.display_name AS user_name, ca.environment,
                a.name AS account_name, ca.authorized_at, ",
        link_status!(),
        " AS status, ",
        link_reason!(),
        " AS status_reason
         FROM connection_authorizations ca
         JOIN authorized_accounts a ON a.id = ca.account_id
         JOIN users u ON u.id = ca.subject_user_id
         WHERE ca.connection_id = $1 AND ($2 = 1 OR ca.subject_user_id = $3)
         ORDER BY u.display_name, ca.subject_user_id, ca.environment"
    ))
    .bind(conn.id)
    .bind(everyone as i64)
    .bind(user.id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let status = Status::from_db(Some(&r.status));
            Ok(UserAuthorization {
                user_id: r.user_id,
                user_name: r.user_name,
                environment: Environment::parse(&r.environment)?,
                account_name: r.account_name,
                authorized_at_ms: r.authorized_at,
                status,
                status_reason: (status == Status::NeedsReauthorization).then_some(r.status_reason).flatten(),
            })
        })
        .collect()
}
