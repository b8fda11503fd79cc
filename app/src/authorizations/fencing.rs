//! Fencing a token refresh (R15.3, R15.4): a refresh stores what it got only while it holds an
//! unexpired lease by the database's clock and the account is still there; otherwise the tokens it
//! obtained are revoked at the provider.

use super::credentials::{account_aad, Credentials};
use super::health::reason;
use crate::connections::Status;
use crate::connectors::ssr::Connector;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, OperationKind};
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use crate::webhooks::{outbox::emit_for_account, EventType};

/// What [`store_refreshed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written; the account's workspace.
    Written(i64),
    /// `owner` no longer holds an unexpired lease: nothing written.
    LeaseLost,
    /// The account was removed or is no longer refreshable (revoked meanwhile): nothing written.
    AccountGone,
}

/// Stores refreshed credentials, fenced: only while `owner` holds an unexpired lease on the
/// account by the database's clock, and only on an account still there and refreshable. The
/// lease row is updated first, which locks it for the transaction, so a takeover cannot slip
/// between the check and the write; a revoke deletes the account (and the lease with it) and
/// either comes before (nothing written here) or after (it revokes what was written).
pub async fn store_refreshed(state: &AppState, account_id: i64, owner: &str, creds: &Credentials) -> AppResult<Stored> {
    let db_now = state.db.backend.now_ms_sql();
    let plaintext = serde_json::to_vec(creds).map_err(|e| AppError::internal("credentials", e))?;
    let mut tx = state.db.pool.begin().await?;
    let held = sqlx::query(&format!(
        "UPDATE refresh_leases SET expires_at = {db_now} + $1
         WHERE account_id = $2 AND owner = $3 AND expires_at > {db_now}"
    ))
    .bind(state.settings.refresh_lease_ms)
    .bind(account_id)
    .bind(owner)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if held == 0 {
        // Revoking deletes the account and its lease with it: say which happened.
        let refreshable: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM authorized_accounts
             WHERE id = $1 AND (status = 'connected' OR (status = 'needs_reauthorization' AND status_reason = $2))",
        )
        .bind(account_id)
        .bind(reason::UNREACHABLE)
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        return Ok(if refreshable.is_some() { Stored::LeaseLost } else { Stored::AccountGone });
    }
    let before: Option<String> = sqlx::query_scalar("SELECT status FROM authorized_accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
    let ws: Option<i64> = sqlx::query_scalar(
        "UPDATE authorized_accounts SET credentials_ct = $1, access_expires_at = $2, refresh_started_at = NULL,
                refresh_failures = 0, status = 'connected', status_reason = NULL,
                last_refreshed_at = CASE WHEN last_refreshed_at IS NULL OR last_refreshed_at < $5 THEN $5
                                         ELSE last_refreshed_at END
         WHERE id = $3 AND (status = 'connected' OR (status = 'needs_reauthorization' AND status_reason = $4))
         RETURNING workspace_id",
    )
    .bind(state.cipher.encrypt(&account_aad(account_id), &plaintext))
    .bind(creds.expires_at())
    .bind(account_id)
    .bind(reason::UNREACHABLE)
    .bind(crate::ssr::ids::now_ms())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(ws) = ws else {
        tx.rollback().await?;
        return Ok(Stored::AccountGone);
    };
    // The audit entry for the refresh goes in with the tokens: no extra round trip between
    // the store and the callers waiting for it.
    sqlx::query(
        "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
         VALUES ($1, $2, $5, $6, NULL,
                 (SELECT connection_id FROM connection_authorizations WHERE account_id = $3
                  ORDER BY connection_id, environment LIMIT 1),
                 (SELECT environment FROM connection_authorizations WHERE account_id = $3
                  ORDER BY connection_id, environment LIMIT 1),
                 $4)",
    )
    .bind(ws)
    .bind(now_ms())
    .bind(account_id)
    .bind(format!("account {account_id}: access token refreshed"))
    .bind(Level::Info.as_str())
    .bind(OperationKind::TokenRefreshed.as_str())
    .execute(&mut *tx)
    .await?;
    if before.is_some_and(|s| Status::from_db(Some(&s)) != Status::Connected) {
        emit_for_account(&mut tx, account_id, EventType::ConnectionRecovered, "connected", None).await?;
    }
    tx.commit().await?;
    Ok(Stored::Written(ws))
}

/// Extends `owner`'s lease from the database's now; false once it is lost (expired or taken).
pub(super) async fn renew_lease(state: &AppState, account_id: i64, owner: &str) -> AppResult<bool> {
    let db_now = state.db.backend.now_ms_sql();
    Ok(sqlx::query(&format!(
        "UPDATE refresh_leases SET expires_at = {db_now} + $1
         WHERE account_id = $2 AND owner = $3 AND expires_at > {db_now}"
    ))
    .bind(state.settings.refresh_lease_ms)
    .bind(account_id)
    .bind(owner)
    .execute(&state.db.pool)
    .await?
    .rows_affected()
        == 1)
}

/// Tokens a refresh obtained but may not store (its lease was lost, or the account was
/// revoked meanwhile): queued for revocation at the provider in one transaction, then sent.
/// With rotation the old refresh token is spent already; the next lease holder's refresh
/// then ends as "needs re-authorization", never as a silently stale "connected".
pub(super) async fn revoke_unstored(state: &AppState, connector: &Connector, workspace_id: i64, creds: &Credentials) {
    let target = crate::revocations::ssr::Target { connector_id: connector.id, workspace_id, connection_id: None };
    let queued = async {
        let mut tx = state.db.pool.begin().await?;
        let ids = crate::revocations::ssr::queue_in(&mut tx, state, &target, creds).await?;
        tx.commit().await?;
        AppResult::Ok(ids)
    }
    .await;
    match queued {
        Ok(ids) => crate::revocations::ssr::send_now(state, &ids).await,
        Err(e) => tracing::error!(error = %e, "could not queue the revocation of unstored refreshed tokens"),
    }
}
