//! Keep-alive (issue 13): an OAuth2 account nobody calls is still refreshed at least once per
//! `--keepalive-hours`, so the provider does not let its refresh token lapse; an account whose
//! access token expired and that has no refresh token is marked "Needs reauthorization" before
//! anyone trips over it. Refreshes go through [`refresh_account`] (the one single-flight,
//! leased refresh path). Replicas claim an account by moving its `last_refreshed_at` forward
//! with a compare-and-set, so the same account is never refreshed twice for one interval.

use super::credentials::Credentials;
use super::health::read_account;
use super::refresh::refresh_account;
use crate::connectors::GrantType;
use crate::error::AppResult;
use crate::ssr::AppState;

/// When an account was last given fresh tokens: its last refresh, or its authorization if later.
const SINCE: &str = "CASE WHEN a.last_refreshed_at IS NULL OR a.last_refreshed_at < a.authorized_at
                          THEN a.authorized_at ELSE a.last_refreshed_at END";

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Accounts this pass refreshed (or tried to: a refused refresh marks the account).
    pub refreshed: usize,
    /// Expired accounts without a refresh token, now marked "Needs reauthorization".
    pub expired: usize,
}

/// An account the pass looks at.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    workspace_id: i64,
    connector_id: i64,
    since: i64,
    access_expires_at: Option<i64>,
}

/// Where in the last quarter of the interval an account falls due, so a day's refreshes do
/// not all land at once (a fixed function of the id: every replica computes the same).
fn spread(id: i64, interval_ms: i64) -> i64 {
    let quarter = (interval_ms / 4).max(1) as u64;
    ((id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % quarter) as i64
}

/// One keep-alive pass as of `now` (milliseconds; the worker passes the clock, tests a
/// simulated day). Looks at up to 100 accounts.
#[tracing::instrument(skip_all)]
pub async fn keepalive_pass(state: &AppState, now: i64) -> AppResult<KeepAlive> {
    let interval = (state.settings.keepalive_hours.max(1) as i64) * 3_600_000;
    let earliest_due = now - interval + interval / 4;
    let candidates: Vec<Candidate> = sqlx::query_as(&format!(
        "SELECT a.id, a.workspace_id, a.connector_id, {SINCE} AS since, a.access_expires_at
         FROM authorized_accounts a JOIN connectors k ON k.id = a.connector_id
         WHERE a.status = 'connected' AND k.auth_type = 'oauth2' AND a.refresh_started_at IS NULL
           AND ({SINCE} <= $1 OR a.access_expires_at <= $2)
         ORDER BY since LIMIT 100"
    ))
    .bind(earliest_due)
    .bind(now)
    .fetch_all(&state.db.pool)
    .await?;
    let mut done = KeepAlive::default();
    for c in candidates {
        let account = match read_account(state, c.id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(account_id = c.id, error = %e, "keep-alive: account not readable");
                continue;
            }
        };
        let Credentials::OAuth2 { access_token, refresh_token, .. } = &account.creds else { continue };
        let expired = c.access_expires_at.is_some_and(|at| at <= now);
        let due = c.since + interval - spread(c.id, interval) <= now;
        if refresh_token.is_none() && !expired {
            continue; // nothing to refresh with, and still valid
        }
        if refresh_token.is_some() && !due {
            continue; // refreshed recently enough (an expired access token is refreshed on use)
        }
        let connector = match crate::connectors::ssr::load(state, c.workspace_id, c.connector_id).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(account_id = c.id, error = %e, "keep-alive: connector not loadable");
                continue;
            }
        };
        if refresh_token.is_none() && connector.config.grant_type == GrantType::ClientCredentials {
            continue; // a client-credentials token is fetched again when a call needs it
        }
        if refresh_token.is_some() {
            // Claim this account for this interval: only one replica's update matches.
            let claimed = sqlx::query(&format!(
                "UPDATE authorized_accounts AS a SET last_refreshed_at = $1
                 WHERE a.id = $2 AND a.status = 'connected' AND {SINCE} = $3"
            ))
            .bind(now)
            .bind(c.id)
            .bind(c.since)
            .execute(&state.db.pool)
            .await?
            .rows_affected()
                == 1;
            if !claimed {
                continue;
            }
        }
        // With a refresh token: new tokens (or the account is marked with why it failed).
        // Without: refresh_account marks it "Needs reauthorization: access token expired".
        match refresh_account(state, &connector, c.id, access_token).await {
            Ok(_) => tracing::info!(account_id = c.id, "keep-alive refresh"),
            Err(e) => tracing::warn!(account_id = c.id, error = %e, "keep-alive refresh did not give new tokens"),
        }
        if refresh_token.is_some() {
            done.refreshed += 1;
        } else {
            done.expired += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_spread_over_the_last_quarter() {
        let day = 24 * 3_600_000;
        let spreads: Vec<i64> = (1..=1000).map(|id| spread(id, day)).collect();
        assert!(spreads.iter().all(|s| (0..day / 4).contains(s)));
        // Spread, not bunched: every hour of the six has some accounts.
        for hour in 0..6 {
            let n = spreads.iter().filter(|s| **s / 3_600_000 == hour).count();
            assert!(n > 100, "hour {hour}: {n}");
        }
    }
}
