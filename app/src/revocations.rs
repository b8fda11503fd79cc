//! Revoking an authorization (R16.1, R16.2, R4.3): the tokens are revoked at the provider (RFC 7009:
//! the refresh token first, then the access token), the local credentials are removed either
//! way, and the connection shows "Revoked" until it is authorized again. The tokens are queued in
//! `pending_revocations` in the transaction that removes them, then sent; a provider answering
//! 5xx (or unreachable) is retried in the background with growing delays, for a bounded time.

use crate::domain::Environment;
use crate::error::AppError;
use leptos::prelude::*;

#[server(prefix = "/api", endpoint = "revoke_authorization")]
pub async fn revoke_authorization(
    connection_id: i64,
    #[server(default)] environment: Option<Environment>,
) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::revoke(&state, &user, connection_id, environment).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::authorizations::ssr::{account_aad, subject_for, Credentials};
    use crate::connectors::ssr::{load as load_connector, Connector};
    use crate::error::AppResult;
    use crate::operations::ssr::{Level, Operation, OperationKind};
    use crate::policy::{decide, Action, Decision};
    use crate::ssr::ids::now_ms;
    use crate::ssr::outbound::OutboundError;
    use crate::ssr::AppState;
    use crate::webhooks::{outbox::Event, EventType};

    pub(crate) fn pending_aad(id: i64) -> Vec<u8> {
        format!("pending_revocations:{id}").into_bytes()
    }

    /// What the provider said to one revocation request.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Answer {
        Done,
        RetryLater(String),
        Refused(String),
    }

    pub async fn revoke(
        state: &AppState,
        user: &SessionUser,
        connection_id: i64,
        env: Option<Environment>,
    ) -> AppResult<()> {
        let conn = crate::connections::ssr::load(state, user.workspace_id, connection_id).await?;
        match decide(user.role, conn.conn_type, Action::Revoke, conn.policy_context()) {
            Decision::Allowed => {}
            Decision::ContactAdmin(who) => {
                return Err(AppError::forbidden(format!(
                    "You cannot revoke {}'s authorization. Contact {} to revoke it.",
                    conn.display_name,
                    who.whom()
                )))
            }
            _ => return Err(AppError::forbidden("You cannot revoke this connection's authorization.")),
        }
        let subject = subject_for(&conn, user);
        unlink(state, user, &conn, subject, env).await
    }

    /// Revokes one user's authorization of a logged-in-user connection: anyone their own,
    /// admins and super admins anybody's ([`Action::OthersAuthorizations`]).
    pub async fn revoke_user(
        state: &AppState,
        user: &SessionUser,
        connection_id: i64,
        subject_user_id: i64,
        env: Option<Environment>,
    ) -> AppResult<()> {
        let conn = crate::connections::ssr::load(state, user.workspace_id, connection_id).await?;
        if conn.conn_type != crate::domain::ConnectionType::LoggedInUser {
            return Err(AppError::invalid(
                "connection_id",
                "Only logged-in-user connections have an authorization per user.",
            ));
        }
        if subject_user_id == user.id {
            return revoke(state, user, connection_id, env).await;
        }
        if !decide(user.role, conn.conn_type, Action::OthersAuthorizations, conn.policy_context()).is_allowed() {
            return Err(AppError::forbidden("You can revoke only your own authorization."));
        }
        unlink(state, user, &conn, subject_user_id, env).await
    }

    /// Removes `subject`'s authorization of the connection in `env` (every environment when
    /// the connection shares one authorization, or when `env` is `None`), queues the tokens of
    /// accounts nothing uses any more for revocation at the provider, then sends them.
    async fn unlink(
        state: &AppState,
        user: &SessionUser,
        conn: &crate::connections::ssr::Connection,
        subject: i64,
        env: Option<Environment>,
    ) -> AppResult<()> {
        let envs: Vec<Environment> = match (conn.same_for_all_envs, env) {
            (false, Some(e)) => vec![e],
            _ => Environment::ALL.to_vec(),
        };
        let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
        // Unlink, and delete accounts that nothing uses any more, in one transaction that also
        // queues their tokens in `pending_revocations`: once the credentials are gone locally,
        // the provider is still told, even if this process dies right after the commit.
        let mut tx = state.db.pool.begin().await?;
        let mut accounts: Vec<i64> = Vec::new();
        for e in &envs {
            let id: Option<i64> = sqlx::query_scalar(
                "DELETE FROM connection_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3
                 RETURNING account_id",
            )
            .bind(conn.id)
            .bind(e.as_str())
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id.filter(|id| !accounts.contains(id)) {
                accounts.push(id);
            }
            if id.is_some() {
                let event = Event::new(EventType::ConnectionRevoked, conn.workspace_id)
                    .connection(conn.id)
                    .env(e.as_str())
                    .status("revoked");
                crate::webhooks::outbox::emit(&mut tx, event).await?;
                // Shows "Revoked" until the connection is authorized again here.
                sqlx::query(
                    "INSERT INTO revoked_authorizations (connection_id, environment, subject_user_id, revoked_by, revoked_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (connection_id, environment, subject_user_id)
                     DO UPDATE SET revoked_by = excluded.revoked_by, revoked_at = excluded.revoked_at",
                )
                .bind(conn.id)
                .bind(e.as_str())
                .bind(subject)
                .bind(user.id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
        }
        if accounts.is_empty() {
            return Err(AppError::not_found("This connection has no authorization to revoke here."));
        }
        let target =
            Target { connector_id: connector.id, workspace_id: user.workspace_id, connection_id: Some(conn.id) };
        let queued = drop_unused_accounts(&mut tx, state, &target, &accounts).await?;
        tx.commit().await?;
        let mut entry = Operation::by(user, Level::Info, OperationKind::Revoked).on(conn.id).envs(&envs);
        entry = if subject != user.id && conn.conn_type == crate::domain::ConnectionType::LoggedInUser {
            entry.detail(format!("user {subject}'s authorization revoked; local credentials removed"))
        } else {
            entry.detail("authorization revoked; local credentials removed")
        };
        entry.record(&state.db).await;
        send_now(state, &queued).await;
        Ok(())
    }

    /// Deletes the accounts among `accounts` that no connection or environment uses any more,
    /// queuing their tokens for revocation in the caller's transaction ([`queue_in`]). Returns
    /// the queued rows for [`send_now`] after the commit.
    pub async fn drop_unused_accounts(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        state: &AppState,
        target: &Target,
        accounts: &[i64],
    ) -> AppResult<Vec<i64>> {
        let mut queued = Vec::new();
        for id in accounts {
            let still_used: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM connection_authorizations WHERE account_id = $1")
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
            if still_used > 0 {
                continue; // another connection or environment still relies on it
            }
            // Deleting the account also ends any refresh lease on it (ON DELETE CASCADE), so
            // a refresh in flight cannot store its answer: it revokes what it got instead.
            let ct: Vec<u8> =
                sqlx::query_scalar("DELETE FROM authorized_accounts WHERE id = $1 RETURNING credentials_ct")
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
            if let Ok(plain) = state.cipher.decrypt(&account_aad(*id), &ct) {
                if let Ok(c) = serde_json::from_slice::<Credentials>(&plain) {
                    queued.extend(queue_in(tx, state, target, &c).await?);
                }
            }
        }
        Ok(queued)
    }

    /// Where queued tokens came from: the connector whose revocation endpoint is told, and
    /// what Operations names if the provider cannot be told.
    #[derive(Debug, Clone, Copy)]
    pub struct Target {
        pub connector_id: i64,
        pub workspace_id: i64,
        pub connection_id: Option<i64>,
    }

    /// Queues OAuth2 credentials' tokens for revocation (the refresh token first: revoking it
    /// ends the whole grant at most providers) inside the caller's transaction, due at once.
    /// Returns the rows' ids for [`send_now`] after the commit. Other credentials have nothing
    /// to revoke.
    pub async fn queue_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        state: &AppState,
        target: &Target,
        creds: &Credentials,
    ) -> AppResult<Vec<i64>> {
        let Credentials::OAuth2 { access_token, refresh_token, .. } = creds else { return Ok(Vec::new()) };
        let mut tokens: Vec<(&str, &str)> = Vec::new();
        if let Some(r) = refresh_token {
            tokens.push((r, "refresh_token"));
        }
        tokens.push((access_token, "access_token"));
        let now = now_ms();
        let mut ids = Vec::new();
        for (token, hint) in tokens {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO pending_revocations
                    (connector_id, workspace_id, connection_id, token_ct, token_type_hint, next_attempt_at, queued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(target.connector_id)
            .bind(target.workspace_id)
            .bind(target.connection_id)
            .bind(Vec::<u8>::new())
            .bind(hint)
            .bind(now)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            sqlx::query("UPDATE pending_revocations SET token_ct = $1 WHERE id = $2")
                .bind(state.cipher.encrypt(&pending_aad(id), token.as_bytes()))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Sends queued revocations now, in order; what fails stays queued for the retry worker.
    pub async fn send_now(state: &AppState, ids: &[i64]) {
        for id in ids {
            if let Err(e) = attempt(state, *id).await {
                tracing::warn!(id, error = %e, "revocation attempt failed; the retry worker sends it later");
            }
        }
    }

    /// One RFC 7009 request. 200 is done; 503 or no answer is worth retrying.
    pub async fn revoke_at_provider(state: &AppState, connector: &Connector, token: &str, hint: &str) -> Answer {
        let Some(url) = connector.config.revoke_url.as_deref() else {
            return Answer::Done; // the service has no revocation endpoint; local removal is all there is
        };
        let client_id = connector.config.client_id.clone().unwrap_or_default();
        let mut form = vec![("token", token.to_string()), ("token_type_hint", hint.to_string())];
        let url = match url::Url::parse(url) {
            Ok(u) => u,
            Err(_) => return Answer::Refused("the connector's revocation URL is not valid".into()),
        };
        let mut req = match state.outbound.oauth_request(reqwest::Method::POST, url) {
            Ok(r) => r,
            Err(e) => return Answer::Refused(e.to_string()),
        };
        if connector.config.client_auth == crate::connectors::Placement::Query {
            form.push(("client_id", client_id));
            if let Some(s) = &connector.client_secret {
                form.push(("client_secret", s.clone()));
            }
        } else {
            req = req.basic_auth(client_id, connector.client_secret.clone());
        }
        match state.outbound.send(req.form(&form)).await {
            Ok(res) if res.status().is_success() => Answer::Done,
            Ok(res) if res.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE || res.status().is_server_error() => {
                Answer::RetryLater(format!("the service answered {}", res.status()))
            }
            Ok(res) => Answer::Refused(format!("the service refused the revocation ({})", res.status())),
            Err(OutboundError::Refused(why)) => Answer::Refused(why),
            Err(e) => Answer::RetryLater(format!("the service could not be reached ({e})")),
        }
    }

    /// Delay before attempt `attempts + 1`: 10 s, doubling, at most an hour.
    fn backoff_ms(attempts: i64) -> i64 {
        10_000i64.saturating_mul(1 << attempts.clamp(0, 12)).min(3_600_000)
    }

    /// Retries due revocations once; returns how many are still pending.
    pub async fn retry_due(state: &AppState) -> AppResult<i64> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM pending_revocations WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 50",
        )
        .bind(now_ms())
        .fetch_all(&state.db.pool)
        .await?;
        for id in due {
            attempt(state, id).await?;
        }
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM pending_revocations").fetch_one(&state.db.pool).await?)
    }

    #[derive(sqlx::FromRow)]
    struct Pending {
        connector_id: i64,
        workspace_id: i64,
        connection_id: Option<i64>,
        token_ct: Vec<u8>,
        token_type_hint: String,
        attempts: i64,
        queued_at: i64,
    }

    /// One attempt at one queued revocation, if it is due. The row is claimed by moving its
    /// next attempt forward first (exponential back-off), so two replicas do not send it
    /// twice. Done or refused: the row goes. Worth retrying: it stays, unless it has been
    /// retried for longer than `--revocation-retry-secs`; then it is given up, saying so in
    /// Operations.
    async fn attempt(state: &AppState, id: i64) -> AppResult<()> {
        let now = now_ms();
        let attempts: Option<i64> =
            sqlx::query_scalar("SELECT attempts FROM pending_revocations WHERE id = $1 AND next_attempt_at <= $2")
                .bind(id)
                .bind(now)
                .fetch_optional(&state.db.pool)
                .await?;
        let Some(attempts) = attempts else { return Ok(()) };
        let row: Option<Pending> = sqlx::query_as(
            "UPDATE pending_revocations
             SET next_attempt_at = $1, attempts = attempts + 1, queued_at = COALESCE(queued_at, $2)
             WHERE id = $3 AND next_attempt_at <= $2 AND attempts = $4
             RETURNING connector_id, workspace_id, connection_id, token_ct, token_type_hint, attempts, queued_at",
        )
        .bind(now + backoff_ms(attempts))
        .bind(now)
        .bind(id)
        .bind(attempts)
        .fetch_optional(&state.db.pool)
        .await?;
        let Some(row) = row else { return Ok(()) }; // not due, or another replica took it
        let token = String::from_utf8(
            state
                .cipher
                .decrypt(&pending_aad(id), &row.token_ct)
                .map_err(|e| AppError::internal("pending revocation", e))?,
        )
        .map_err(|e| AppError::internal("pending revocation", e))?;
        let connector = load_connector(state, row.workspace_id, row.connector_id).await?;
        let answer = revoke_at_provider(state, &connector, &token, &row.token_type_hint).await;
        let give_up = now - row.queued_at >= state.settings.revocation_retry_secs.saturating_mul(1000);
        match answer {
            Answer::RetryLater(why) if !give_up => {
                tracing::warn!(id, attempts = row.attempts, reason = %why, "revocation will be retried");
                sqlx::query("UPDATE pending_revocations SET last_error = $1 WHERE id = $2")
                    .bind(why)
                    .bind(id)
                    .execute(&state.db.pool)
                    .await?;
            }
            answer => {
                sqlx::query("DELETE FROM pending_revocations WHERE id = $1").bind(id).execute(&state.db.pool).await?;
                let (kind, detail) = match answer {
                    Answer::Done => return Ok(()),
                    Answer::Refused(why) => (OperationKind::RevocationRefused, why),
                    Answer::RetryLater(why) => (
                        OperationKind::RevocationAbandoned,
                        format!(
                            "{} could not be told to revoke a {} after {} attempts over {} s ({why}); \
                             revoke this app's access in the service's own settings",
                            connector.name,
                            row.token_type_hint.replace('_', " "),
                            row.attempts,
                            (now - row.queued_at) / 1000,
                        ),
                    ),
                };
                Operation::new(Level::Warn, kind)
                    .workspace(row.workspace_id)
                    .on(row.connection_id)
                    .detail(&detail)
                    .record(&state.db)
                    .await;
            }
        }
        Ok(())
    }
}
