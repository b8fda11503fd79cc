//! Webhook endpoints: admins register them with the events they want; each gets a signing
//! secret (`whsec_` and 32 random bytes in base64, the Standard Webhooks form) shown once and
//! stored encrypted under the versioned key.

use super::{CreatedEndpoint, DeliveryInfo, EndpointInfo, EventType};
use crate::auth::SessionUser;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide_workspace, WorkspaceAction};
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use base64::Engine as _;
use rand::RngCore as _;

pub const SECRET_PREFIX: &str = "whsec_";

/// The associated data an endpoint's secret is encrypted with.
pub fn secret_aad(id: i64) -> Vec<u8> {
    format!("webhook_endpoints:{id}").into_bytes()
}

pub(super) async fn ensure_builder(state: &AppState, user: &SessionUser) -> AppResult<()> {
    if decide_workspace(user.role, WorkspaceAction::ManageWebhooks) {
        return Ok(());
    }
    Operation::by(user, Level::Warn, OperationKind::AccessDenied)
        .detail(format!("{} tried to manage webhooks", user.email))
        .record(&state.db)
        .await;
    Err(AppError::forbidden("Only builders (developers, admins and super admins) can manage webhooks."))
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: i64,
    url: String,
    description: String,
    events: String,
    enabled: i64,
    disabled_reason: Option<String>,
    created_by: String,
    created_at: i64,
}

impl EndpointRow {
    fn info(self) -> AppResult<EndpointInfo> {
        Ok(EndpointInfo {
            id: self.id,
            url: self.url,
            description: self.description,
            events: EventType::parse_list(&self.events)?,
            enabled: self.enabled != 0,
            disabled_reason: self.disabled_reason,
            created_by: self.created_by,
            created_at_ms: self.created_at,
        })
    }
}

const SELECT: &str = "SELECT e.id, e.url, e.description, e.events, e.enabled, e.disabled_reason,
        u.display_name AS created_by, e.created_at
   FROM webhook_endpoints e JOIN users u ON u.id = e.created_by";

pub async fn list(state: &AppState, user: &SessionUser) -> AppResult<Vec<EndpointInfo>> {
    ensure_builder(state, user).await?;
    let rows: Vec<EndpointRow> = sqlx::query_as(&format!("{SELECT} WHERE e.workspace_id = $1 ORDER BY e.id DESC"))
        .bind(user.workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
    rows.into_iter().map(EndpointRow::info).collect()
}

/// One endpoint of the caller's workspace (404 for another workspace's id).
pub(super) async fn load(state: &AppState, user: &SessionUser, id: i64) -> AppResult<EndpointInfo> {
    let row: Option<EndpointRow> = sqlx::query_as(&format!("{SELECT} WHERE e.id = $1 AND e.workspace_id = $2"))
        .bind(id)
        .bind(user.workspace_id)
        .fetch_optional(&state.db.pool)
        .await?;
    row.ok_or_else(|| AppError::not_found("No such webhook endpoint in this workspace."))?.info()
}

/// Where deliveries may go: an absolute https URL, or http to an allowlisted host (the
/// outbound client's rule for server-to-server endpoints), without credentials in it.
fn parse_url(state: &AppState, raw: &str) -> AppResult<url::Url> {
    let url = url::Url::parse(raw.trim())
        .map_err(|_| AppError::invalid("url", "Enter the endpoint's full URL, e.g. https://example.com/hooks."))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::invalid("url", "Leave credentials out of the URL: deliveries are signed instead."));
    }
    if url.as_str().len() > 2000 {
        return Err(AppError::invalid("url", "The URL is too long (at most 2000 characters)."));
    }
    state.outbound.check_oauth_endpoint(&url).map_err(|e| AppError::invalid("url", e.to_string()))?;
    Ok(url)
}

#[tracing::instrument(skip_all, fields(user_id = user.id))]
pub async fn create(
    state: &AppState,
    user: &SessionUser,
    url: &str,
    description: &str,
    events: &str,
) -> AppResult<CreatedEndpoint> {
    ensure_builder(state, user).await?;
    let url = parse_url(state, url)?;
    let description = description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(AppError::invalid("description", "Keep the description to one line of at most 200 characters."));
    }
    let events = EventType::parse_list(events)?;
    let stored = events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" ");
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let secret = format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key));
    let mut tx = state.db.pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_endpoints (workspace_id, url, description, events, secret_ct, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(user.workspace_id)
    .bind(url.as_str())
    .bind(description)
    .bind(&stored)
    .bind(Vec::<u8>::new())
    .bind(user.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE webhook_endpoints SET secret_ct = $1 WHERE id = $2")
        .bind(state.cipher.encrypt(&secret_aad(id), secret.as_bytes()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Operation::by(user, Level::Info, OperationKind::WebhookEndpointCreated)
        .detail(format!("{} for {stored}", crate::ssr::outbound::shown(&url)))
        .record(&state.db)
        .await;
    Ok(CreatedEndpoint { endpoint: load(state, user, id).await?, secret })
}

pub async fn set_enabled(state: &AppState, user: &SessionUser, id: i64, enabled: bool) -> AppResult<()> {
    ensure_builder(state, user).await?;
    let endpoint = load(state, user, id).await?;
    let reason = (!enabled).then(|| format!("turned off by {}", user.email));
    sqlx::query(
        "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, failing_since = NULL
         WHERE id = $3 AND workspace_id = $4",
    )
    .bind(i64::from(enabled))
    .bind(reason)
    .bind(id)
    .bind(user.workspace_id)
    .execute(&state.db.pool)
    .await?;
    let kind = if enabled { OperationKind::WebhookEndpointEnabled } else { OperationKind::WebhookEndpointDisabled };
    Operation::by(user, Level::Info, kind).detail(endpoint.url).record(&state.db).await;
    Ok(())
}

pub async fn delete(state: &AppState, user: &SessionUser, id: i64) -> AppResult<()> {
    ensure_builder(state, user).await?;
    let endpoint = load(state, user, id).await?;
    // Deliveries go with the endpoint (ON DELETE CASCADE); events nobody else waits for stay
    // until housekeeping drops old ones.
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(user.workspace_id)
        .execute(&state.db.pool)
        .await?;
    Operation::by(user, Level::Info, OperationKind::WebhookEndpointDeleted)
        .detail(endpoint.url)
        .record(&state.db)
        .await;
    Ok(())
}

const DELIVERY_COLUMNS: &str = "d.event_id, ev.kind, d.state, d.attempts, d.last_status, d.last_error,
        d.created_at AS created_at_ms, d.last_attempt_at AS last_attempt_at_ms, d.delivered_at AS delivered_at_ms";

/// The endpoint's 50 newest deliveries.
pub async fn deliveries(state: &AppState, user: &SessionUser, id: i64) -> AppResult<Vec<DeliveryInfo>> {
    ensure_builder(state, user).await?;
    load(state, user, id).await?;
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
         WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT 50"
    ))
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?)
}

/// One delivery, by endpoint and event.
pub(super) async fn delivery(state: &AppState, endpoint_id: i64, event_id: &str) -> AppResult<DeliveryInfo> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
         WHERE d.endpoint_id = $1 AND d.event_id = $2"
    ))
    .bind(endpoint_id)
    .bind(event_id)
    .fetch_one(&state.db.pool)
    .await?)
}
