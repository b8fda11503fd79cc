//! The outbox: an event and one delivery row per endpoint subscribed to it, written in the
//! caller's transaction, so an event is sent if and only if the change it reports is committed
//! (a crash right after the commit loses nothing: the delivery pass finds the rows).
//!
//! The payload names things (workspace, application, connection link name, environment, status,
//! reason) and never carries a credential.

use super::EventType;
use crate::error::AppResult;
use crate::ssr::ids::{now_ms, random_token};
use sqlx::{Any, Transaction};

/// One thing that happened, as [`emit`] sends it: `Event::new(kind, workspace).connection(id)
/// .env("production").status("revoked")`. Parts left out are `null` in the payload.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    pub kind: Option<EventType>,
    pub workspace_id: i64,
    pub connection_id: Option<i64>,
    pub application_id: Option<i64>,
    pub environment: Option<&'a str>,
    pub status: Option<&'a str>,
    pub reason: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(kind: EventType, workspace_id: i64) -> Self {
        Event { kind: Some(kind), workspace_id, ..Event::default() }
    }

    pub fn connection(self, id: i64) -> Self {
        Event { connection_id: Some(id), ..self }
    }

    pub fn application(self, id: impl Into<Option<i64>>) -> Self {
        Event { application_id: id.into(), ..self }
    }

    pub fn env(self, environment: &'a str) -> Self {
        Event { environment: Some(environment), ..self }
    }

    pub fn status(self, status: &'a str) -> Self {
        Event { status: Some(status), ..self }
    }

    pub fn reason(self, reason: impl Into<Option<&'a str>>) -> Self {
        Event { reason: reason.into(), ..self }
    }
}

/// Queues `event` for every enabled endpoint of its workspace subscribed to its type, in `tx`.
/// Returns the event id, or `None` when no endpoint wants it (nothing is written then).
pub async fn emit(tx: &mut Transaction<'_, Any>, event: Event<'_>) -> AppResult<Option<String>> {
    let Some(kind) = event.kind else { return Ok(None) };
    let endpoints: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, events FROM webhook_endpoints WHERE workspace_id = $1 AND enabled = 1")
            .bind(event.workspace_id)
            .fetch_all(&mut **tx)
            .await?;
    let wanted: Vec<i64> = endpoints
        .into_iter()
        .filter(|(_, events)| events.split_whitespace().any(|e| e == kind.as_str()))
        .map(|(id, _)| id)
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    emit_to(tx, event, &wanted).await.map(Some)
}

/// Queues `event` for the given endpoints (the test event: one endpoint, enabled or not).
pub async fn emit_to(tx: &mut Transaction<'_, Any>, event: Event<'_>, endpoints: &[i64]) -> AppResult<String> {
    let kind = event.kind.unwrap_or(EventType::Test);
    let workspace: Option<String> = sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1")
        .bind(event.workspace_id)
        .fetch_optional(&mut **tx)
        .await?;
    let connection: Option<String> = match event.connection_id {
        Some(id) => {
            sqlx::query_scalar("SELECT link_name FROM connections WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
        }
        None => None,
    };
    let application: Option<String> = match event.application_id {
        Some(id) => {
            sqlx::query_scalar("SELECT link_name FROM applications WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
        }
        None => None,
    };
    let id = format!("msg_{}", random_token(24));
    let now = now_ms();
    let payload = serde_json::json!({
        "id": id,
        "type": kind.as_str(),
        "timestamp": crate::platform::connect_sessions::rfc3339(now),
        "data": {
            "workspace": workspace,
            "application": application,
            "connection": connection,
            "environment": event.environment,
            "status": event.status,
            "reason": event.reason,
        },
    });
    sqlx::query("INSERT INTO webhook_events (id, workspace_id, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&id)
        .bind(event.workspace_id)
        .bind(kind.as_str())
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    for endpoint in endpoints {
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, next_attempt_at, created_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(endpoint)
        .bind(&id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}

/// One event per connection and environment that uses the account (an account's status is
/// shared by every connection it authorizes).
pub async fn emit_for_account(
    tx: &mut Transaction<'_, Any>,
    account_id: i64,
    kind: EventType,
    status: &str,
    reason: Option<&str>,
) -> AppResult<()> {
    let uses: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT c.workspace_id, ca.connection_id, ca.environment
         FROM connection_authorizations ca JOIN connections c ON c.id = ca.connection_id
         WHERE ca.account_id = $1 ORDER BY ca.connection_id, ca.environment",
    )
    .bind(account_id)
    .fetch_all(&mut **tx)
    .await?;
    for (workspace_id, connection_id, env) in &uses {
        let event = Event::new(kind, *workspace_id).connection(*connection_id).env(env).status(status).reason(reason);
        emit(tx, event).await?;
    }
    Ok(())
}
