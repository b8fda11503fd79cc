//! The platform's side door for host products: workspace API keys, connect sessions (a host's
//! backend opens the embedded panel already signed in as one of its end users) and the
//! versioned REST API under `/v1` for the host's backend.
//!
//! - [`keys`]: API keys (admins create, scope and revoke them; only a hash is stored).
//! - [`connect_sessions`]: single-use tokens for one end user, exchanged by the embedded panel.
//! - [`v1`]: the REST handlers, their OpenAPI document and RFC 9457 problems.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod connect_sessions;
#[cfg(feature = "ssr")]
pub mod keys;
#[cfg(feature = "ssr")]
pub mod v1;

closed_set! {
    /// What an API key may do.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ApiScope ("scopes", "API key scope") {
        /// `POST /v1/connect-sessions`.
        ConnectSessions = "connect_sessions", "Create connect sessions";
        /// `GET /v1/connections…` and `GET /v1/operations`.
        ConnectionsRead = "connections:read", "Read connections and operations";
        /// `POST /v1/connections/{link_name}/invoke`.
        Invoke = "invoke", "Call services over connections";
    }
}

impl ApiScope {
    /// Scopes as typed or stored: separated by spaces or commas, at least one, no repeats.
    pub fn parse_list(raw: &str) -> Result<Vec<ApiScope>, AppError> {
        crate::closed_set::parse_list(raw, ApiScope::parse, "scopes", "Choose at least one scope.")
    }
}

/// Free text a key or a host gives (a key's name, an end user's id or name): trimmed, 1 to `max`
/// characters, no control characters; otherwise `message` on `field`.
#[cfg(feature = "ssr")]
fn plain_text(raw: &str, max: usize, field: &str, message: &str) -> Result<String, AppError> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(AppError::invalid(field, message));
    }
    Ok(text.to_string())
}

/// An API key as lists show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub name: String,
    /// The secret's first characters, e.g. `cmk_Ab12Cd34`: enough to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<ApiScope>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// A key just created: the only answer that carries its secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: ApiKeyInfo,
    pub secret: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey").field("key", &self.key).field("secret", &"[redacted]").finish()
    }
}

/// The workspace's API keys, newest first (admins).
#[server(prefix = "/api", endpoint = "api_keys")]
pub async fn api_keys() -> Result<Vec<ApiKeyInfo>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    keys::list(&state, &user).await
}

/// Creates an API key (admins): a name and scopes separated by spaces.
#[server(prefix = "/api", endpoint = "create_api_key")]
pub async fn create_api_key(name: String, scopes: String) -> Result<CreatedApiKey, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    keys::create(&state, &user, &name, &scopes).await
}

/// Revokes an API key (admins): every call with it is refused from now on.
#[server(prefix = "/api", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: i64) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    keys::revoke(&state, &user, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_a_closed_set() {
        assert_eq!(
            ApiScope::parse_list("invoke, connect_sessions invoke").unwrap(),
            [ApiScope::Invoke, ApiScope::ConnectSessions]
        );
        assert!(ApiScope::parse_list("").is_err());
        assert!(ApiScope::parse_list("admin").is_err());
    }
}
