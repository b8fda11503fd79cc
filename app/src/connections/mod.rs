//! Connections as the panel (live and edit mode) and the Microservices page list them.
//! What each person may see is decided here, on the server, by [`crate::policy`].

use crate::domain::{ApplicationId, ConnectionId, ConnectionType, Environment};
use crate::error::AppError;
use crate::policy::Decision;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

closed_set! {
    /// A connection's state for one environment (and, for logged-in-user connections, one user).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Status ("status", "status") {
        Connected = "connected", "Connected";
        /// Never authorized (for this environment and, for logged-in-user connections, this user).
        NotConnected = "not_connected", "Not connected";
        /// The stored authorization stopped working; `status_reason` says why (refresh token
        /// revoked or expired, provider unreachable, an interrupted refresh).
        NeedsReauthorization = "needs_reauthorization", "Needs reauthorization";
        /// Someone revoked it; stays until it is authorized again.
        Revoked = "revoked", "Revoked";
        /// A builder disabled the connection: nothing may use it until it is enabled again
        /// (its authorizations are kept).
        Disabled = "disabled", "Disabled";
    }
}

impl Status {
    /// A row records it (an authorization, a revocation, the disabled flag); Not connected is
    /// the absence of one. The Microservices list finds connections with a recorded status from
    /// those rows rather than by reading every connection of the workspace.
    pub fn is_recorded(self) -> bool {
        !matches!(self, Status::NotConnected)
    }

    /// The label with the reason, e.g. "Needs reauthorization: provider unreachable".
    pub fn describe(self, reason: Option<&str>) -> String {
        match (self, reason) {
            (Status::NeedsReauthorization, Some(r)) if !r.is_empty() => format!("{}: {r}", self.label()),
            _ => self.label().to_string(),
        }
    }

    /// From the stored account status (`None`: no account).
    pub fn from_db(status: Option<&str>) -> Status {
        status.and_then(|s| Status::parse(s).ok()).unwrap_or(Status::NotConnected)
    }
}

/// One connection in the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEntry {
    pub id: i64,
    pub display_name: String,
    pub link_name: String,
    pub service_name: String,
    pub conn_type: ConnectionType,
    pub status: Status,
    /// Why it needs reauthorization.
    #[serde(default)]
    pub status_reason: Option<String>,
    pub account_name: Option<String>,
    /// What the caller may do about authorizing it.
    pub authorize: Decision,
    pub installed_from: Option<String>,
    pub auth_type: crate::domain::AuthType,
    pub same_for_all_envs: bool,
    pub username_label: String,
    pub password_label: String,
    /// A payment gateway: listed under "Payment gateways" in the panel.
    #[serde(default)]
    pub payment_gateway: bool,
}

/// Connections used by an application (or by one of its components), as the caller may see
/// them, with their status in `environment`.
#[server(prefix = "/api", endpoint = "app_connections")]
pub async fn app_connections(
    app: String,
    component: Option<String>,
    environment: Environment,
) -> Result<Vec<ConnectionEntry>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::for_application(&state, &user, &app, component.as_deref(), environment).await
}

/// What the Microservices page asks for, as its URL's query carries it: a search over name,
/// link name and service (`q`), filters by connection type, status and environment (stored
/// forms, empty for any; the status is the one in `env`, Development when empty), and the
/// link name the page starts after (empty: the first page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConnectionQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default, rename = "type")]
    pub conn_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub after: String,
}

/// One page (at most [`PAGE_SIZE`]) of the workspace's connections, ordered by link name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionPage {
    pub entries: Vec<ConnectionEntry>,
    /// The environment the statuses are for.
    pub environment: Environment,
    /// Where the next page starts, when there is one.
    pub next_after: Option<String>,
    /// Connections matching the search and filters, on every page.
    pub matching: i64,
    /// Connections in the workspace, and how many of each type.
    pub total: i64,
    pub by_type: Vec<(ConnectionType, i64)>,
    /// Connections in the workspace whose authorization (in any environment) needs
    /// reauthorization: the page says so above the list.
    #[serde(default)]
    pub attention: i64,
}

/// How many connections a Microservices page shows.
pub const PAGE_SIZE: i64 = 50;

/// One page of the workspace's connections, for the Microservices page (builders only).
#[server(prefix = "/api", endpoint = "connections_page")]
pub async fn connections_page(#[server(default)] query: ConnectionQuery) -> Result<ConnectionPage, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("manage connections").await?;
    ssr::page(&state, &user, &query).await
}

/// Every connection in the workspace in one answer (builders only); the page uses
/// [`connections_page`].
#[server(prefix = "/api", endpoint = "workspace_connections")]
pub async fn workspace_connections() -> Result<Vec<ConnectionEntry>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("manage connections").await?;
    ssr::for_workspace(&state, &user).await
}

/// What "Create" / "Create and Authorize" submits (R5.2, R6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NewConnection {
    pub connector_id: i64,
    pub display_name: String,
    /// Derived from the name when left empty.
    #[serde(default)]
    pub link_name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub same_for_all_envs: bool,
    /// Admin or logged-in-user (system connections are created by the platform).
    pub conn_type: ConnectionType,
}

/// Who authorized a connection for one environment (R9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentAuthorization {
    pub environment: Environment,
    pub account_name: Option<String>,
    pub authorized_by: Option<String>,
    pub authorized_at_ms: Option<i64>,
    pub status: Status,
    /// Why it needs reauthorization.
    #[serde(default)]
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAccess {
    pub application_id: i64,
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionDetails {
    pub id: i64,
    pub display_name: String,
    pub link_name: String,
    pub service_name: String,
    pub connector_id: i64,
    pub auth_type: crate::domain::AuthType,
    pub custom_connector: bool,
    pub username_label: String,
    pub password_label: String,
    pub conn_type: ConnectionType,
    pub scopes: Vec<String>,
    pub same_for_all_envs: bool,
    pub created_by: Option<String>,
    pub environments: Vec<EnvironmentAuthorization>,
    pub access: Vec<AppAccess>,
    pub authorize: Decision,
    pub can_manage: bool,
    /// `false` while disabled; `disabled_by` says who disabled it.
    pub enabled: bool,
    pub disabled_by: Option<String>,
    /// The scopes the connector offers, for the Edit form.
    pub available_scopes: Vec<crate::connectors::ScopeDef>,
    /// A logged-in-user connection whose every user's authorization the caller oversees.
    pub oversees_users: bool,
}

#[server(prefix = "/api", endpoint = "create_connection")]
pub async fn create_connection(input: NewConnection) -> Result<ConnectionDetails, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("create connections").await?;
    let id = ssr::create(&state, &user, input).await?;
    ssr::details(&state, &user, id).await
}

#[server(prefix = "/api", endpoint = "get_connection")]
pub async fn get_connection(link_name: String) -> Result<ConnectionDetails, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    let id = ssr::find_by_link(&state, &user, &link_name).await?;
    ssr::details(&state, &user, id).await
}

#[server(prefix = "/api", endpoint = "set_connection_access")]
pub async fn set_connection_access(
    connection_id: ConnectionId,
    application_id: ApplicationId,
    enabled: bool,
) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("change connection access").await?;
    ssr::set_access(&state, &user, connection_id, application_id, enabled).await
}

/// What "Save" on a connection's Edit form submits: the display name and the scopes (the link
/// name never changes, since scripts use it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConnectionEdit {
    pub display_name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Something that uses a connection, which must be removed before the connection can be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedBy {
    pub kind: UseKind,
    pub name: String,
    pub application: String,
    /// Where to change it.
    pub href: String,
}

/// What uses a connection: a component of some kind, or a datasource (its syncs read over the
/// connection). Sent as its label ("Form", "Datasource"), as it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum UseKind {
    Component(crate::domain::ComponentKind),
    Datasource,
}

impl UseKind {
    pub fn label(self) -> &'static str {
        match self {
            UseKind::Component(kind) => kind.label(),
            UseKind::Datasource => "Datasource",
        }
    }
}

impl std::fmt::Display for UseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl From<UseKind> for String {
    fn from(kind: UseKind) -> String {
        kind.label().to_string()
    }
}

impl TryFrom<String> for UseKind {
    type Error = String;

    fn try_from(label: String) -> Result<Self, String> {
        if label == UseKind::Datasource.label() {
            return Ok(UseKind::Datasource);
        }
        crate::domain::ComponentKind::ALL
            .into_iter()
            .find(|k| k.label() == label)
            .map(UseKind::Component)
            .ok_or_else(|| format!("'{label}' is not something that uses a connection"))
    }
}

/// One user's authorization of a logged-in-user connection in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAuthorization {
    pub user_id: i64,
    pub user_name: String,
    pub environment: Environment,
    pub account_name: Option<String>,
    pub authorized_at_ms: i64,
    pub status: Status,
    #[serde(default)]
    pub status_reason: Option<String>,
}

/// Renames a connection and changes its scopes (builders). Adding a scope marks the existing
/// authorizations "Needs reauthorization: new permissions requested"; a removed scope is left
/// out from the next authorization on.
#[server(prefix = "/api", endpoint = "edit_connection")]
pub async fn edit_connection(connection_id: ConnectionId, edit: ConnectionEdit) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("edit connections").await?;
    ssr::edit(&state, &user, connection_id, edit).await
}

/// Disables (nothing may use it; its authorizations are kept) or enables a connection (builders).
#[server(prefix = "/api", endpoint = "set_connection_enabled")]
pub async fn set_connection_enabled(connection_id: ConnectionId, enabled: bool) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("disable or enable connections").await?;
    ssr::set_enabled(&state, &user, connection_id, enabled).await
}

/// What uses a connection: components (forms, workflows, schedules, …) and datasources.
#[server(prefix = "/api", endpoint = "connection_usage")]
pub async fn connection_usage(connection_id: ConnectionId) -> Result<Vec<UsedBy>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("see where connections are used").await?;
    ssr::usage(&state, &user, connection_id).await
}

/// Deletes a connection nothing uses (builders): every authorization is revoked at the
/// provider (through the durable revocation queue) and the local credentials removed.
#[server(prefix = "/api", endpoint = "delete_connection")]
pub async fn delete_connection(connection_id: ConnectionId) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("delete connections").await?;
    ssr::delete(&state, &user, connection_id).await
}

/// Each user's authorization of a logged-in-user connection: admins and super admins see
/// everyone's, everyone else only their own.
#[server(prefix = "/api", endpoint = "users_authorizations")]
pub async fn users_authorizations(connection_id: ConnectionId) -> Result<Vec<UserAuthorization>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::users_authorizations(&state, &user, connection_id).await
}

/// Revokes one user's authorization of a logged-in-user connection (admins: anyone's; others:
/// their own).
#[server(prefix = "/api", endpoint = "revoke_user_authorization")]
pub async fn revoke_user_authorization(
    connection_id: ConnectionId,
    user_id: i64,
    #[server(default)] environment: Option<Environment>,
) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    crate::revocations::ssr::revoke_user(&state, &user, connection_id.0, user_id, environment).await
}

/// The two columns a policy [`Context`](crate::policy::Context) is computed from, for the
/// connection aliased `c` (R3.5: used in a datasource or schedule; the admin's primary account).
#[cfg(feature = "ssr")]
macro_rules! usage_columns {
    () => {
        concat!(
            "(SELECT COUNT(*) FROM datasources d WHERE d.connection_id = c.id)
               + (SELECT COUNT(*) FROM component_connections cc JOIN components sc ON sc.id = cc.component_id
                  WHERE cc.connection_id = c.id AND sc.kind = 'schedule') AS used_in_datasource_or_schedule,
             (SELECT COUNT(*) FROM connection_authorizations p
               WHERE p.connection_id = c.id AND p.subject_user_id = ",
            shared_subject!(),
            ") AS primary_accounts"
        )
    };
}

#[cfg(feature = "ssr")]
mod lifecycle;
#[cfg(feature = "ssr")]
mod list;
#[cfg(feature = "ssr")]
mod listing;
#[cfg(feature = "ssr")]
mod store;

/// The server side: the panel (`list.rs`) and the Microservices list (`listing.rs`), one connection's row,
/// creation, details and application access (`store.rs`), and its later life: edit, disable,
/// delete, users' authorizations (`lifecycle.rs`).
#[cfg(feature = "ssr")]
pub mod ssr {
    pub use super::lifecycle::*;
    pub use super::list::*;
    pub use super::listing::*;
    pub use super::store::*;
}

#[cfg(test)]
mod tests {
    use super::UseKind;
    use crate::domain::ComponentKind;

    #[test]
    fn what_uses_a_connection_is_sent_as_its_label_and_read_back() {
        for kind in ComponentKind::ALL.into_iter().map(UseKind::Component).chain([UseKind::Datasource]) {
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.label()));
            assert_eq!(serde_json::from_str::<UseKind>(&json).expect("deserialize"), kind);
        }
        assert!(serde_json::from_str::<UseKind>("\"Spreadsheet\"").is_err());
    }
}
