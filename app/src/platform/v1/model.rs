//! What `/v1` answers and accepts, and the plain functions behind each route (tests call
//! them directly). Closed sets are sent in their stored forms; credentials never appear.

use super::super::connect_sessions::{end_user, rfc3339};
use crate::auth::SessionUser;
use crate::connections::{ConnectionEntry, ConnectionQuery};
use crate::domain::Environment;
use crate::error::{AppError, AppResult};
use crate::invoke::ssr::Purpose;
use crate::invoke::InvokeRequest;
use crate::platform::keys::ApiCaller;
use crate::ssr::AppState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A connection with its health for one environment (and, for user connections, one user).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    pub link_name: String,
    pub display_name: String,
    pub service: String,
    /// `admin`, `user` (each user authorizes their own) or `system`.
    #[serde(rename = "type")]
    pub conn_type: String,
    /// `oauth2`, `api_key` or `basic`.
    pub auth_type: String,
    /// `connected`, `not_connected`, `needs_reauthorization`, `revoked` or `disabled`.
    pub status: String,
    /// Why it needs reauthorization, e.g. "refresh token revoked".
    pub status_reason: Option<String>,
    /// The authorized account's name (never its credentials).
    pub account_name: Option<String>,
    /// Whether the user the list is for may authorize it themselves.
    pub can_authorize: bool,
}

impl From<ConnectionEntry> for Connection {
    fn from(e: ConnectionEntry) -> Self {
        Connection {
            link_name: e.link_name,
            display_name: e.display_name,
            service: e.service_name,
            conn_type: e.conn_type.as_str().into(),
            auth_type: e.auth_type.as_str().into(),
            status: e.status.as_str().into(),
            status_reason: e.status_reason,
            account_name: e.account_name,
            can_authorize: e.authorize == crate::policy::Decision::Allowed,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionList {
    pub data: Vec<Connection>,
    /// The environment the statuses are for.
    pub environment: String,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The end user (the host's external id) whose view to answer; the key's creator when absent.
    pub user: Option<String>,
    /// Only connections this application uses (one page, no `after`).
    pub application: Option<String>,
    /// `development`, `stage` or `production` (default: production).
    pub environment: Option<String>,
    /// Search over name, link name and service.
    pub q: Option<String>,
    /// `admin`, `user` or `system`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub conn_type: Option<String>,
    /// A status, e.g. `needs_reauthorization`.
    pub status: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OneQuery {
    /// The end user (external id) whose view to answer; the key's creator when absent.
    pub user: Option<String>,
}

/// A connection with its authorization in each environment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionDetails {
    pub link_name: String,
    pub display_name: String,
    pub service: String,
    #[serde(rename = "type")]
    pub conn_type: String,
    pub auth_type: String,
    pub enabled: bool,
    pub scopes: Vec<String>,
    pub environments: Vec<EnvironmentHealth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentHealth {
    pub environment: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub account_name: Option<String>,
    /// RFC 3339.
    pub authorized_at: Option<String>,
}

/// `POST /v1/connections/{link_name}/invoke`: one call over the connection as an end user,
/// with the same policy and the same guarded client as the application's components.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvokeCall {
    /// The end user (external id) the call is made for.
    pub user: String,
    /// The application the call belongs to (it must have access to the connection).
    pub application: String,
    pub method: String,
    /// A full URL at the connector's own API origin.
    pub url: String,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvokeResult {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: String,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    pub level: String,
    pub kind: String,
    pub actor: Option<String>,
    pub connection: Option<String>,
    pub environment: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperationList {
    pub data: Vec<Operation>,
    /// Pass as `before` for older entries; absent at the end.
    pub next_before: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OperationsQuery {
    /// Entries older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// Whose view a read answers: the end user named by external id, or the key's creator.
pub async fn viewer(state: &AppState, caller: &ApiCaller, user: Option<&str>) -> AppResult<SessionUser> {
    match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(external) => end_user(state, caller.workspace_id, external).await,
        None => crate::auth::ssr::user_by_id(state, caller.created_by)
            .await?
            .filter(|u| u.workspace_id == caller.workspace_id)
            .ok_or(AppError::Unauthenticated),
    }
}

pub async fn list_connections(state: &AppState, caller: &ApiCaller, q: ListQuery) -> AppResult<ConnectionList> {
    let user = viewer(state, caller, q.user.as_deref()).await?;
    let env = q.environment.as_deref().map(Environment::parse).transpose()?.unwrap_or(Environment::Production);
    if let Some(app) = q.application.as_deref().filter(|a| !a.is_empty()) {
        let entries = crate::connections::ssr::for_application(state, &user, app, None, env).await?;
        return Ok(ConnectionList {
            data: entries.into_iter().map(Connection::from).collect(),
            environment: env.as_str().into(),
            next_after: None,
        });
    }
    let query = ConnectionQuery {
        q: q.q.unwrap_or_default(),
        conn_type: q.conn_type.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
        env: env.as_str().into(),
        after: q.after.unwrap_or_default(),
    };
    let page = crate::connections::ssr::page(state, &user, &query).await?;
    Ok(ConnectionList {
        data: page.entries.into_iter().map(Connection::from).collect(),
        environment: page.environment.as_str().into(),
        next_after: page.next_after,
    })
}

pub async fn get_connection(
    state: &AppState,
    caller: &ApiCaller,
    link_name: &str,
    q: OneQuery,
) -> AppResult<ConnectionDetails> {
    let user = viewer(state, caller, q.user.as_deref()).await?;
    let id = crate::connections::ssr::find_by_link(state, &user, link_name).await?;
    let d = crate::connections::ssr::details(state, &user, id).await?;
    Ok(ConnectionDetails {
        link_name: d.link_name,
        display_name: d.display_name,
        service: d.service_name,
        conn_type: d.conn_type.as_str().into(),
        auth_type: d.auth_type.as_str().into(),
        enabled: d.enabled,
        scopes: d.scopes,
        environments: d
            .environments
            .into_iter()
            .map(|e| EnvironmentHealth {
                environment: e.environment.as_str().into(),
                status: e.status.as_str().into(),
                status_reason: e.status_reason,
                account_name: e.account_name,
                authorized_at: e.authorized_at_ms.map(rfc3339),
            })
            .collect(),
    })
}

pub async fn invoke(
    state: &AppState,
    caller: &ApiCaller,
    link_name: &str,
    call: InvokeCall,
) -> AppResult<InvokeResult> {
    let user = end_user(state, caller.workspace_id, call.user.trim()).await?;
    let req = InvokeRequest {
        app: call.application,
        connection: link_name.to_string(),
        method: call.method,
        url: call.url,
        headers: call.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: call.body,
        environment: None,
    };
    let res = crate::invoke::ssr::call(state, &user, Purpose::Component, req).await?;
    Ok(InvokeResult {
        status: res.status,
        headers: res.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
        body: res.body,
        duration_ms: res.duration_ms,
    })
}

pub async fn operations(state: &AppState, caller: &ApiCaller, q: OperationsQuery) -> AppResult<OperationList> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid("limit", "limit must be 1 to 200."));
    }
    let rows = crate::operations::ssr::page(state, caller.workspace_id, q.before, limit).await?;
    let next_before = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id)).flatten();
    Ok(OperationList {
        data: rows
            .into_iter()
            .map(|r| Operation {
                id: r.id,
                at: rfc3339(r.at_ms),
                level: r.level.as_str().to_string(),
                kind: r.kind.as_str().to_string(),
                actor: r.actor,
                connection: r.connection,
                environment: r.environment,
                detail: r.detail,
            })
            .collect(),
        next_before,
    })
}
