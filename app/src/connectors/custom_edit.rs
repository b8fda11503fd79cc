//! Editing and deleting a saved custom connector (issue 13): its fields back for the Edit form
//! (the client secret write-only), a save that asks for confirmation before invalidating
//! authorizations, and delete when no connection uses it.

use super::custom::{input_from_config, validate_custom};
use crate::auth::SessionUser;
use crate::authorizations::ssr::reason;
use crate::connectors::ssr::{secret_aad, summary, Row};
use crate::connectors::{ConnectorConfig, ConnectorKind, ConnectorSummary, CustomConnectorForm, CustomConnectorInput};
use crate::domain::AuthType;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::AppState;

/// Whether going from `old` to `new` makes authorizations given under `old` unusable.
fn invalidates_authorizations(
    old_auth: AuthType,
    old: &ConnectorConfig,
    new_auth: AuthType,
    new: &ConnectorConfig,
) -> bool {
    old_auth != new_auth
        || old.grant_type != new.grant_type
        || old.client_id != new.client_id
        || old.authorize_url != new.authorize_url
        || old.token_url != new.token_url
        || old.issuer != new.issuer
        || old.api_base != new.api_base
        || old.key_name != new.key_name
        || old.placement != new.placement
}

/// A custom connector of the caller's workspace, as stored.
#[derive(sqlx::FromRow)]
struct Stored {
    name: String,
    link_name: String,
    description: String,
    auth_type: String,
    config: String,
    secret_ct: Option<Vec<u8>>,
}

async fn stored(state: &AppState, user: &SessionUser, id: i64) -> AppResult<(Stored, AuthType, ConnectorConfig)> {
    let row: Stored = sqlx::query_as(
        "SELECT name, link_name, description, auth_type, config, secret_ct FROM connectors
         WHERE id = $1 AND workspace_id = $2 AND kind = 'custom'",
    )
    .bind(id)
    .bind(user.workspace_id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found("There is no such custom connector."))?;
    let auth = AuthType::parse(&row.auth_type)?;
    let config: ConnectorConfig =
        serde_json::from_str(&row.config).map_err(|e| AppError::internal("connector config", e))?;
    Ok((row, auth, config))
}

async fn connections_of(state: &AppState, id: i64) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT display_name FROM connections WHERE connector_id = $1 ORDER BY display_name")
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?)
}

pub async fn custom_form(state: &AppState, user: &SessionUser, id: i64) -> AppResult<CustomConnectorForm> {
    let (row, auth, config) = stored(state, user, id).await?;
    Ok(CustomConnectorForm {
        id,
        input: input_from_config(&row.name, &row.link_name, &row.description, auth, &config),
        secret_set: row.secret_ct.is_some(),
        connections: connections_of(state, id).await?,
    })
}

#[tracing::instrument(skip_all, fields(connector = id, user_id = user.id))]
pub async fn update_custom(
    state: &AppState,
    user: &SessionUser,
    id: i64,
    mut input: CustomConnectorInput,
    confirmed: bool,
) -> AppResult<ConnectorSummary> {
    let (row, old_auth, old) = stored(state, user, id).await?;
    // The link name identifies the connector; it does not change.
    input.link_name = row.link_name.clone();
    let keep_secret = input.client_secret.is_empty() && row.secret_ct.is_some();
    if keep_secret {
        input.client_secret = "unchanged".into(); // validated as present; not stored
    }
    let mut v = validate_custom(&input)?;
    if v.auth_type == AuthType::OAuth2 {
        crate::connectors::discovery::complete_endpoints(state, &mut v).await?;
    }
    let invalidates = invalidates_authorizations(old_auth, &old, v.auth_type, &v.config);
    let affected: i64 = if invalidates {
        sqlx::query_scalar("SELECT COUNT(*) FROM authorized_accounts WHERE connector_id = $1 AND status = 'connected'")
            .bind(id)
            .fetch_one(&state.db.pool)
            .await?
    } else {
        0
    };
    if affected > 0 && !confirmed {
        return Err(AppError::Conflict(format!(
            "This change makes {affected} authorization(s) of connections using {} need reauthorization. Confirm to save it.",
            row.name
        )));
    }
    let config = serde_json::to_string(&v.config).map_err(|e| AppError::internal("connector config", e))?;
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("UPDATE connectors SET name = $1, description = $2, auth_type = $3, config = $4 WHERE id = $5")
        .bind(v.name.as_str())
        .bind(&v.description)
        .bind(v.auth_type.as_str())
        .bind(&config)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let rotated = !keep_secret && v.secret.is_some();
    if rotated {
        let secret = v.secret.as_deref().unwrap_or_default();
        sqlx::query("UPDATE connectors SET secret_ct = $1 WHERE id = $2")
            .bind(state.cipher.encrypt(&secret_aad(id), secret.as_bytes()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if v.auth_type != AuthType::OAuth2 {
        sqlx::query("UPDATE connectors SET secret_ct = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
    }
    if affected > 0 {
        let accounts: Vec<i64> = sqlx::query_scalar(
            "UPDATE authorized_accounts SET status = 'needs_reauthorization', status_reason = $1
             WHERE connector_id = $2 AND status = 'connected' RETURNING id",
        )
        .bind(reason::CONNECTOR_CHANGED)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for account in accounts {
            let kind = crate::webhooks::EventType::ConnectionNeedsReauthorization;
            let why = Some(reason::CONNECTOR_CHANGED);
            crate::webhooks::outbox::emit_for_account(&mut tx, account, kind, "needs_reauthorization", why).await?;
        }
    }
    tx.commit().await?;
    let mut detail = format!("custom connector {}", row.link_name);
    if rotated {
        detail.push_str("; client secret replaced");
    }
    if affected > 0 {
        detail.push_str(&format!("; {affected} authorization(s) need reauthorization"));
    }
    Operation::by(user, Level::Info, OperationKind::ConnectorEdited).detail(detail).record(&state.db).await;
    summary(Row {
        id,
        kind: ConnectorKind::Custom.as_str().into(),
        name: v.name.to_string(),
        link_name: row.link_name,
        description: v.description,
        auth_type: v.auth_type.as_str().into(),
        config,
    })
}

#[tracing::instrument(skip_all, fields(connector = id, user_id = user.id))]
pub async fn delete_custom(state: &AppState, user: &SessionUser, id: i64) -> AppResult<()> {
    let (row, _, _) = stored(state, user, id).await?;
    let used = connections_of(state, id).await?;
    if !used.is_empty() {
        return Err(AppError::Conflict(format!(
            "{} cannot be deleted while connections use it: {}. Delete them first.",
            row.name,
            used.join(", ")
        )));
    }
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_revocations WHERE connector_id = $1")
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    if pending > 0 {
        return Err(AppError::Conflict(format!(
            "{} still has tokens being revoked at the service. Try again later.",
            row.name
        )));
    }
    sqlx::query("DELETE FROM connectors WHERE id = $1 AND workspace_id = $2 AND kind = 'custom'")
        .bind(id)
        .bind(user.workspace_id)
        .execute(&state.db.pool)
        .await
        .map_err(|e| {
            crate::ssr::db::conflict_if_referenced(e, || format!("{} is still in use. Reload and try again.", row.name))
        })?;
    Operation::by(user, Level::Info, OperationKind::ConnectorDeleted)
        .detail(format!("custom connector {}", row.link_name))
        .record(&state.db)
        .await;
    Ok(())
}
