//! Revoking an authorization (seed 000 §7): the tokens are revoked at the provider (RFC 7009:
//! the refresh token first, then the access token), the local credentials are removed either
//! way, and the connection shows "Revoked" until it is authorized again. A provider answering 503 (or unreachable) is
//! retried in the background from `pending_revocations`.

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
    use crate::operations::ssr::{record, Level};
    use crate::policy::{decide, Action, Decision};
    use crate::ssr::ids::now_ms;
    use crate::ssr::outbound::OutboundError;
    use crate::ssr::AppState;

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
            Decision::ContactAdmin(who) => return Err(AppError::forbidden(who.message())),
            _ => return Err(AppError::forbidden("You cannot revoke this connection's authorization.")),
        }
        let envs: Vec<Environment> = match (conn.same_for_all_envs, env) {
            (false, Some(e)) => vec![e],
            _ => Environment::ALL.to_vec(),
        };
        let subject = subject_for(&conn, user);
        let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
        // Unlink, and delete accounts that nothing uses any more, in one transaction; keep
        // their tokens to revoke at the provider afterwards.
        let mut to_revoke: Vec<Credentials> = Vec::new();
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
        for id in &accounts {
            let still_used: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM connection_authorizations WHERE account_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if still_used > 0 {
                continue; // another connection or environment still relies on it
            }
            let ct: Vec<u8> =
                sqlx::query_scalar("DELETE FROM authorized_accounts WHERE id = $1 RETURNING credentials_ct")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Ok(plain) = state.cipher.decrypt(&account_aad(*id), &ct) {
                if let Ok(c) = serde_json::from_slice::<Credentials>(&plain) {
                    to_revoke.push(c);
                }
            }
        }
        tx.commit().await?;
        record(
            &state.db,
            Some(user.workspace_id),
            Level::Info,
            "revoked",
            Some(user.id),
            Some(conn.id),
            Some(&envs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")),
            "authorization revoked; local credentials removed",
        )
        .await;
        for creds in to_revoke {
            if let Credentials::OAuth2 { access_token, refresh_token, .. } = creds {
                let mut tokens = Vec::new();
                if let Some(r) = refresh_token {
                    tokens.push((r, "refresh_token"));
                }
                tokens.push((access_token, "access_token"));
                for (token, hint) in tokens {
                    match revoke_at_provider(state, &connector, &token, hint).await {
                        Answer::Done => {}
                        Answer::RetryLater(why) => {
                            queue(state, &connector, user.workspace_id, &token, hint, &why).await?
                        }
                        Answer::Refused(why) => {
                            record(
                                &state.db,
                                Some(user.workspace_id),
                                Level::Warn,
                                "revocation_refused",
                                Some(user.id),
                                Some(conn.id),
                                None,
                                &why,
                            )
                            .await
                        }
                    }
                }
            }
        }
        Ok(())
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
        if let Err(e) = state.outbound.check_oauth_endpoint(&url) {
            return Answer::Refused(e.to_string());
        }
        let mut req = match state.outbound.request(reqwest::Method::POST, url) {
            Ok(r) => r,
            Err(e) => return Answer::Refused(e.to_string()),
        };
        if connector.config.client_auth == "query" {
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

    async fn queue(
        state: &AppState,
        connector: &Connector,
        workspace_id: i64,
        token: &str,
        hint: &str,
        why: &str,
    ) -> AppResult<()> {
        let mut tx = state.db.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pending_revocations (connector_id, workspace_id, token_ct, token_type_hint, next_attempt_at, last_error)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(connector.id)
        .bind(workspace_id)
        .bind(Vec::<u8>::new())
        .bind(hint)
        .bind(now_ms() + 10_000)
        .bind(why)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE pending_revocations SET token_ct = $1 WHERE id = $2")
            .bind(state.cipher.encrypt(&pending_aad(id), token.as_bytes()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::warn!(id, reason = why, "revocation queued for retry");
        Ok(())
    }

    /// Retries due revocations once; returns how many are still pending. Each row is claimed
    /// by moving its next attempt forward first, so two replicas do not send it twice.
    pub async fn retry_due(state: &AppState) -> AppResult<i64> {
        let now = now_ms();
        let due: Vec<(i64, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT id, connector_id, workspace_id, token_type_hint, attempts FROM pending_revocations
             WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 50",
        )
        .bind(now)
        .fetch_all(&state.db.pool)
        .await?;
        for (id, connector_id, workspace_id, hint, attempts) in due {
            let backoff = 10_000i64.saturating_mul(1 << attempts.min(10));
            let claimed = sqlx::query(
                "UPDATE pending_revocations SET next_attempt_at = $1, attempts = attempts + 1 WHERE id = $2 AND next_attempt_at <= $3",
            )
            .bind(now + backoff)
            .bind(id)
            .bind(now)
            .execute(&state.db.pool)
            .await?
            .rows_affected();
            if claimed == 0 {
                continue;
            }
            let ct: Vec<u8> = sqlx::query_scalar("SELECT token_ct FROM pending_revocations WHERE id = $1")
                .bind(id)
                .fetch_one(&state.db.pool)
                .await?;
            let token = String::from_utf8(
                state.cipher.decrypt(&pending_aad(id), &ct).map_err(|e| AppError::internal("pending revocation", e))?,
            )
            .map_err(|e| AppError::internal("pending revocation", e))?;
            let connector = load_connector(state, workspace_id, connector_id).await?;
            match revoke_at_provider(state, &connector, &token, &hint).await {
                Answer::RetryLater(why) => {
                    sqlx::query("UPDATE pending_revocations SET last_error = $1 WHERE id = $2")
                        .bind(why)
                        .bind(id)
                        .execute(&state.db.pool)
                        .await?;
                }
                answer => {
                    sqlx::query("DELETE FROM pending_revocations WHERE id = $1")
                        .bind(id)
                        .execute(&state.db.pool)
                        .await?;
                    if let Answer::Refused(why) = answer {
                        record(
                            &state.db,
                            Some(workspace_id),
                            Level::Warn,
                            "revocation_refused",
                            None,
                            None,
                            None,
                            &why,
                        )
                        .await;
                    }
                }
            }
        }
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM pending_revocations").fetch_one(&state.db.pool).await?)
    }

    /// Runs [`retry_due`] every few seconds for the life of the process.
    pub fn spawn_retry_worker(state: AppState) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Err(e) = retry_due(&state).await {
                    tracing::warn!(error = %e, "revocation retry pass failed");
                }
            }
        });
    }
}
