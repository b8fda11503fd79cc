//! Token refresh (R15.1–R15.7): one refresh per account in a process (single flight), one across
//! replicas (a lease row in the database), the in-flight mark that makes an interrupted refresh
//! visible, and the background pass that resolves interrupted refreshes without waiting for a call.

use super::credentials::Credentials;
use super::fencing::{renew_lease, revoke_unstored, store_refreshed, Stored};
use super::health::{
    clear_refresh_mark, mark_needs_reauthorization, needs_reauthorization, provider_unreachable, read_account, reason,
    record_refresh_failure, record_status, unreachable,
};
use super::oauth::{bad_url, client_credentials, credentials_from, oauth_client, token_error};
use crate::connections::Status;
use crate::connectors::ssr::Connector;
use crate::connectors::GrantType;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, OperationKind};
use crate::ssr::ids::{now_ms, random_token};
use crate::ssr::AppState;
use oauth2::{RequestTokenError, TokenUrl};

/// In-process coalescing of token refreshes: concurrent callers in one process share one
/// refresh per account, and only that one takes part in the cross-replica database lease.
#[derive(Debug, Default)]
pub struct Refreshes {
    flights: crate::ssr::single_flight::SingleFlight<i64, AppResult<Credentials>>,
    lease_attempts: std::sync::atomic::AtomicU64,
}

impl Refreshes {
    /// How many times this process tried to take a refresh lease in the database.
    pub fn lease_attempts(&self) -> u64 {
        self.lease_attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many refreshes this process started (callers that joined one are not counted).
    pub fn runs(&self) -> u64 {
        self.flights.runs()
    }
}

/// Refreshes an OAuth2 account's access token after `used` stopped working (or is about
/// to). Callers in this process share one refresh per account (see [`Refreshes`]); that
/// refresh runs to completion even if its callers go away. Across replicas, exactly one
/// refresh per account runs at a time: the lease is a database row with an owner and an
/// expiry, released only by its owner. Waiters re-read the stored token instead of
/// refreshing again. A rotated refresh token is saved in the same transaction as the new
/// access token; when the answer carries none, the old one is kept.
#[tracing::instrument(skip_all, fields(account_id))]
pub async fn refresh_account(
    state: &AppState,
    connector: &Connector,
    account_id: i64,
    used: &str,
) -> AppResult<Credentials> {
    let mut result = Err(needs_reauthorization());
    // A refresh already in flight may have started from an older token and answer with
    // `used` itself; then one more is needed.
    for _ in 0..2 {
        let (st, conn, token) = (state.clone(), connector.clone(), used.to_owned());
        result = state
            .refreshes
            .flights
            .run(account_id, move || async move { refresh_with_lease(&st, &conn, account_id, &token).await })
            .await
            .unwrap_or_else(|| Err(AppError::Upstream("The token refresh failed. Try again.".into())));
        // New credentials, or an account now marked for re-authorization: nothing read before
        // (`ssr::cache`: an invoke plan, the panel) may be answered again on this replica.
        state.caches.clear();
        match &result {
            Ok(c) if c.access_token() == Some(used) => continue,
            _ => return result,
        }
    }
    result
}

async fn refresh_with_lease(
    state: &AppState,
    connector: &Connector,
    account_id: i64,
    used: &str,
) -> AppResult<Credentials> {
    let owner = random_token(16);
    let lease_ms = state.settings.refresh_lease_ms;
    // The holder renews its lease while the provider answers, so a waiter may wait for a
    // whole token request (its timeout is 20 s), not just one lease.
    let deadline = now_ms() + lease_ms.max(20_000) + 10_000;
    let db_now = state.db.backend.now_ms_sql();
    loop {
        let current = read_account(state, account_id).await?;
        if !current.may_refresh() {
            return Err(needs_reauthorization());
        }
        if current.creds.access_token().is_some_and(|t| t != used) && current.status == Status::Connected {
            return Ok(current.creds); // someone else refreshed meanwhile
        }
        state.refreshes.lease_attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Taken, and judged expired, by the database's clock: replicas' clocks may differ.
        let acquired = sqlx::query(&format!(
            "INSERT INTO refresh_leases (account_id, owner, expires_at) VALUES ($1, $2, {db_now} + $3)
             ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
             WHERE refresh_leases.expires_at <= {db_now}"
        ))
        .bind(account_id)
        .bind(&owner)
        .bind(lease_ms)
        .execute(&state.db.pool)
        .await?
        .rows_affected()
            == 1;
        if acquired {
            let held = refresh_holding_lease(state, connector, account_id, used, &owner).await;
            if let Err(e) = sqlx::query("DELETE FROM refresh_leases WHERE account_id = $1 AND owner = $2")
                .bind(account_id)
                .bind(&owner)
                .execute(&state.db.pool)
                .await
            {
                tracing::warn!(error = %e, "could not release the refresh lease (it expires by itself)");
            }
            match held {
                Held::Done(result) => return result,
                // Whoever holds the lease now decides; wait for its outcome like any waiter.
                Held::LeaseLost => {}
            }
        }
        if now_ms() > deadline {
            return Err(AppError::Upstream("The token could not be refreshed in time. Try again.".into()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A client-credentials account has no refresh token: under the same lease, a new token is
/// asked for with the scopes of the connections it serves (every one shares them: the account
/// is reused only under the same configuration), and stored fenced like a refresh.
async fn fetch_client_credentials(
    state: &AppState,
    connector: &Connector,
    account_id: i64,
    owner: &str,
) -> AppResult<Held> {
    let scopes: Option<String> = sqlx::query_scalar(
        "SELECT c.scopes FROM connection_authorizations ca JOIN connections c ON c.id = ca.connection_id
         WHERE ca.account_id = $1 ORDER BY c.id LIMIT 1",
    )
    .bind(account_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let creds = match client_credentials(state, connector, scopes.as_deref().unwrap_or_default()).await {
        Ok(creds) => creds,
        Err(e) => {
            let ws: Option<i64> = sqlx::query_scalar("SELECT workspace_id FROM authorized_accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&state.db.pool)
                .await?;
            record_refresh_failure(state, account_id, ws, &e.to_string()).await;
            return Ok(Held::Done(Err(e)));
        }
    };
    match store_refreshed(state, account_id, owner, &creds).await? {
        Stored::Written(_) => Ok(Held::Done(Ok(creds))),
        Stored::LeaseLost => Ok(Held::LeaseLost),
        Stored::AccountGone => Ok(Held::Done(Err(needs_reauthorization()))),
    }
}

/// How a refresh under a lease ended.
enum Held {
    Done(AppResult<Credentials>),
    /// The lease ran out (by the database's clock) or was taken over before the answer was
    /// stored; nothing was written.
    LeaseLost,
}

async fn refresh_holding_lease(
    state: &AppState,
    connector: &Connector,
    account_id: i64,
    used: &str,
    owner: &str,
) -> Held {
    match refresh_under_lease(state, connector, account_id, used, owner).await {
        Ok(held) => held,
        Err(e) => Held::Done(Err(e)),
    }
}

async fn refresh_under_lease(
    state: &AppState,
    connector: &Connector,
    account_id: i64,
    used: &str,
    owner: &str,
) -> AppResult<Held> {
    // Re-read under the lease: the previous holder may have just finished.
    let current = read_account(state, account_id).await?;
    if !current.may_refresh() {
        return Ok(Held::Done(Err(needs_reauthorization())));
    }
    if current.creds.access_token().is_some_and(|t| t != used) && current.status == Status::Connected {
        return Ok(Held::Done(Ok(current.creds)));
    }
    let ws = Some(current.workspace_id);
    // A previous holder began a refresh and never stored its outcome: it died (or lost
    // its lease) after asking the provider. The refresh token below may be rotated away.
    let interrupted = current.refresh_started_at.is_some();
    if interrupted {
        tracing::warn!(account_id, "an earlier token refresh was interrupted; trying the stored refresh token");
    }
    if connector.config.grant_type == GrantType::ClientCredentials {
        return fetch_client_credentials(state, connector, account_id, owner).await;
    }
    let Credentials::OAuth2 { refresh_token: Some(refresh), .. } = &current.creds else {
        mark_needs_reauthorization(state, account_id, reason::NO_REFRESH_TOKEN).await?;
        record_refresh_failure(state, account_id, ws, reason::NO_REFRESH_TOKEN).await;
        return Ok(Held::Done(Err(needs_reauthorization())));
    };
    let mut client = oauth_client(connector)?;
    if let Some(url) = &connector.config.refresh_url {
        client = client.set_token_uri(TokenUrl::new(url.clone()).map_err(|_| bad_url("refresh URL"))?);
    }
    // Committed before the provider is asked, so a crash from here to the commit below is
    // seen by the next holder.
    sqlx::query("UPDATE authorized_accounts SET refresh_started_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(account_id)
        .execute(&state.db.pool)
        .await?;
    // Renew the lease every third of its length while the provider answers, so a slow token
    // endpoint does not let another replica replay the refresh token this request spends.
    let presented = oauth2::RefreshToken::new(refresh.clone());
    let exchange = client.exchange_refresh_token(&presented).request_async(&state.outbound);
    tokio::pin!(exchange);
    let period = std::time::Duration::from_millis((state.settings.refresh_lease_ms / 3).max(1) as u64);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut holding = true;
    let answer = loop {
        tokio::select! {
            answer = &mut exchange => break answer,
            _ = renew.tick(), if holding => match renew_lease(state, account_id, owner).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(account_id, "refresh lease lost while the provider was answering");
                    holding = false;
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the refresh lease; trying again"),
            },
        }
    };
    let token = match answer {
        Ok(t) => t,
        Err(RequestTokenError::ServerResponse(r)) if r.error().as_ref() == "invalid_grant" => {
            let why = if interrupted { reason::INTERRUPTED } else { reason::REFRESH_REJECTED };
            mark_needs_reauthorization(state, account_id, why).await?;
            record_refresh_failure(state, account_id, ws, why).await;
            return Ok(Held::Done(Err(needs_reauthorization())));
        }
        Err(RequestTokenError::Request(e)) => {
            tracing::warn!(error = %e, "token endpoint unreachable");
            clear_refresh_mark(state, account_id).await?;
            provider_unreachable(state, account_id, &current).await?;
            record_refresh_failure(state, account_id, ws, "the token endpoint could not be reached").await;
            return Ok(Held::Done(Err(unreachable())));
        }
        Err(e) => {
            clear_refresh_mark(state, account_id).await?;
            let e = token_error(e);
            record_refresh_failure(state, account_id, ws, &e.to_string()).await;
            return Ok(Held::Done(Err(e)));
        }
    };
    let creds = credentials_from(&token, Some(refresh.clone()));
    // Only a lease holder writes, judged when writing: one whose lease ran out or was taken
    // over must not overwrite what the next holder does, and a revoked account stays revoked.
    match store_refreshed(state, account_id, owner, &creds).await? {
        Stored::Written(ws) => {
            tracing::info!(account_id, "access token refreshed");
            if current.status != Status::Connected {
                record_status(
                    state,
                    account_id,
                    Some(ws),
                    Level::Info,
                    OperationKind::Reconnected,
                    "the provider is reachable again; access token refreshed",
                )
                .await;
            }
            Ok(Held::Done(Ok(creds)))
        }
        // The new tokens were not stored: revoke them at the provider and say why.
        lost @ (Stored::LeaseLost | Stored::AccountGone) => {
            let (why, held) = if matches!(lost, Stored::LeaseLost) {
                (
                    "the refresh lease ran out before the answer was stored; the new tokens were discarded and revoked",
                    Held::LeaseLost,
                )
            } else {
                (
                    "the authorization was revoked during the refresh; the new tokens were revoked too",
                    Held::Done(Err(needs_reauthorization())),
                )
            };
            tracing::warn!(account_id, why, "refreshed tokens not stored; revoking them");
            revoke_unstored(state, connector, current.workspace_id, &creds).await;
            record_refresh_failure(state, account_id, ws, why).await;
            Ok(held)
        }
    }
}

/// Resolves refreshes that a dead process left in flight (the mark is set and no live
/// lease covers it), without waiting for a call: each ends with new tokens or as "needs
/// re-authorization". Returns how many were looked at.
#[tracing::instrument(skip_all)]
pub async fn recover_interrupted(state: &AppState) -> AppResult<usize> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT a.id, a.workspace_id, a.connector_id FROM authorized_accounts a
         LEFT JOIN refresh_leases l ON l.account_id = a.id
         WHERE a.refresh_started_at IS NOT NULL AND a.status = 'connected'
           AND (l.account_id IS NULL OR l.expires_at <= {})
         ORDER BY a.id LIMIT 20",
        state.db.backend.now_ms_sql()
    ))
    .fetch_all(&state.db.pool)
    .await?;
    for (id, workspace_id, connector_id) in &rows {
        let connector = match crate::connectors::ssr::load(state, *workspace_id, *connector_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(account_id = id, error = %e, "interrupted refresh: connector not loadable");
                continue;
            }
        };
        let current = read_account(state, *id).await?;
        let used = current.creds.access_token().unwrap_or_default().to_owned();
        match refresh_account(state, &connector, *id, &used).await {
            Ok(_) => tracing::info!(account_id = id, "interrupted refresh recovered with new tokens"),
            Err(e) => {
                tracing::warn!(account_id = id, error = %e, "interrupted refresh resolved without new tokens")
            }
        }
    }
    Ok(rows.len())
}
