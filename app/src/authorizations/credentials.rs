//! Stored credentials: the encrypted `Credentials` of an authorized account and the labels
//! (associated data) that bind each ciphertext to its row, and the accounts themselves — who an
//! authorization belongs to (R4.2), storing one and mapping it to a connection's environments in
//! one transaction (R4.5, R7.4), reusing (R7.1, R7.2), reading and renaming one.

use super::ssr::{ensure_may_authorize, environments_for};
use super::AccountOption;
use crate::auth::SessionUser;
use crate::connections::ssr::{load as load_connection, Connection};
use crate::connections::Status;
use crate::connectors::ssr::{load as load_connector, Connector};
use crate::domain::{AccountId, ConnectionType, DisplayName, Environment};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide, Action};
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use crate::webhooks::{outbox::Event, EventType};
use serde::{Deserialize, Serialize};

/// Stored credentials (encrypted at rest). `Debug` never shows them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credentials {
    OAuth2 {
        access_token: String,
        refresh_token: Option<String>,
        expires_at: Option<i64>,
        #[serde(default)]
        issued_at: Option<i64>,
    },
    ApiKey {
        key: String,
    },
    Basic {
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Credentials::OAuth2 { .. } => "OAuth2",
            Credentials::ApiKey { .. } => "ApiKey",
            Credentials::Basic { .. } => "Basic",
        };
        write!(f, "Credentials::{kind}(<redacted>)")
    }
}

impl Credentials {
    /// The OAuth2 access token, if these are OAuth2 credentials.
    pub fn access_token(&self) -> Option<&str> {
        match self {
            Credentials::OAuth2 { access_token, .. } => Some(access_token),
            _ => None,
        }
    }

    /// When the OAuth2 access token expires (Unix ms), if known.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Credentials::OAuth2 { expires_at, .. } => *expires_at,
            _ => None,
        }
    }

    /// Whether an OAuth2 access token should be refreshed before use: it expires within 30
    /// seconds, or within the last quarter of its lifetime for short-lived tokens.
    pub fn expiring(&self, now: i64) -> bool {
        match self {
            Credentials::OAuth2 { expires_at: Some(exp), issued_at, .. } => {
                let lifetime = issued_at.map_or(i64::MAX, |i| exp - i);
                *exp - now < 30_000.min(lifetime / 4)
            }
            _ => false,
        }
    }
}

/// The associated data of `authorized_accounts.credentials_ct`: a ciphertext only opens in its own row.
pub fn account_aad(id: i64) -> Vec<u8> {
    format!("authorized_accounts:{id}").into_bytes()
}

/// The associated data of `oauth_pending.pkce_verifier_ct`.
pub(crate) fn pending_aad(state: &str) -> Vec<u8> {
    format!("oauth_pending:{state}").into_bytes()
}

/// The `subject_user_id` of an authorization shared by everyone (admin and system connections,
/// R1.2); logged-in-user connections store the user's id instead. SQL text spells it through
/// [`shared_subject!`](crate::shared_subject), which a test keeps equal to this.
pub const SHARED_SUBJECT: i64 = 0;

/// Who an authorization belongs to: each user for logged-in-user connections, else shared.
pub fn subject_for(conn: &Connection, user: &SessionUser) -> i64 {
    if conn.conn_type == ConnectionType::LoggedInUser {
        user.id
    } else {
        SHARED_SUBJECT
    }
}

/// Accounts are reusable across connections of the same service and configuration.
pub fn config_key(connector: &Connector, scopes: &str) -> String {
    let mut s: Vec<&str> = scopes.split_whitespace().collect();
    s.sort_unstable();
    format!("{}|{}|{}", connector.id, s.join(" "), connector.config.api_base.as_deref().unwrap_or(""))
}

/// Stores an authorized account and maps it to the connection for `envs`, in one
/// transaction. Earlier mappings for those environments are replaced at once.
pub async fn store_authorization(
    state: &AppState,
    user: &SessionUser,
    conn: &Connection,
    connector: &Connector,
    name: &str,
    creds: &Credentials,
    envs: &[Environment],
) -> AppResult<i64> {
    let plaintext = serde_json::to_vec(creds).map_err(|e| AppError::internal("credentials", e))?;
    let expires_at = creds.expires_at();
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO authorized_accounts (workspace_id, connector_id, config_key, owner_user_id, name, credentials_ct,
                                          access_expires_at, authorized_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(user.workspace_id)
    .bind(connector.id)
    .bind(config_key(connector, &conn.scopes))
    .bind(user.id)
    .bind(name)
    .bind(Vec::<u8>::new())
    .bind(expires_at)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE authorized_accounts SET credentials_ct = $1 WHERE id = $2")
        .bind(state.cipher.encrypt(&account_aad(id), &plaintext))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    map_account(&mut tx, conn, user, id, envs, now).await?;
    tx.commit().await?;
    Operation::by(user, Level::Info, OperationKind::Authorized)
        .on(conn.id)
        .envs(envs)
        .detail(format!("account {name}"))
        .record(&state.db)
        .await;
    Ok(id)
}

pub(super) async fn map_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    conn: &Connection,
    user: &SessionUser,
    account_id: i64,
    envs: &[Environment],
    now: i64,
) -> AppResult<()> {
    for env in envs {
        let before: Option<i64> = sqlx::query_scalar(
            "SELECT account_id FROM connection_authorizations
             WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject_for(conn, user))
        .fetch_optional(&mut **tx)
        .await?;
        // Authorized where there was none; switched where another account was in use.
        let kind = match before {
            Some(previous) if previous != account_id => EventType::ConnectionSwitched,
            _ => EventType::ConnectionAuthorized,
        };
        let event = Event::new(kind, conn.workspace_id).connection(conn.id).env(env.as_str()).status("connected");
        crate::webhooks::outbox::emit(tx, event).await?;
        sqlx::query(
            "INSERT INTO connection_authorizations (connection_id, environment, subject_user_id, account_id, authorized_by, authorized_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (connection_id, environment, subject_user_id)
             DO UPDATE SET account_id = excluded.account_id, authorized_by = excluded.authorized_by,
                           authorized_at = excluded.authorized_at, reconsent_reason = NULL",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject_for(conn, user))
        .bind(account_id)
        .bind(user.id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "DELETE FROM revoked_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject_for(conn, user))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The credentials the connection uses for `user` in `env`, decrypted.
pub async fn credentials_for(
    state: &AppState,
    conn: &Connection,
    user: &SessionUser,
    env: Environment,
) -> AppResult<Option<(i64, Credentials)>> {
    let row: Option<(i64, Vec<u8>, String)> = sqlx::query_as(concat!(
        "SELECT a.id, a.credentials_ct, ",
        link_status!(),
        " FROM connection_authorizations ca
         JOIN authorized_accounts a ON a.id = ca.account_id
         WHERE ca.connection_id = $1 AND ca.environment = $2 AND ca.subject_user_id = $3"
    ))
    .bind(conn.id)
    .bind(env.as_str())
    .bind(subject_for(conn, user))
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((id, ct, status)) = row else {
        return Ok(None);
    };
    if Status::from_db(Some(&status)) != Status::Connected {
        return Ok(None);
    }
    let plain = state.cipher.decrypt(&account_aad(id), &ct).map_err(|e| AppError::internal("credentials", e))?;
    let creds = serde_json::from_slice(&plain).map_err(|e| AppError::internal("credentials", e))?;
    Ok(Some((id, creds)))
}

/// Accounts the caller authorized before for the same service and configuration.
pub async fn reusable_accounts(
    state: &AppState,
    user: &SessionUser,
    connection_id: i64,
) -> AppResult<Vec<AccountOption>> {
    let conn = load_connection(state, user.workspace_id, connection_id).await?;
    let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
    let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT a.id, a.name,
                (SELECT c.display_name FROM connection_authorizations ca JOIN connections c ON c.id = ca.connection_id
                  WHERE ca.account_id = a.id ORDER BY c.id LIMIT 1)
         FROM authorized_accounts a
         WHERE a.owner_user_id = $1 AND a.config_key = $2 AND a.status = 'connected'
         ORDER BY a.authorized_at DESC",
    )
    .bind(user.id)
    .bind(config_key(&connector, &conn.scopes))
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, conn_name)| AccountOption {
            id,
            needs_name: name.is_none(),
            label: name.or(conn_name).unwrap_or_else(|| format!("Account {id}")),
        })
        .collect())
}

pub async fn reuse_account(
    state: &AppState,
    user: &SessionUser,
    connection_id: i64,
    account_id: AccountId,
    environments: Vec<Environment>,
    account_name: Option<String>,
) -> AppResult<()> {
    let conn = load_connection(state, user.workspace_id, connection_id).await?;
    ensure_may_authorize(user, &conn)?;
    let envs = environments_for(&conn, &environments)?;
    let options = reusable_accounts(state, user, connection_id).await?;
    let option = options
        .into_iter()
        .find(|o| o.id == account_id.0)
        .ok_or_else(|| AppError::not_found("That account cannot be reused for this connection."))?;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    if option.needs_name {
        let name = DisplayName::parse("account_name", account_name.as_deref().unwrap_or(""))
            .map_err(|_| AppError::invalid("account_name", "This account has no name yet. Give it one to reuse it."))?;
        sqlx::query("UPDATE authorized_accounts SET name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
    }
    map_account(&mut tx, &conn, user, account_id.0, &envs, now).await?;
    tx.commit().await?;
    Operation::by(user, Level::Info, OperationKind::AuthorizationReused)
        .on(conn.id)
        .envs(&envs)
        .detail(format!("account {}", option.label))
        .record(&state.db)
        .await;
    Ok(())
}

pub async fn rename_account(
    state: &AppState,
    user: &SessionUser,
    connection_id: i64,
    env: Environment,
    name: &str,
) -> AppResult<String> {
    let conn = load_connection(state, user.workspace_id, connection_id).await?;
    if !decide(user.role, conn.conn_type, Action::View, conn.policy_context()).is_allowed() {
        return Err(AppError::not_found("There is no such connection."));
    }
    ensure_may_authorize(user, &conn)?;
    let name = DisplayName::parse("account_name", name)?;
    let account: Option<i64> = sqlx::query_scalar(
        "SELECT account_id FROM connection_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
    )
    .bind(conn.id)
    .bind(env.as_str())
    .bind(subject_for(&conn, user))
    .fetch_optional(&state.db.pool)
    .await?;
    let account = account.ok_or_else(|| AppError::not_found("This connection has no authorized account here yet."))?;
    sqlx::query("UPDATE authorized_accounts SET name = $1 WHERE id = $2")
        .bind(name.as_str())
        .bind(account)
        .execute(&state.db.pool)
        .await?;
    Operation::by(user, Level::Info, OperationKind::AccountRenamed)
        .on(conn.id)
        .env(env)
        .detail(name.as_str())
        .record(&state.db)
        .await;
    Ok(name.to_string())
}
