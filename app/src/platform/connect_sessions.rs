//! Connect sessions: a host's backend asks (with an API key) for a short-lived, single-use
//! token for one of its end users; the embedded panel exchanges it once, at
//! `/embed/<app>/session?token=…`, for a session of that end user, who is created or updated
//! by the host's external id within the workspace. Everything the panel then does runs as
//! that user under the unchanged policy. Only the token's SHA-256 is stored.

use super::keys::{digest, ApiCaller};
use crate::auth::SessionUser;
use crate::authorizations::ssr::escape_html;
use crate::domain::{Email, Role};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, OperationKind};
use crate::ssr::ids::{now_ms, random_token};
use crate::ssr::AppState;
use serde::{Deserialize, Serialize};

/// Lifetimes a host may ask for, in seconds.
pub const DEFAULT_LIFETIME_SECS: i64 = 600;
pub const MAX_LIFETIME_SECS: i64 = 1800;
const MIN_LIFETIME_SECS: i64 = 30;
/// The password hash of end users: not a PHC string, so no password ever verifies.
const NO_PASSWORD: &str = "!";

/// The end user a connect session is for, as the host knows them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndUser {
    /// The host's own id for the user (1 to 200 characters), unique within the workspace.
    pub id: String,
    pub display_name: String,
    /// Optional; must not belong to another user of this platform.
    #[serde(default)]
    pub email: Option<String>,
    /// `user` (default), `developer` or `admin`: the same policy applies as to people who
    /// sign in here.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "user")]
    pub role: Option<String>,
}

/// `POST /v1/connect-sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewConnectSession {
    pub end_user: EndUser,
    /// The application's link name whose panel the session opens.
    pub application: String,
    /// Seconds until the token expires: 600 by default, 30 to 1800.
    #[serde(default)]
    pub lifetime_seconds: Option<i64>,
    /// The components (link names) of the application the end user may open, and so whose
    /// connections their panel lists; every component of the application when absent. Users
    /// with the user role see only these (builders see every component anyway).
    #[serde(default)]
    pub components: Option<Vec<String>>,
}

/// A connect session just created: hand `token` to the embed snippet (`data-session-token`).
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectSession {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Opens the panel signed in as the end user (single use).
    pub embed_url: String,
    /// This platform's id of the end user.
    pub user_id: i64,
}

impl std::fmt::Debug for ConnectSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSession").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// The id of the workspace's end user with this external id, if there is one.
async fn end_user_id<'e, E>(db: E, workspace_id: i64, external: &str) -> AppResult<Option<i64>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE workspace_id = $1 AND external_id = $2")
        .bind(workspace_id)
        .bind(external)
        .fetch_optional(db)
        .await?)
}

/// The stand-in address of an end user the host gave none: unique, and never deliverable.
fn placeholder_email(workspace_id: i64, external_id: &str) -> String {
    format!("ext-{}@w{workspace_id}.end-users.invalid", &digest(external_id)[..20])
}

pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Creates or updates the end user by external id (their name, email and role follow what the
/// host says each time). Never touches a user who signed up here: an email of theirs is refused.
pub async fn upsert_end_user(db: &mut sqlx::AnyConnection, workspace_id: i64, user: &EndUser) -> AppResult<i64> {
    let ext = super::plain_text(&user.id, 200, "end_user.id", "The end user's id must be 1 to 200 characters.")?;
    let name = super::plain_text(
        &user.display_name,
        100,
        "end_user.display_name",
        "The end user's name must be 1 to 100 characters.",
    )?;
    let role = Role::parse(user.role.as_deref().unwrap_or("user"))
        .ok()
        .filter(|r| crate::policy::host_may_grant(*r))
        .ok_or_else(|| {
        AppError::invalid("end_user.role", "The end user's role must be user, developer or admin.")
    })?;
    let email = match user.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => Email::parse(e)
            .map_err(|_| AppError::invalid("end_user.email", "Not an email address."))?
            .as_str()
            .to_string(),
        None => placeholder_email(workspace_id, &ext),
    };
    let taken = || AppError::Conflict("This email belongs to another user of this platform; leave it out.".into());
    let existing = end_user_id(&mut *db, workspace_id, &ext).await?;
    let res =
        match existing {
            Some(id) => sqlx::query("UPDATE users SET display_name = $1, email = $2, role = $3 WHERE id = $4")
                .bind(&name)
                .bind(&email)
                .bind(role.as_str())
                .bind(id)
                .execute(&mut *db)
                .await
                .map(|_| id),
            None => sqlx::query_scalar(
                "INSERT INTO users (workspace_id, email, display_name, role, password_hash, created_at, external_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(workspace_id)
            .bind(&email)
            .bind(&name)
            .bind(role.as_str())
            .bind(NO_PASSWORD)
            .bind(now_ms())
            .bind(&ext)
            .fetch_one(&mut *db)
            .await,
        };
    match res {
        Ok(id) => Ok(id),
        Err(e) if crate::ssr::db::is_unique_violation(&e) => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

/// The end user a host names by external id, as a session user (the policy then applies).
pub async fn end_user(state: &AppState, workspace_id: i64, external: &str) -> AppResult<SessionUser> {
    let id = end_user_id(&state.db.pool, workspace_id, external).await?;
    let missing = || AppError::not_found(format!("No end user '{external}': create a connect session for them first."));
    let id = id.ok_or_else(missing)?;
    crate::auth::ssr::user_by_id(state, id).await?.ok_or_else(missing)
}

#[tracing::instrument(skip_all, fields(key_id = caller.key_id))]
pub async fn create(state: &AppState, caller: &ApiCaller, req: &NewConnectSession) -> AppResult<ConnectSession> {
    let lifetime = req.lifetime_seconds.unwrap_or(DEFAULT_LIFETIME_SECS);
    if !(MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&lifetime) {
        return Err(AppError::invalid(
            "lifetime_seconds",
            format!("A connect session lasts {MIN_LIFETIME_SECS} to {MAX_LIFETIME_SECS} seconds."),
        ));
    }
    let app: Option<(i64, String)> =
        sqlx::query_as("SELECT id, link_name FROM applications WHERE workspace_id = $1 AND link_name = $2")
            .bind(caller.workspace_id)
            .bind(req.application.trim())
            .fetch_optional(&state.db.pool)
            .await?;
    let (app_id, app_link) =
        app.ok_or_else(|| AppError::invalid("application", format!("No application '{}'.", req.application.trim())))?;
    let components = components_of(state, app_id, req.components.as_deref()).await?;
    // The end user, their components and the session: one transaction.
    let mut tx = state.db.pool.begin().await?;
    let user_id = upsert_end_user(&mut tx, caller.workspace_id, &req.end_user).await?;
    grant_components(&mut tx, app_id, user_id, &components).await?;
    let token = format!("cst_{}", random_token(40));
    let now = now_ms();
    let expires = now + lifetime * 1000;
    sqlx::query(
        "INSERT INTO connect_sessions (token_hash, workspace_id, api_key_id, application_id, user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(digest(&token))
    .bind(caller.workspace_id)
    .bind(caller.key_id)
    .bind(app_id)
    .bind(user_id)
    .bind(now)
    .bind(expires)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    caller
        .operation(Level::Info, OperationKind::ConnectSessionCreated)
        .actor(user_id)
        .detail(format!("{} for end user '{}' in {app_link}, {lifetime} s", caller.label(), req.end_user.id.trim()))
        .record(&state.db)
        .await;
    let embed_url = format!("{}/embed/{app_link}/session?token={token}", state.settings.public_url());
    Ok(ConnectSession { token, expires_at: rfc3339(expires), embed_url, user_id })
}

/// The ids of the named components of the application (all of them when `None`); an unknown
/// name is refused.
async fn components_of(state: &AppState, app_id: i64, names: Option<&[String]>) -> AppResult<Vec<i64>> {
    let all: Vec<(i64, String)> = sqlx::query_as("SELECT id, link_name FROM components WHERE application_id = $1")
        .bind(app_id)
        .fetch_all(&state.db.pool)
        .await?;
    let Some(names) = names else { return Ok(all.into_iter().map(|(id, _)| id).collect()) };
    names
        .iter()
        .map(|n| {
            all.iter().find(|(_, link)| link == n.trim()).map(|(id, _)| *id).ok_or_else(|| {
                AppError::invalid("components", format!("The application has no component '{}'.", n.trim()))
            })
        })
        .collect()
}

/// Makes the end user's permissions within the application exactly `components`.
async fn grant_components(
    db: &mut sqlx::AnyConnection,
    app_id: i64,
    user_id: i64,
    components: &[i64],
) -> AppResult<()> {
    sqlx::query(
        "DELETE FROM component_permissions WHERE user_id = $1
           AND component_id IN (SELECT id FROM components WHERE application_id = $2)",
    )
    .bind(user_id)
    .bind(app_id)
    .execute(&mut *db)
    .await?;
    for id in components {
        sqlx::query("INSERT INTO component_permissions (component_id, user_id) VALUES ($1, $2)")
            .bind(id)
            .bind(user_id)
            .execute(&mut *db)
            .await?;
    }
    Ok(())
}

/// Why a token could not be exchanged, as the frame says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Unknown,
    Used,
    Expired,
    OtherApplication,
    KeyRevoked,
}

impl Unusable {
    pub fn explain(self) -> &'static str {
        match self {
            Unusable::Unknown => "This link is not valid for this server.",
            Unusable::Used => "This link was already used: each one opens the panel once.",
            Unusable::Expired => "This link has expired.",
            Unusable::OtherApplication => "This link was made for another application.",
            Unusable::KeyRevoked => "The key that made this link has been revoked.",
        }
    }
}

/// Exchanges a token for a session of its end user in `session` (with a new session id), if
/// the token is for `app`, unused, unexpired and its key still valid. The token is spent
/// atomically: two concurrent exchanges cannot both succeed.
pub async fn exchange(
    state: &AppState,
    session: &tower_sessions::Session,
    app: &str,
    token: &str,
) -> AppResult<Result<SessionUser, Unusable>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        workspace_id: i64,
        user_id: i64,
        expires_at: i64,
        used_at: Option<i64>,
        link_name: String,
        revoked_at: Option<i64>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT cs.id, cs.workspace_id, cs.user_id, cs.expires_at, cs.used_at, a.link_name, k.revoked_at
         FROM connect_sessions cs
         JOIN applications a ON a.id = cs.application_id
         JOIN api_keys k ON k.id = cs.api_key_id
         WHERE cs.token_hash = $1",
    )
    .bind(digest(token))
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else { return Ok(Err(Unusable::Unknown)) };
    let now = now_ms();
    let refused = match () {
        _ if row.link_name != app => Some(Unusable::OtherApplication),
        _ if row.revoked_at.is_some() => Some(Unusable::KeyRevoked),
        _ if row.used_at.is_some() => Some(Unusable::Used),
        _ if row.expires_at <= now => Some(Unusable::Expired),
        _ => None,
    };
    let spent = match refused {
        Some(_) => false,
        None => {
            sqlx::query(
                "UPDATE connect_sessions SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(row.id)
            .execute(&state.db.pool)
            .await?
            .rows_affected()
                == 1
        }
    };
    let entry = |level, kind| {
        crate::operations::ssr::Operation::new(level, kind).workspace(row.workspace_id).actor(row.user_id)
    };
    if !spent {
        let why = refused.unwrap_or(Unusable::Used);
        entry(Level::Warn, OperationKind::ConnectSessionRefused).detail(why.explain()).record(&state.db).await;
        return Ok(Err(why));
    }
    let user = crate::auth::ssr::user_by_id(state, row.user_id)
        .await?
        .ok_or_else(|| AppError::internal("connect session", "end user vanished"))?;
    crate::auth::ssr::start_session(session, user.id, now).await?;
    entry(Level::Info, OperationKind::ConnectSessionUsed)
        .detail(format!("panel of {app} opened"))
        .record(&state.db)
        .await;
    Ok(Ok(user))
}

#[derive(Debug, Deserialize)]
pub struct ExchangeQuery {
    #[serde(default)]
    token: String,
    #[serde(default)]
    component: Option<String>,
}

/// `GET /embed/<app>/session?token=…`: exchanges the token and redirects to the panel (so the
/// token leaves the frame's address at once); an unusable token gets a page that says why.
pub async fn exchange_handler(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(app): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<ExchangeQuery>,
    session: tower_sessions::Session,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let no_store = [(header::CACHE_CONTROL, "no-store"), (header::REFERRER_POLICY, "no-referrer")];
    match exchange(&state, &session, &app, q.token.trim()).await {
        Ok(Ok(_)) => {
            let mut target = format!("/embed/{}", urlencode(&app));
            if let Some(c) = q.component.filter(|c| !c.is_empty()) {
                target.push_str(&format!("?component={}", urlencode(&c)));
            }
            (StatusCode::SEE_OTHER, no_store, [(header::LOCATION, target)]).into_response()
        }
        Ok(Err(why)) => {
            let status = if why == Unusable::Unknown { StatusCode::NOT_FOUND } else { StatusCode::GONE };
            (status, no_store, axum::response::Html(unusable_page(why))).into_response()
        }
        Err(e) => {
            // Internal causes were logged when they became an `AppError`.
            (StatusCode::INTERNAL_SERVER_ERROR, no_store, axum::response::Html(error_page(&e.to_string())))
                .into_response()
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn page(body: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Connections</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#1d2433}}h1{{font-size:1.2rem}}</style>
</head><body><main>{body}</main></body></html>"#
    )
}

fn unusable_page(why: Unusable) -> String {
    page(&format!(
        "<h1>This link to the connections panel cannot be used</h1><p>{}</p>\
         <p>Reload the page that shows the panel to get a new one.</p>",
        escape_html(why.explain())
    ))
}

fn error_page(message: &str) -> String {
    page(&format!("<h1>The connections panel could not open</h1><p>{}</p>", escape_html(message)))
}
