//! Workspace API keys. A key is `cmk_` and 40 random letters and digits; only its SHA-256 is
//! stored (a random secret of that length needs no slow hash), with its first characters as
//! the prefix people see. Admins create and revoke keys; every use and refusal is an
//! Operations entry.

use super::{ApiKeyInfo, ApiScope, CreatedApiKey};
use crate::auth::SessionUser;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide_workspace, WorkspaceAction};
use crate::ssr::ids::{now_ms, random_token};
use crate::ssr::AppState;
use sha2::{Digest, Sha256};

const KEY_PREFIX: &str = "cmk_";
/// How much of the secret lists show.
const SHOWN: usize = 12;

/// Hex SHA-256 of a secret (API keys, connect-session tokens) or of a request body.
pub fn digest(secret: impl AsRef<[u8]>) -> String {
    Sha256::digest(secret.as_ref()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A key that authenticated a `/v1` request.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key_id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<ApiScope>,
    /// The admin who created the key: workspace-wide reads are answered as they would see them.
    pub created_by: i64,
}

impl ApiCaller {
    /// An Operations entry done with this key.
    pub fn operation(&self, level: Level, kind: OperationKind) -> Operation<'static> {
        Operation::new(level, kind).workspace(self.workspace_id)
    }

    /// How entries name the key.
    pub fn label(&self) -> String {
        format!("API key '{}' ({})", self.name, self.prefix)
    }
}

async fn ensure_admin(state: &AppState, user: &SessionUser) -> AppResult<()> {
    if decide_workspace(user.role, WorkspaceAction::ManageApiKeys) {
        return Ok(());
    }
    Operation::by(user, Level::Warn, OperationKind::AccessDenied)
        .detail(format!("{} tried to manage API keys", user.email))
        .record(&state.db)
        .await;
    Err(AppError::forbidden("Only admins and super admins can manage API keys."))
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: i64,
    name: String,
    prefix: String,
    scopes: String,
    created_by: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl KeyRow {
    fn info(self) -> AppResult<ApiKeyInfo> {
        Ok(ApiKeyInfo {
            id: self.id,
            name: self.name,
            prefix: self.prefix,
            scopes: ApiScope::parse_list(&self.scopes)?,
            created_by: self.created_by,
            created_at_ms: self.created_at,
            last_used_at_ms: self.last_used_at,
            revoked_at_ms: self.revoked_at,
        })
    }
}

const SELECT: &str = "SELECT k.id, k.name, k.prefix, k.scopes, u.display_name AS created_by, k.created_at,
        k.last_used_at, k.revoked_at
   FROM api_keys k JOIN users u ON u.id = k.created_by";

pub async fn list(state: &AppState, user: &SessionUser) -> AppResult<Vec<ApiKeyInfo>> {
    ensure_admin(state, user).await?;
    let rows: Vec<KeyRow> = sqlx::query_as(&format!("{SELECT} WHERE k.workspace_id = $1 ORDER BY k.id DESC"))
        .bind(user.workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
    rows.into_iter().map(KeyRow::info).collect()
}

#[tracing::instrument(skip_all, fields(user_id = user.id))]
pub async fn create(state: &AppState, user: &SessionUser, name: &str, scopes: &str) -> AppResult<CreatedApiKey> {
    ensure_admin(state, user).await?;
    let name = super::plain_text(name, 80, "name", "Name the key (1 to 80 characters), e.g. what uses it.")?;
    let scopes = ApiScope::parse_list(scopes)?;
    let secret = format!("{KEY_PREFIX}{}", random_token(40));
    let prefix: String = secret.chars().take(SHOWN).collect();
    let stored: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_keys (workspace_id, name, prefix, secret_hash, scopes, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(user.workspace_id)
    .bind(&name)
    .bind(&prefix)
    .bind(digest(&secret))
    .bind(stored.join(" "))
    .bind(user.id)
    .bind(now)
    .fetch_one(&state.db.pool)
    .await?;
    Operation::by(user, Level::Info, OperationKind::ApiKeyCreated)
        .detail(format!("'{name}' ({prefix}): {}", stored.join(", ")))
        .record(&state.db)
        .await;
    let key = ApiKeyInfo {
        id,
        name,
        prefix,
        scopes,
        created_by: user.name.clone(),
        created_at_ms: now,
        last_used_at_ms: None,
        revoked_at_ms: None,
    };
    Ok(CreatedApiKey { key, secret })
}

pub async fn revoke(state: &AppState, user: &SessionUser, id: i64) -> AppResult<()> {
    ensure_admin(state, user).await?;
    let revoked: Option<(String, String)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = $1, revoked_by = $2
         WHERE id = $3 AND workspace_id = $4 AND revoked_at IS NULL
         RETURNING name, prefix",
    )
    .bind(now_ms())
    .bind(user.id)
    .bind(id)
    .bind(user.workspace_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let (name, prefix) = revoked.ok_or_else(|| AppError::not_found("No such API key, or it is already revoked."))?;
    Operation::by(user, Level::Info, OperationKind::ApiKeyRevoked)
        .detail(format!("'{name}' ({prefix})"))
        .record(&state.db)
        .await;
    Ok(())
}

/// Why a key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No `Authorization: Bearer` header, or not a key of ours.
    Missing,
    Unknown,
    Revoked,
}

/// The caller for a presented key. A revoked key's refusal is an Operations entry of its
/// workspace; an unknown one is only logged (it names no workspace).
pub async fn authenticate(state: &AppState, presented: Option<&str>) -> AppResult<Result<ApiCaller, Refused>> {
    let Some(secret) = presented.filter(|s| s.starts_with(KEY_PREFIX) && s.len() < 200) else {
        return Ok(Err(Refused::Missing));
    };
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        workspace_id: i64,
        name: String,
        prefix: String,
        scopes: String,
        created_by: i64,
        revoked_at: Option<i64>,
        last_used_at: Option<i64>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, workspace_id, name, prefix, scopes, created_by, revoked_at, last_used_at
         FROM api_keys WHERE secret_hash = $1",
    )
    .bind(digest(secret))
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        tracing::info!("API call with an unknown key");
        return Ok(Err(Refused::Unknown));
    };
    let caller = ApiCaller {
        key_id: row.id,
        workspace_id: row.workspace_id,
        name: row.name,
        prefix: row.prefix,
        scopes: ApiScope::parse_list(&row.scopes)?,
        created_by: row.created_by,
    };
    if row.revoked_at.is_some() {
        caller
            .operation(Level::Warn, OperationKind::ApiCallRefused)
            .detail(format!("{} is revoked", caller.label()))
            .record(&state.db)
            .await;
        return Ok(Err(Refused::Revoked));
    }
    // "Last used" to the minute: a busy key is written once a minute, not on every call.
    let now = now_ms();
    if row.last_used_at.is_none_or(|t| now - t >= 60_000) {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(caller.key_id)
            .execute(&state.db.pool)
            .await?;
    }
    Ok(Ok(caller))
}
