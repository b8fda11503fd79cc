//! The invoke-URL task (Deluge `invokeurl`): a server-side HTTP call over a connection. The
//! connection's credentials are injected only toward the connector's own origin; loopback,
//! private and link-local destinations are refused unless allowlisted; redirects are re-checked
//! hop by hop; an OAuth2 401 triggers one refresh and one retry.

use crate::domain::Environment;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct InvokeRequest {
    /// The application making the call (its connection access is checked).
    pub app: String,
    /// The connection's link name.
    pub connection: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub environment: Option<Environment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub duration_ms: i64,
}

#[server(prefix = "/api", endpoint = "invoke_url")]
pub async fn invoke_url(request: InvokeRequest) -> Result<InvokeResponse, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::invoke(&state, &user, request).await
}

#[cfg(feature = "ssr")]
mod send;
#[cfg(feature = "ssr")]
pub mod ssr;
