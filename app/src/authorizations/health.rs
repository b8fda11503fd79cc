//! The health of an authorized account (R13.1–R13.3): what its stored status lets a call use,
//! why it needs reauthorization, and every status change written to Operations. A provider that
//! cannot be reached is a status only after [`UNREACHABLE_LIMIT`] failed refreshes (R15.6).

use super::credentials::{account_aad, subject_for, Credentials};
use crate::auth::SessionUser;
use crate::connections::ssr::Connection;
use crate::connections::Status;
use crate::domain::Environment;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::AppState;
use crate::webhooks::{outbox::emit_for_account, EventType};

/// Why an authorization needs re-authorization (shown to people after "Needs
/// reauthorization: ").
pub mod reason {
    pub const REFRESH_REJECTED: &str = "refresh token revoked or expired";
    pub const NO_REFRESH_TOKEN: &str = "access token expired (no refresh token)";
    pub const INTERRUPTED: &str = "a token refresh was interrupted and the refresh token no longer works";
    pub const UNREACHABLE: &str = "provider unreachable";
    /// Scopes were added to the connection: the stored grant lacks them until re-consented.
    pub const NEW_PERMISSIONS: &str = "new permissions requested";
    /// The custom connector's endpoints, client or auth type changed.
    pub const CONNECTOR_CHANGED: &str = "the connector's settings changed";
}

/// Consecutive refreshes that fail because the provider cannot be reached before the
/// authorization shows "needs re-authorization: provider unreachable". One network blip only
/// fails that call. The refresh token is kept, so the next call after the provider is back
/// refreshes and the authorization heals itself (logged as `reconnected`); re-authorizing
/// fixes it too.
pub const UNREACHABLE_LIMIT: i64 = 3;

/// An authorized account as a refresh sees it, its credentials decrypted.
pub(super) struct AccountRow {
    pub(super) workspace_id: i64,
    pub(super) creds: Credentials,
    pub(super) status: Status,
    reason: Option<String>,
    pub(super) refresh_started_at: Option<i64>,
}

impl AccountRow {
    /// Unreachable-provider accounts keep their tokens and may still refresh.
    pub(super) fn may_refresh(&self) -> bool {
        self.status == Status::Connected
            || (self.status == Status::NeedsReauthorization && self.reason.as_deref() == Some(reason::UNREACHABLE))
    }
}

pub(super) async fn read_account(state: &AppState, account_id: i64) -> AppResult<AccountRow> {
    let (workspace_id, ct, status, reason, refresh_started_at): (i64, Vec<u8>, String, Option<String>, Option<i64>) =
        sqlx::query_as(
            "SELECT workspace_id, credentials_ct, status, status_reason, refresh_started_at
             FROM authorized_accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(needs_reauthorization)?;
    let plain =
        state.cipher.decrypt(&account_aad(account_id), &ct).map_err(|e| AppError::internal("credentials", e))?;
    let creds = serde_json::from_slice(&plain).map_err(|e| AppError::internal("credentials", e))?;
    Ok(AccountRow { workspace_id, creds, status: Status::from_db(Some(&status)), reason, refresh_started_at })
}

/// The credentials a call may use for `user` in `env`, and whether they must be refreshed
/// before use (the provider was unreachable at the last refreshes).
pub async fn usable_credentials(
    state: &AppState,
    conn: &Connection,
    user: &SessionUser,
    env: Environment,
) -> AppResult<Option<(i64, Credentials, bool)>> {
    // A link marked for consent again (more scopes asked) is not usable, whatever the account.
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT account_id FROM connection_authorizations
         WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3 AND reconsent_reason IS NULL",
    )
    .bind(conn.id)
    .bind(env.as_str())
    .bind(subject_for(conn, user))
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(id) = id else { return Ok(None) };
    let row = read_account(state, id).await?;
    if !row.may_refresh() {
        return Ok(None);
    }
    let refresh_first = row.status != Status::Connected;
    Ok(Some((id, row.creds, refresh_first)))
}

/// Why the connection has no usable authorization for `user` in `env`, when it had one:
/// "needs reauthorization: <reason>" or "revoked". `None` when it was never authorized.
pub async fn unusable_status(
    state: &AppState,
    conn: &Connection,
    user: &SessionUser,
    env: Environment,
) -> AppResult<Option<Status>> {
    let subject = subject_for(conn, user);
    let status: Option<String> = sqlx::query_scalar(concat!(
        "SELECT ",
        link_status!(),
        " FROM connection_authorizations ca JOIN authorized_accounts a ON a.id = ca.account_id
         WHERE ca.connection_id = $1 AND ca.environment = $2 AND ca.subject_user_id = $3"
    ))
    .bind(conn.id)
    .bind(env.as_str())
    .bind(subject)
    .fetch_optional(&state.db.pool)
    .await?;
    if let Some(status) = status {
        return Ok(Some(Status::from_db(Some(&status))).filter(|s| *s != Status::Connected));
    }
    let revoked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM revoked_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
    )
    .bind(conn.id)
    .bind(env.as_str())
    .bind(subject)
    .fetch_one(&state.db.pool)
    .await?;
    Ok((revoked > 0).then_some(Status::Revoked))
}

pub(super) fn needs_reauthorization() -> AppError {
    AppError::AuthorizationRequired {
        connection: String::new(),
        prompt: true,
        message:
            "The authorization stopped working (the service revoked or expired it). Authorize the connection again."
                .into(),
    }
}

pub(super) fn unreachable() -> AppError {
    AppError::Upstream("The service could not be reached to refresh the access token. Try again in a moment.".into())
}

pub(super) async fn clear_refresh_mark(state: &AppState, account_id: i64) -> AppResult<()> {
    sqlx::query("UPDATE authorized_accounts SET refresh_started_at = NULL WHERE id = $1")
        .bind(account_id)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// Counts a refresh that could not reach the provider; the last of [`UNREACHABLE_LIMIT`]
/// in a row turns the status into "needs re-authorization: provider unreachable". (After a
/// timeout the provider may have rotated the refresh token anyway; the next refresh then
/// gets `invalid_grant` and the status says so.)
pub(super) async fn provider_unreachable(state: &AppState, account_id: i64, current: &AccountRow) -> AppResult<()> {
    let failures: Option<i64> = sqlx::query_scalar(
        "UPDATE authorized_accounts SET refresh_failures = refresh_failures + 1 WHERE id = $1
         RETURNING refresh_failures",
    )
    .bind(account_id)
    .fetch_optional(&state.db.pool)
    .await?;
    if current.status == Status::Connected && failures.unwrap_or(0) >= UNREACHABLE_LIMIT {
        mark_needs_reauthorization(state, account_id, reason::UNREACHABLE).await?;
    }
    Ok(())
}

pub(super) async fn mark_needs_reauthorization(state: &AppState, account_id: i64, reason: &str) -> AppResult<()> {
    let mut tx = state.db.pool.begin().await?;
    let ws: Option<i64> = sqlx::query_scalar(
        "UPDATE authorized_accounts SET status = 'needs_reauthorization', status_reason = $1, refresh_started_at = NULL
         WHERE id = $2 RETURNING workspace_id",
    )
    .bind(reason)
    .bind(account_id)
    .fetch_optional(&mut *tx)
    .await?;
    if ws.is_some() {
        emit_for_account(
            &mut tx,
            account_id,
            EventType::ConnectionNeedsReauthorization,
            "needs_reauthorization",
            Some(reason),
        )
        .await?;
    }
    tx.commit().await?;
    record_status(state, account_id, ws, Level::Warn, OperationKind::NeedsReauthorization, reason).await;
    Ok(())
}

/// One Operations entry per failed refresh (not per caller waiting on it) saying why, named
/// after the first connection using the account; a stored refresh is logged by
/// [`super::fencing::store_refreshed`] in its transaction. Never a token.
pub(super) async fn record_refresh_failure(state: &AppState, account_id: i64, ws: Option<i64>, why: &str) {
    let usage: Option<(i64, String)> = sqlx::query_as(
        "SELECT connection_id, environment FROM connection_authorizations WHERE account_id = $1
         ORDER BY connection_id, environment LIMIT 1",
    )
    .bind(account_id)
    .fetch_optional(&state.db.pool)
    .await
    .unwrap_or_default();
    let (connection, env) = usage.map_or((None, None), |(c, e)| (Some(c), Some(e)));
    let detail = format!("account {account_id}: refresh failed: {why}");
    Operation::new(Level::Warn, OperationKind::TokenRefreshFailed)
        .workspace(ws)
        .on(connection)
        .environment(env.as_deref())
        .detail(&detail)
        .record(&state.db)
        .await;
}

/// Logs an account's status change once per connection using it, with its environments (so the
/// Operations page names the connection), or once for the account when nothing uses it.
pub(super) async fn record_status(
    state: &AppState,
    account_id: i64,
    ws: Option<i64>,
    level: Level,
    kind: OperationKind,
    detail: &str,
) {
    let uses: Vec<(i64, String)> = sqlx::query_as(
        "SELECT connection_id, environment FROM connection_authorizations WHERE account_id = $1
         ORDER BY connection_id, environment",
    )
    .bind(account_id)
    .fetch_all(&state.db.pool)
    .await
    .unwrap_or_default();
    let detail = format!("account {account_id}: {detail}");
    if uses.is_empty() {
        Operation::new(level, kind).workspace(ws).detail(&detail).record(&state.db).await;
    }
    let mut grouped: Vec<(i64, Vec<String>)> = Vec::new();
    for (connection_id, env) in uses {
        match grouped.last_mut() {
            Some((c, envs)) if *c == connection_id => envs.push(env),
            _ => grouped.push((connection_id, vec![env])),
        }
    }
    for (connection_id, envs) in grouped {
        Operation::new(level, kind)
            .workspace(ws)
            .on(connection_id)
            .environment(Some(&envs.join(",")))
            .detail(&detail)
            .record(&state.db)
            .await;
    }
}
