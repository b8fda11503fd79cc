//! Sending the outbox. A background pass on every replica takes due deliveries, claims each by
//! moving its next attempt forward (so two replicas never send the same one at once), signs it
//! (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256 of "id.timestamp.body">`) and POSTs it through the guarded outbound client.
//!
//! A 2xx answer delivers it. Anything else (another status — redirects are not followed —, no
//! answer, a refused address) is retried with exponential back-off until `--webhook-retry-secs`
//! after the event, then marked failed. An endpoint whose deliveries have failed without a single
//! success for that long is disabled, with an Operations entry. Delivery is at least once: the
//! event id is stable across attempts, so receivers deduplicate on `webhook-id`.

use super::endpoints::{ensure_builder, secret_aad};
use super::outbox::{emit_to, Event};
use super::{DeliveryInfo, EventType};
use crate::auth::SessionUser;
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::ids::now_ms;
use crate::ssr::outbound::{shown, Outbound, OutboundError};
use crate::ssr::AppState;
use std::time::Duration;

/// How often the delivery pass looks for due deliveries.
pub const TICK: Duration = Duration::from_secs(2);
/// Deliveries one pass takes at most.
const BATCH: i64 = 50;
/// How long an endpoint has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an endpoint's answer is read (it is not kept, only drained).
const MAX_ANSWER: usize = 64 * 1024;
/// Delivered and failed deliveries, and their events, are kept this long for the log.
const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// Delay before attempt `attempts + 1`: 5 s, doubling, at most two hours.
pub fn backoff_ms(attempts: i64) -> i64 {
    5_000i64.saturating_mul(1 << attempts.clamp(0, 16)).min(2 * 3600 * 1000)
}

/// Sends every delivery due at `now` (the pass's clock; tests move it forward) to an enabled
/// endpoint. Returns how many were attempted.
pub async fn deliver_due(state: &AppState, now: i64) -> AppResult<usize> {
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND e.enabled = 1
         ORDER BY d.next_attempt_at, d.id LIMIT $2",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(&state.db.pool)
    .await?;
    for id in &due {
        attempt(state, *id, now).await?;
    }
    Ok(due.len())
}

/// Drops delivered and failed deliveries older than a week, and events nothing waits for.
pub async fn housekeeping(state: &AppState, now: i64) -> AppResult<()> {
    sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1")
        .bind(now - KEEP_MS)
        .execute(&state.db.pool)
        .await?;
    sqlx::query(
        "DELETE FROM webhook_events WHERE created_at < $1
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
    )
    .bind(now - KEEP_MS)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Claimed {
    endpoint_id: i64,
    event_id: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Target {
    workspace_id: i64,
    url: String,
    secret_ct: Vec<u8>,
    payload: String,
}

/// One attempt at one delivery, if it is still pending and due, and nobody took it first.
async fn attempt(state: &AppState, id: i64, now: i64) -> AppResult<()> {
    let attempts: Option<i64> = sqlx::query_scalar(
        "SELECT attempts FROM webhook_deliveries WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(attempts) = attempts else { return Ok(()) };
    let claimed: Option<Claimed> = sqlx::query_as(
        "UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = attempts + 1, last_attempt_at = $2
         WHERE id = $3 AND state = 'pending' AND next_attempt_at <= $2 AND attempts = $4
         RETURNING endpoint_id, event_id, created_at",
    )
    .bind(now + backoff_ms(attempts))
    .bind(now)
    .bind(id)
    .bind(attempts)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(claimed) = claimed else { return Ok(()) }; // another replica took it
    let target: Target = sqlx::query_as(
        "SELECT e.workspace_id, e.url, e.secret_ct, ev.payload
         FROM webhook_endpoints e, webhook_events ev WHERE e.id = $1 AND ev.id = $2",
    )
    .bind(claimed.endpoint_id)
    .bind(&claimed.event_id)
    .fetch_one(&state.db.pool)
    .await?;
    let secret = state
        .cipher
        .decrypt(&secret_aad(claimed.endpoint_id), &target.secret_ct)
        .map_err(|e| AppError::internal("webhook secret", e))?;
    let outcome = post(&state.outbound, &target, &claimed.event_id, &secret).await;
    let delivered = matches!(outcome, Ok(status) if (200..300).contains(&status));
    let status = outcome.as_ref().ok().copied();
    if delivered {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $1, last_status = $2, last_error = NULL
             WHERE id = $3",
        )
        .bind(now)
        .bind(status)
        .bind(id)
        .execute(&state.db.pool)
        .await?;
        sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
            .bind(claimed.endpoint_id)
            .execute(&state.db.pool)
            .await?;
        return Ok(());
    }
    let why = match outcome {
        Ok(code) if (300..400).contains(&code) => format!("the endpoint answered {code} (redirects are not followed)"),
        Ok(code) => format!("the endpoint answered {code}"),
        Err(e) => e.to_string(),
    };
    tracing::warn!(id, endpoint_id = claimed.endpoint_id, attempts = attempts + 1, reason = %why, "webhook delivery failed");
    let window = state.settings.webhook_retry_secs.saturating_mul(1000);
    let give_up = now - claimed.created_at >= window;
    sqlx::query("UPDATE webhook_deliveries SET state = $1, last_status = $2, last_error = $3 WHERE id = $4")
        .bind(if give_up { "failed" } else { "pending" })
        .bind(status)
        .bind(&why)
        .bind(id)
        .execute(&state.db.pool)
        .await?;
    let failing_since: Option<i64> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 RETURNING failing_since",
    )
    .bind(now)
    .bind(claimed.endpoint_id)
    .fetch_optional(&state.db.pool)
    .await?
    .flatten();
    if failing_since.is_some_and(|since| now - since >= window) {
        disable_failing(state, claimed.endpoint_id, target.workspace_id, &target.url, &why, window).await?;
    }
    Ok(())
}

/// Turns off an endpoint that has failed for the whole retry window (once, on any replica).
async fn disable_failing(
    state: &AppState,
    endpoint_id: i64,
    workspace_id: i64,
    url: &str,
    why: &str,
    window_ms: i64,
) -> AppResult<()> {
    let hours = window_ms / 3_600_000;
    let reason = format!("disabled after failing for {hours} h ({why})");
    let turned_off =
        sqlx::query("UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1 WHERE id = $2 AND enabled = 1")
            .bind(&reason)
            .bind(endpoint_id)
            .execute(&state.db.pool)
            .await?
            .rows_affected();
    if turned_off > 0 {
        Operation::new(Level::Warn, OperationKind::WebhookEndpointDisabled)
            .workspace(workspace_id)
            .detail(format!("{url}: {reason}"))
            .record(&state.db)
            .await;
    }
    Ok(())
}

/// Signs and POSTs one event; the endpoint's HTTP status, or why there was none.
#[tracing::instrument(skip_all, fields(event_id))]
async fn post(outbound: &Outbound, target: &Target, event_id: &str, secret: &[u8]) -> Result<i64, OutboundError> {
    let url = url::Url::parse(&target.url).map_err(|e| OutboundError::Invalid(e.to_string()))?;
    let secret = std::str::from_utf8(secret).map_err(|_| OutboundError::Invalid("unreadable secret".into()))?;
    let signer = standardwebhooks::Webhook::new(secret).map_err(|e| OutboundError::Invalid(e.to_string()))?;
    let timestamp = now_ms() / 1000;
    let signature = signer
        .sign(event_id, timestamp, target.payload.as_bytes())
        .map_err(|e| OutboundError::Invalid(e.to_string()))?;
    tracing::debug!(url = %shown(&url), "sending webhook");
    let request = outbound
        .oauth_request(reqwest::Method::POST, url)?
        .timeout(TIMEOUT)
        .header("content-type", "application/json")
        .header("webhook-id", event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(target.payload.clone());
    let res = outbound.send(request).await?;
    let status = i64::from(res.status().as_u16());
    // Drain a bounded part of the answer so the pooled connection can be reused.
    let _ = Outbound::read_body(res, MAX_ANSWER).await;
    Ok(status)
}

/// "Send test event": a `webhook.test` event for this endpoint only, sent now (also to a
/// disabled endpoint, to check it before turning it on again). Answers the delivery as it stands.
pub async fn send_test(state: &AppState, user: &SessionUser, endpoint_id: i64) -> AppResult<DeliveryInfo> {
    ensure_builder(state, user).await?;
    super::endpoints::load(state, user, endpoint_id).await?;
    let mut tx = state.db.pool.begin().await?;
    let event_id = emit_to(&mut tx, Event::new(EventType::Test, user.workspace_id), &[endpoint_id]).await?;
    tx.commit().await?;
    let id: i64 = sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2")
        .bind(endpoint_id)
        .bind(&event_id)
        .fetch_one(&state.db.pool)
        .await?;
    attempt(state, id, now_ms()).await?;
    super::endpoints::delivery(state, endpoint_id, &event_id).await
}
