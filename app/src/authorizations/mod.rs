//! Authorizing connections: Link New Account (R7.3) and Reuse (R7.1) for the chosen environments
//! (R6.1), Reauthorize (R4.5) and Switch (R4.4) by whoever may (R4.1), the OAuth2 window (R8.2).
//!
//! OAuth2 uses the authorization code grant with PKCE (S256) and `state` (the `oauth2` crate).
//! The pending flow lives in the database, so the callback may land on any replica; it is
//! refused after the authorization window (90 s), on reuse, on an unknown `state`, for another
//! signed-in user, and on a wrong or missing `iss` where the provider advertises it (RFC 9207).
//!
//! This file holds what the browser sees (the types and the `#[server]` functions); the server
//! side is split by concern and re-exported from [`ssr`]: `credentials.rs` (the stored
//! credentials and the accounts), `oauth.rs` (the OAuth2 flow), `refresh.rs` (token refresh) with
//! `fencing.rs` (the fenced store under the refresh lease), `health.rs` (an account's status and
//! its changes) and `callback.rs` (the `/oauth/callback` popup, its page in `callback_page.html` with `callback.js` or `callback_handoff.js`).

use crate::domain::{AccountId, Environment};
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The credentials a person types (only the ones the connector's auth type needs are read).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsInput {
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsInput(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizeOutcome {
    /// Stored; the connection works now. `verified`: the service accepted the credentials
    /// (the connector's test request); `false` when the connector has none.
    Authorized {
        account_name: String,
        #[serde(default)]
        verified: bool,
    },
    /// Open `authorize_url` (the provider's page) and finish within `window_secs`.
    Redirect { flow: String, authorize_url: String, window_secs: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowStatus {
    Pending {
        seconds_left: i64,
    },
    Connected {
        account_name: String,
    },
    Expired,
    Denied,
    /// Stopped by the person who started it (Cancel in the dialog).
    Cancelled,
    Failed {
        message: String,
    },
}

impl FlowStatus {
    pub fn message(&self) -> String {
        match self {
            FlowStatus::Pending { .. } => "Waiting for you to grant access on the service's page.".into(),
            FlowStatus::Connected { account_name } => format!("Connected as {account_name}."),
            FlowStatus::Expired => "The 90-second authorization window expired. Click Authorize to try again.".into(),
            FlowStatus::Denied => {
                "Access was denied on the service's page, so the connection was not authorized.".into()
            }
            FlowStatus::Cancelled => "The authorization was cancelled; nothing was saved.".into(),
            FlowStatus::Failed { message } => message.clone(),
        }
    }
}

/// An account the caller authorized before for the same service and configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOption {
    pub id: i64,
    /// The account's name, or for accounts from before names existed, the connection's name.
    pub label: String,
    /// True for accounts without a name: one must be given when it is picked.
    pub needs_name: bool,
}

#[server(prefix = "/api", endpoint = "authorize_connection")]
pub async fn authorize_connection(
    connection_id: i64,
    account_name: String,
    #[server(default)] environments: Vec<Environment>,
    #[server(default)] credentials: CredentialsInput,
    #[server(default)] replace: bool,
) -> Result<AuthorizeOutcome, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::authorize(&state, &user, ssr::Request { connection_id, account_name, environments, credentials, replace })
        .await
}

#[server(prefix = "/api", endpoint = "authorization_status")]
pub async fn authorization_status(flow: String) -> Result<FlowStatus, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::flow_status(&state, &user, &flow).await
}

/// Stops the caller's OAuth2 flow `flow`: a consent given afterwards on the service's page is
/// refused.
#[server(prefix = "/api", endpoint = "cancel_authorization")]
pub async fn cancel_authorization(flow: String) -> Result<FlowStatus, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::cancel(&state, &user, &flow).await
}

/// Finishes an OAuth2 flow in the window that started it, with the provider's answer the
/// popup handed over: when the panel is embedded on another site, its session lives in the
/// frame, so the popup (a top-level window) has no session of its own to finish with.
#[server(prefix = "/api", endpoint = "complete_authorization")]
pub async fn complete_authorization(
    flow: String,
    #[server(default)] code: Option<String>,
    #[server(default)] iss: Option<String>,
    #[server(default)] error: Option<String>,
    #[server(default)] error_description: Option<String>,
) -> Result<FlowStatus, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    let params = ssr::CallbackParams { state: Some(flow), code, iss, error, error_description };
    Ok(ssr::finish(&state, Some(&user), params).await)
}

#[server(prefix = "/api", endpoint = "reusable_accounts")]
pub async fn reusable_accounts(connection_id: i64) -> Result<Vec<AccountOption>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::reusable_accounts(&state, &user, connection_id).await
}

#[server(prefix = "/api", endpoint = "reuse_account")]
pub async fn reuse_account(
    connection_id: i64,
    account_id: AccountId,
    #[server(default)] environments: Vec<Environment>,
    #[server(default)] account_name: Option<String>,
) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::reuse_account(&state, &user, connection_id, account_id, environments, account_name).await
}

/// Renames the authorized account a connection uses in `environment` (the edit icon beside the
/// account name in the panel).
#[server(prefix = "/api", endpoint = "rename_account")]
pub async fn rename_account(connection_id: i64, environment: Environment, name: String) -> Result<String, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::rename_account(&state, &user, connection_id, environment, &name).await
}

#[cfg(feature = "ssr")]
mod callback;
#[cfg(feature = "ssr")]
mod credentials;
#[cfg(feature = "ssr")]
mod fencing;
#[cfg(feature = "ssr")]
mod health;
#[cfg(feature = "ssr")]
mod keepalive;
#[cfg(feature = "ssr")]
mod oauth;
#[cfg(feature = "ssr")]
mod refresh;

/// The server side: what the `#[server]` functions call and what other modules and tests use.
#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{AuthorizeOutcome, CredentialsInput};
    use crate::auth::SessionUser;
    use crate::connections::ssr::{load as load_connection, Connection};
    use crate::connectors::ssr::load as load_connector;
    use crate::domain::{AuthType, DisplayName, Environment};
    use crate::error::{AppError, AppResult};
    use crate::policy::{decide, Action, Decision};
    use crate::ssr::AppState;

    pub use super::callback::{callback_handler, ended_handler, escape_html, CallbackParams};
    pub(crate) use super::credentials::pending_aad;
    pub use super::credentials::{
        account_aad, config_key, credentials_for, rename_account, reusable_accounts, reuse_account,
        store_authorization, subject_for, Credentials, SHARED_SUBJECT,
    };
    pub use super::fencing::{store_refreshed, Stored};
    pub use super::health::{reason, unusable_status, usable_credentials, UNREACHABLE_LIMIT};
    pub use super::keepalive::{keepalive_pass, KeepAlive};
    pub use super::oauth::{cancel, finish, flow_status, forged_state, FlowOutcome};
    use super::oauth::{client_credentials, start_oauth};
    pub use super::refresh::{recover_interrupted, refresh_account, Refreshes};

    #[derive(Debug)]
    pub struct Request {
        pub connection_id: i64,
        pub account_name: String,
        pub environments: Vec<Environment>,
        pub credentials: CredentialsInput,
        pub replace: bool,
    }

    /// The caller may authorize this connection, or is told whom to ask.
    pub fn ensure_may_authorize(user: &SessionUser, conn: &Connection) -> AppResult<()> {
        match decide(user.role, conn.conn_type, Action::Authorize, conn.policy_context()) {
            Decision::Allowed | Decision::Prompt => Ok(()),
            Decision::ContactAdmin(who) => Err(AppError::forbidden(who.message(&conn.display_name))),
            Decision::Denied => Err(AppError::forbidden("You cannot authorize this connection.")),
        }
    }

    /// The environments an authorization applies to: all of them, locked together, when the
    /// connection uses the same authorization everywhere.
    pub fn environments_for(conn: &Connection, chosen: &[Environment]) -> AppResult<Vec<Environment>> {
        if conn.same_for_all_envs {
            return Ok(Environment::ALL.to_vec());
        }
        let mut envs: Vec<Environment> = chosen.to_vec();
        envs.sort();
        envs.dedup();
        if envs.is_empty() {
            return Err(AppError::invalid("environments", "Choose at least one environment."));
        }
        Ok(envs)
    }

    #[tracing::instrument(skip_all, fields(connection_id = req.connection_id, user_id = user.id))]
    pub async fn authorize(state: &AppState, user: &SessionUser, req: Request) -> AppResult<AuthorizeOutcome> {
        let conn = load_connection(state, user.workspace_id, req.connection_id).await?;
        ensure_may_authorize(user, &conn)?;
        let name = DisplayName::parse("account_name", &req.account_name)?;
        let envs = environments_for(&conn, &req.environments)?;
        let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
        let mut verified = true;
        let creds = match connector.auth_type {
            AuthType::ApiKey => {
                let key = req.credentials.api_key.trim();
                if key.is_empty() || key.len() > 4096 {
                    return Err(AppError::invalid("api_key", "Enter the API key."));
                }
                let creds = Credentials::ApiKey { key: key.to_string() };
                verified = crate::invoke::ssr::verify_credentials(state, &connector, &creds, "api_key").await?;
                creds
            }
            AuthType::Basic => {
                let (u, p) = (req.credentials.username.trim(), &req.credentials.password);
                if u.is_empty() || u.len() > 500 {
                    return Err(AppError::invalid(
                        "username",
                        format!("Enter the {}.", connector.config.username_label().to_lowercase()),
                    ));
                }
                if p.is_empty() || p.len() > 4096 {
                    return Err(AppError::invalid(
                        "password",
                        format!("Enter the {}.", connector.config.password_label().to_lowercase()),
                    ));
                }
                let creds = Credentials::Basic { username: u.to_string(), password: p.clone() };
                verified = crate::invoke::ssr::verify_credentials(state, &connector, &creds, "password").await?;
                creds
            }
            AuthType::OAuth2 if connector.config.grant_type == crate::connectors::GrantType::ClientCredentials => {
                client_credentials(state, &connector, &conn.scopes).await?
            }
            AuthType::OAuth2 => return start_oauth(state, user, &conn, &connector, name, envs, req.replace).await,
        };
        store_authorization(state, user, &conn, &connector, name.as_str(), &creds, &envs).await?;
        Ok(AuthorizeOutcome::Authorized { account_name: name.to_string(), verified })
    }
}
