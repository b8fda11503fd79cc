//! The call itself: who may make it, what the database says about the connection (reused for a
//! second, [`Plan`]), the checks on every request, the authorization prompt, and its entry in
//! Operations. The request on the wire is `super::send`.

pub use super::send::verify_credentials;
use super::send::{origin, send};
use super::{InvokeRequest, InvokeResponse};
use crate::auth::SessionUser;
use crate::authorizations::ssr::{refresh_account, unusable_status, usable_credentials, Credentials};
use crate::connections::Status;
use crate::connectors::{ensure_usable, Usage};
use crate::domain::ConnectionType;
use crate::domain::Environment;
use crate::error::AppError;
use crate::error::AppResult;
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::policy::{decide, Action, Context, Decision};
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use std::time::Instant;

const MAX_REQUEST_BODY: usize = 256 * 1024;

/// Why a call over a connection is made; decides which policy action it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Method, URL, headers and body chosen by the caller (the raw `invoke_url`).
    Raw,
    /// A step of a component a builder wrote, run for the caller (`run_component`).
    Component,
    /// A page of a datasource's module, read by the sync the builder started: a raw call, whose
    /// Operations entry is the sync run's own (records and API calls, or why it failed), not
    /// one per page.
    SyncPage,
}

impl Purpose {
    fn action(self) -> Action {
        match self {
            Purpose::Raw | Purpose::SyncPage => Action::InvokeRaw,
            Purpose::Component => Action::UseInComponent,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Purpose::Raw => "make a raw call",
            Purpose::Component => "use a connection through a component",
            Purpose::SyncPage => "sync a datasource",
        }
    }
}

/// The raw call (the `invoke_url` server function, scripts' Test): refused with 403 before
/// anything is loaded or sent unless the caller's role may make raw calls over some connection
/// type; the exact type is checked in [`call`].
pub async fn invoke(state: &AppState, user: &SessionUser, req: InvokeRequest) -> AppResult<InvokeResponse> {
    raw(state, user, Purpose::Raw, req).await
}

/// A page read by a sync on behalf of the builder who started it: checked as a raw call
/// ([`invoke`]), logged by the sync run ([`Purpose::SyncPage`]).
pub async fn sync_page(state: &AppState, user: &SessionUser, req: InvokeRequest) -> AppResult<InvokeResponse> {
    raw(state, user, Purpose::SyncPage, req).await
}

async fn raw(state: &AppState, user: &SessionUser, purpose: Purpose, req: InvokeRequest) -> AppResult<InvokeResponse> {
    let anywhere = ConnectionType::ALL
        .into_iter()
        .any(|kind| decide(user.role, kind, Action::InvokeRaw, Context::default()).is_allowed());
    if !anywhere {
        return Err(refuse(state, user, None, purpose, &req).await);
    }
    call(state, user, purpose, req).await
}

/// Writes a refused call to Operations (who, which connection, the method and the URL
/// without its query string; never a credential) and returns the 403 the caller sees.
pub async fn refuse(
    state: &AppState,
    user: &SessionUser,
    connection_id: Option<i64>,
    purpose: Purpose,
    req: &InvokeRequest,
) -> AppError {
    let target = url::Url::parse(req.url.trim())
        .map(|u| crate::ssr::outbound::shown(&u))
        .unwrap_or_else(|_| "an invalid URL".into());
    let method: String = req.method.chars().filter(char::is_ascii_alphabetic).take(10).collect();
    tracing::warn!(user_id = user.id, role = user.role.as_str(), ?purpose, connection = %req.connection, "call refused");
    Operation::by(user, Level::Warn, OperationKind::AccessDenied)
        .on(connection_id)
        .detail(format!(
            "{} tried to {} over {} ({} {target})",
            user.email,
            purpose.describe(),
            req.connection.chars().take(100).collect::<String>(),
            method.to_uppercase()
        ))
        .record(&state.db)
        .await;
    match purpose {
        Purpose::Raw | Purpose::SyncPage => AppError::forbidden(
            "Only super admins, admins and developers can call a service directly. \
             Use the application's forms and pages to work with this connection.",
        ),
        Purpose::Component => AppError::forbidden("You cannot use this connection. Contact your admin."),
    }
}

/// What a call over a connection needs from the database and rarely changes, kept in
/// [`crate::ssr::cache::Caches::plans`] for a second: the connection and its connector once
/// the application's access is checked, and the credentials the caller would use.
pub struct Plan {
    conn: crate::connections::ssr::Connection,
    connector: crate::connectors::ssr::Connector,
    account_id: i64,
    creds: Credentials,
}

/// A plan is per caller (user and role), application, connection and environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    workspace_id: i64,
    user_id: i64,
    role: crate::domain::Role,
    app: String,
    connection: String,
    env: Environment,
}

/// Credentials are cached only while they stay usable well past the cache's lifetime.
const CREDENTIALS_MARGIN_MS: i64 = 60_000;

/// One call over a connection for `purpose`, which the caller has established: checks the
/// policy for the connection's type, the application's access, the destination, and
/// attaches the credentials of the environment the caller's role may use. The policy and
/// the request are checked on every call; what the database said about the connection is
/// reused for up to a second ([`Plan`]).
#[tracing::instrument(skip_all, fields(connection = %req.connection, user_id = user.id, ?purpose))]
pub async fn call(
    state: &AppState,
    user: &SessionUser,
    purpose: Purpose,
    req: InvokeRequest,
) -> AppResult<InvokeResponse> {
    let env = crate::policy::environment(user.role, req.environment);
    let key = PlanKey {
        workspace_id: user.workspace_id,
        user_id: user.id,
        role: user.role,
        app: req.app.clone(),
        connection: req.connection.clone(),
        env,
    };
    if let Some(plan) = state.caches.plans.get(&key) {
        if !decide(user.role, plan.conn.conn_type, purpose.action(), plan.conn.policy_context()).is_allowed() {
            return Err(refuse(state, user, Some(plan.conn.id), purpose, &req).await);
        }
        ensure_usable(plan.connector.kind, Usage::InvokeUrl)?;
        plan.conn.ensure_enabled()?;
        let (method, url) = checked_request(&plan.connector, &req)?;
        if !plan.creds.expiring(now_ms() + CREDENTIALS_MARGIN_MS) {
            return perform(
                state,
                user,
                purpose,
                &plan.conn,
                &plan.connector,
                (plan.account_id, plan.creds.clone(), false),
                env,
                method,
                url,
                &req,
            )
            .await;
        }
    }
    let app = crate::applications::ssr::find(state, user, &req.app).await?;
    let conn_id = crate::connections::ssr::find_by_link(state, user, &req.connection).await?;
    let conn = crate::connections::ssr::load(state, user.workspace_id, conn_id).await?;
    if !decide(user.role, conn.conn_type, purpose.action(), conn.policy_context()).is_allowed() {
        return Err(refuse(state, user, Some(conn.id), purpose, &req).await);
    }
    crate::connections::ssr::ensure_app_access(
        state,
        crate::domain::ConnectionId(conn.id),
        crate::domain::ApplicationId(app.id),
    )
    .await?;
    let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
    ensure_usable(connector.kind, Usage::InvokeUrl)?;
    conn.ensure_enabled()?;
    let (method, url) = checked_request(&connector, &req)?;
    let Some((account_id, creds, refresh_first)) = usable_credentials(state, &conn, user, env).await? else {
        return Err(authorization_required(state, user, &conn, env).await?);
    };
    if !refresh_first && !creds.expiring(now_ms() + CREDENTIALS_MARGIN_MS) {
        let plan = Plan { conn: conn.clone(), connector: connector.clone(), account_id, creds: creds.clone() };
        state.caches.plans.insert(key, plan);
    }
    perform(state, user, purpose, &conn, &connector, (account_id, creds, refresh_first), env, method, url, &req).await
}

/// The method and URL of `req`, if they may be sent with `connector`'s credentials: a
/// usual method, a body within the limit, a URL on the connector's own origin, and none of
/// the headers the connection sets.
fn checked_request(
    connector: &crate::connectors::ssr::Connector,
    req: &InvokeRequest,
) -> AppResult<(reqwest::Method, url::Url)> {
    let method = reqwest::Method::from_bytes(req.method.to_uppercase().as_bytes())
        .ok()
        .filter(|m| ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.as_str()))
        .ok_or_else(|| AppError::invalid("method", "Use GET, POST, PUT, PATCH, DELETE or HEAD."))?;
    if req.body.as_ref().is_some_and(|b| b.len() > MAX_REQUEST_BODY) {
        return Err(AppError::invalid("body", format!("The body is larger than {} KiB.", MAX_REQUEST_BODY / 1024)));
    }
    let url = url::Url::parse(req.url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| AppError::invalid("url", "Enter a full http(s) URL."))?;
    let base = connector
        .config
        .api_base
        .as_deref()
        .and_then(|b| url::Url::parse(b).ok())
        .ok_or_else(|| AppError::Upstream("This connector has no API address configured.".into()))?;
    if origin(&url) != origin(&base) {
        return Err(AppError::invalid(
            "url",
            format!("This connection's credentials are only sent to {}. Use a URL there.", origin(&base)),
        ));
    }
    for (name, _) in &req.headers {
        if name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("cookie")
        {
            return Err(AppError::invalid("headers", format!("The {name} header is set by the connection.")));
        }
    }
    Ok((method, url))
}

/// The 428 for a connection without usable credentials for the caller: prompt to
/// authorize, or whom to contact.
async fn authorization_required(
    state: &AppState,
    user: &SessionUser,
    conn: &crate::connections::ssr::Connection,
    env: Environment,
) -> AppResult<AppError> {
    let decision = decide(user.role, conn.conn_type, Action::UseUnauthorized, conn.policy_context());
    let (prompt, message) = match decision {
        Decision::ContactAdmin(who) => (false, who.message(&conn.display_name)),
        _ => (
            true,
            match unusable_status(state, conn, user, env).await? {
                Some(Status::Revoked) => {
                    format!("{}'s authorization was revoked. Authorize it again to continue.", conn.display_name)
                }
                Some(Status::NeedsReauthorization) => {
                    format!("{}'s authorization stopped working. Authorize it again to continue.", conn.display_name)
                }
                _ if conn.conn_type == ConnectionType::LoggedInUser => {
                    format!("Authorize {} with your account to continue.", conn.display_name)
                }
                _ => format!("{} is not authorized yet. Authorize it to continue.", conn.display_name),
            },
        ),
    };
    Ok(AppError::AuthorizationRequired { connection: conn.link_name.clone(), prompt, message })
}

/// Sends the checked request with the credentials (refreshed first when due, and once
/// more after a 401 for OAuth2), and queues its Operations entry (a sync's pages have theirs in
/// the run's).
#[allow(clippy::too_many_arguments)]
async fn perform(
    state: &AppState,
    user: &SessionUser,
    purpose: Purpose,
    conn: &crate::connections::ssr::Connection,
    connector: &crate::connectors::ssr::Connector,
    (account_id, mut creds, refresh_first): (i64, Credentials, bool),
    env: Environment,
    method: reqwest::Method,
    url: url::Url,
    req: &InvokeRequest,
) -> AppResult<InvokeResponse> {
    if refresh_first || creds.expiring(now_ms()) {
        let used = creds.access_token().unwrap_or_default().to_owned();
        creds = refresh_account(state, connector, account_id, &used).await.map_err(|e| for_connection(e, conn))?;
    }
    let start = Instant::now();
    let mut response = send(state, connector, &creds, &method, &url, req).await?;
    if response.status == 401 && matches!(creds, Credentials::OAuth2 { .. }) {
        let used = creds.access_token().unwrap_or_default().to_owned();
        creds = refresh_account(state, connector, account_id, &used).await.map_err(|e| for_connection(e, conn))?;
        response = send(state, connector, &creds, &method, &url, req).await?;
    }
    response.duration_ms = start.elapsed().as_millis() as i64;
    if purpose == Purpose::SyncPage {
        return Ok(response);
    }
    let level = if response.status >= 400 { Level::Warn } else { Level::Info };
    Operation::by(user, level, OperationKind::InvokeUrl)
        .on(conn.id)
        .env(env)
        .detail(format!(
            "{method} {} → {} in {} ms",
            crate::ssr::outbound::shown(&url),
            response.status,
            response.duration_ms
        ))
        .queue(state)
        .await;
    Ok(response)
}

fn for_connection(e: AppError, conn: &crate::connections::ssr::Connection) -> AppError {
    match e {
        AppError::AuthorizationRequired { prompt, message, .. } => {
            AppError::AuthorizationRequired { connection: conn.link_name.clone(), prompt, message }
        }
        other => other,
    }
}
