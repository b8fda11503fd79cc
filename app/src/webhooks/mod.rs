//! Health webhooks (R18): builders register endpoints per workspace and the platform tells them
//! when a connection is authorized, switched, revoked, needs reauthorization, recovers or is
//! deleted, and when a sync completes or fails. Deliveries are signed by the Standard Webhooks
//! specification, written to a durable outbox in the transaction of the change they report,
//! and sent through the guarded outbound client with retries for up to a day.
//!
//! - [`endpoints`]: register, list, enable/disable and delete endpoints (builders); the signing
//!   secret is shown once and stored encrypted.
//! - [`outbox`]: [`outbox::Event`] and `emit`, called by the domain modules inside their
//!   transactions.
//! - [`delivery`]: the background pass that signs and sends due deliveries, backs off, gives up
//!   after the retry window and disables endpoints that keep failing; "Send test event".

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod delivery;
#[cfg(feature = "ssr")]
pub mod endpoints;
#[cfg(feature = "ssr")]
pub mod outbox;

closed_set! {
    /// What a webhook event reports (its `type`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum EventType ("events", "webhook event") {
        ConnectionAuthorized = "connection.authorized", "A connection was authorized";
        ConnectionSwitched = "connection.switched", "A connection was switched to another account";
        ConnectionRevoked = "connection.revoked", "An authorization was revoked";
        ConnectionNeedsReauthorization = "connection.needs_reauthorization", "A connection needs reauthorization";
        ConnectionRecovered = "connection.recovered", "A connection recovered";
        ConnectionDeleted = "connection.deleted", "A connection was deleted";
        SyncCompleted = "sync.completed", "A datasource sync completed";
        SyncFailed = "sync.failed", "A datasource sync failed";
        /// Sent only by "Send test event", to the one endpoint asked.
        Test = "webhook.test", "Test event";
    }
}

impl EventType {
    /// The events an endpoint may subscribe to (every one but the test event).
    pub fn subscribable() -> impl Iterator<Item = EventType> {
        EventType::ALL.into_iter().filter(|e| *e != EventType::Test)
    }

    /// Events as typed or stored: separated by spaces or commas, at least one, no repeats.
    pub fn parse_list(raw: &str) -> Result<Vec<EventType>, AppError> {
        let subscribable = |part: &str| match EventType::parse(part)? {
            EventType::Test => Err(AppError::invalid("events", "The test event is sent on request only.")),
            event => Ok(event),
        };
        crate::closed_set::parse_list(raw, subscribable, "events", "Choose at least one event.")
    }
}

closed_set! {
    /// Where one delivery of one event to one endpoint stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum DeliveryState ("state", "delivery state") {
        Pending = "pending", "Pending";
        Delivered = "delivered", "Delivered";
        Failed = "failed", "Failed";
    }
}

/// An endpoint as lists show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// An endpoint just registered: the only answer that carries its signing secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEndpoint {
    pub endpoint: EndpointInfo,
    /// `whsec_` and the base64 key, as Standard Webhooks libraries take it.
    pub secret: String,
}

impl std::fmt::Debug for CreatedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEndpoint").field("endpoint", &self.endpoint).field("secret", &"[redacted]").finish()
    }
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct DeliveryInfo {
    pub event_id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub last_attempt_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
}

impl DeliveryInfo {
    pub fn state(&self) -> DeliveryState {
        DeliveryState::parse(&self.state).unwrap_or(DeliveryState::Pending)
    }
}

/// The workspace's webhook endpoints, newest first (builders).
#[server(prefix = "/api", endpoint = "webhook_endpoints")]
pub async fn webhook_endpoints() -> Result<Vec<EndpointInfo>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    endpoints::list(&state, &user).await
}

/// Registers an endpoint (builders): an https URL (plain http only for allowlisted hosts), a
/// description and the events it receives, separated by spaces.
#[server(prefix = "/api", endpoint = "create_webhook_endpoint")]
pub async fn create_webhook_endpoint(
    url: String,
    description: String,
    events: String,
) -> Result<CreatedEndpoint, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    endpoints::create(&state, &user, &url, &description, &events).await
}

/// Turns an endpoint on or off (builders). Turning one on again resumes its pending deliveries.
#[server(prefix = "/api", endpoint = "set_webhook_endpoint_enabled")]
pub async fn set_webhook_endpoint_enabled(id: i64, enabled: bool) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    endpoints::set_enabled(&state, &user, id, enabled).await
}

/// Deletes an endpoint and its delivery log (builders).
#[server(prefix = "/api", endpoint = "delete_webhook_endpoint")]
pub async fn delete_webhook_endpoint(id: i64) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    endpoints::delete(&state, &user, id).await
}

/// The endpoint's last deliveries, newest first (builders).
#[server(prefix = "/api", endpoint = "webhook_deliveries")]
pub async fn webhook_deliveries(id: i64) -> Result<Vec<DeliveryInfo>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    endpoints::deliveries(&state, &user, id).await
}

/// Sends a `webhook.test` event to the endpoint now and answers how the delivery went.
#[server(prefix = "/api", endpoint = "send_test_webhook")]
pub async fn send_test_webhook(id: i64) -> Result<DeliveryInfo, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    delivery::send_test(&state, &user, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_a_closed_set_without_the_test_event() {
        assert_eq!(
            EventType::parse_list("connection.revoked, sync.failed connection.revoked").unwrap(),
            [EventType::ConnectionRevoked, EventType::SyncFailed]
        );
        assert!(EventType::parse_list("").is_err());
        assert!(EventType::parse_list("connection.exploded").is_err());
        assert!(EventType::parse_list("webhook.test").is_err());
        assert_eq!(EventType::subscribable().count(), EventType::ALL.len() - 1);
    }
}
