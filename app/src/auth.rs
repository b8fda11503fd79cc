//! Signing in and out, and who the caller is. Every server function starts from
//! [`ssr::require_user`]; the client never decides policy.

use crate::domain::Role;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in user as the browser sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    pub workspace_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[server(prefix = "/api", endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    let (state, session) = ssr::context().await?;
    let address = ssr::client_address(&state);
    let user = ssr::login(&state, &session, &email, &password, &address).await.map_err(ssr::LoginError::answer)?;
    let target = next.filter(|n| is_local_path(n)).unwrap_or_else(|| "/".to_string());
    tracing::info!(user_id = user.id, "signed in");
    leptos_axum::redirect(&target);
    Ok(())
}

#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let (_, session) = ssr::context().await?;
    session.flush().await?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/api", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<SessionUser>, AppError> {
    let (state, session) = ssr::context().await?;
    ssr::session_user(&state, &session).await
}

/// Only same-site paths may be used as a post-login destination (no open redirects).
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && p.len() <= 512 && p.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::SessionUser;
    use crate::domain::{Email, Role};
    use crate::error::{AppError, AppResult};
    use crate::operations::ssr::{Level, Operation, OperationKind};
    use crate::ssr::ids::now_ms;
    use crate::ssr::sessions::{SEEN_AT, SIGNED_IN_AT, USER_ID};
    use crate::ssr::throttle::{self, human_wait, retry_after_secs, Scope};
    use crate::ssr::AppState;
    use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    use argon2::Argon2;
    use leptos::prelude::*;
    use tower_sessions::Session;

    /// The state and the caller's session, taken from the server function's context.
    pub async fn context() -> AppResult<(AppState, Session)> {
        let state = use_context::<AppState>().ok_or_else(|| AppError::internal("context", "AppState missing"))?;
        let session = leptos_axum::extract::<Session>().await.map_err(|e| AppError::internal("session layer", e))?;
        Ok((state, session))
    }

    /// The signed-in user, or `Unauthenticated`.
    pub async fn require_user() -> AppResult<(AppState, SessionUser)> {
        let (state, session) = context().await?;
        let user = session_user(&state, &session).await?.ok_or(AppError::Unauthenticated)?;
        Ok((state, user))
    }

    /// The signed-in user, who must be a super admin, admin or developer. Anyone else is
    /// refused with 403 and the attempt is logged to operations.
    pub async fn require_builder(what: &str) -> AppResult<(AppState, SessionUser)> {
        let (state, user) = require_user().await?;
        ensure_builder(&state, &user, what).await?;
        Ok((state, user))
    }

    pub async fn ensure_builder(state: &AppState, user: &SessionUser, what: &str) -> AppResult<()> {
        if user.role.is_builder() {
            return Ok(());
        }
        tracing::warn!(user_id = user.id, role = user.role.as_str(), what, "forbidden");
        Operation::by(user, Level::Warn, OperationKind::AccessDenied)
            .detail(format!("{} tried to {what}", user.email))
            .record(&state.db)
            .await;
        Err(AppError::forbidden(format!(
            "Only super admins, admins and developers can {what}. Contact your admin if you need this."
        )))
    }

    /// The session's user, while the session is within its absolute lifetime
    /// (`--session-max-hours` from sign-in, however active; a session without a sign-in time
    /// predates the rule and ends too). An expired session is removed and its cookie cleared.
    pub async fn session_user(state: &AppState, session: &Session) -> AppResult<Option<SessionUser>> {
        let Some(id) = session.get::<i64>(USER_ID).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let signed_in = session.get::<i64>(SIGNED_IN_AT).await?.unwrap_or(0);
        if now.saturating_sub(signed_in) > max_session_ms(state) {
            tracing::info!(user_id = id, "session reached its absolute lifetime");
            session.flush().await?;
            return Ok(None);
        }
        // The store only writes a session (and moves its idle expiry) when it changed: touching
        // it now and then lets the idle expiry slide with use without a write per request.
        let seen = session.get::<i64>(SEEN_AT).await?.unwrap_or(signed_in);
        if now.saturating_sub(seen) >= touch_interval_ms(state) {
            session.insert(SEEN_AT, now).await?;
        }
        // Read for every request: kept a second at most (`ssr::cache`), cleared by any write
        // through this server, so a role change or removal is seen at once here and within a
        // second on every other replica.
        if let Some(user) = state.caches.users.get(&id) {
            return Ok(Some((*user).clone()));
        }
        let user = user_by_id(state, id).await?;
        if let Some(user) = &user {
            state.caches.users.insert(id, user.clone());
        }
        Ok(user)
    }

    fn max_session_ms(state: &AppState) -> i64 {
        (state.settings.session_max_hours * 3_600_000.0) as i64
    }

    /// A tenth of the idle time, between one second and one minute: the idle expiry is exact to
    /// within that, and a busy session is written at most once per interval.
    fn touch_interval_ms(state: &AppState) -> i64 {
        (state.settings.session_idle_minutes.saturating_mul(6_000)).clamp(1_000, 60_000)
    }

    pub async fn user_by_id(state: &AppState, id: i64) -> AppResult<Option<SessionUser>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            workspace_id: i64,
            email: String,
            name: String,
            role: String,
        }
        let row: Option<Row> =
            sqlx::query_as("SELECT id, workspace_id, email, display_name AS name, role FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&state.db.pool)
                .await?;
        row.map(|Row { id, workspace_id, email, name, role }| {
            Ok(SessionUser { id, workspace_id, email, name, role: Role::parse(&role)? })
        })
        .transpose()
    }

    const WRONG: &str = "Wrong email or password.";

    /// Why a sign-in did not happen.
    #[derive(Debug)]
    pub enum LoginError {
        /// Refused before any password was checked (back-off, or too many checks at once):
        /// answered 429 with `Retry-After`.
        Throttled {
            retry_after_secs: u64,
            message: String,
        },
        Failed(AppError),
    }

    impl From<AppError> for LoginError {
        fn from(e: AppError) -> Self {
            LoginError::Failed(e)
        }
    }

    impl From<sqlx::Error> for LoginError {
        #[track_caller]
        fn from(e: sqlx::Error) -> Self {
            LoginError::Failed(e.into())
        }
    }

    impl From<tower_sessions::session::Error> for LoginError {
        #[track_caller]
        fn from(e: tower_sessions::session::Error) -> Self {
            LoginError::Failed(e.into())
        }
    }

    impl LoginError {
        /// The error the server function answers with; a refusal also sets `Retry-After`.
        pub fn answer(self) -> AppError {
            match self {
                LoginError::Failed(e) => e,
                LoginError::Throttled { retry_after_secs, message } => {
                    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                        res.insert_header(
                            axum::http::header::RETRY_AFTER,
                            axum::http::HeaderValue::from(retry_after_secs),
                        );
                    }
                    AppError::TooManyRequests(message)
                }
            }
        }
    }

    /// The caller's address for sign-in throttling (see [`throttle::client_address`]).
    pub fn client_address(state: &AppState) -> String {
        use axum::extract::ConnectInfo;
        use std::net::SocketAddr;
        let parts = use_context::<axum::http::request::Parts>();
        let peer = parts.as_ref().and_then(|p| p.extensions.get::<ConnectInfo<SocketAddr>>()).map(|c| c.0);
        let headers = parts.map(|p| p.headers).unwrap_or_default();
        throttle::client_address(&state.settings, peer, &headers)
    }

    /// Checks the password and starts a new session (a new session id on every sign-in).
    /// A locked account or address is refused before any hashing; so is a sign-in that finds
    /// every password-check permit of this process taken.
    pub async fn login(
        state: &AppState,
        session: &Session,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<SessionUser, LoginError> {
        if password.is_empty() {
            return Err(AppError::invalid("password", "Enter your password.").into());
        }
        if password.len() > 1024 {
            return Err(AppError::invalid("password", WRONG).into());
        }
        let email = Email::parse(email)?;
        if let Some(millis) = throttle::locked_for(&state.db, email.as_str(), address).await? {
            let secs = retry_after_secs(millis);
            tracing::info!(email = email.as_str(), address, retry_after = secs, "sign-in refused: backing off");
            return Err(LoginError::Throttled {
                retry_after_secs: secs,
                message: format!("Too many failed sign-ins. Try again in {}.", human_wait(secs)),
            });
        }
        let Ok(permit) = state.login_hashing.clone().try_acquire_owned() else {
            tracing::warn!(address, "sign-in refused: every password-check permit is taken");
            return Err(LoginError::Throttled {
                retry_after_secs: 1,
                message: "Too many sign-ins at once. Try again in a second.".into(),
            });
        };
        let row: Option<(i64, i64, String)> =
            sqlx::query_as("SELECT id, workspace_id, password_hash FROM users WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&state.db.pool)
                .await?;
        // Verify against a dummy hash for unknown users so both answers take the same time.
        let (known, hash) = row.map_or((None, None), |(id, ws, h)| (Some((id, ws)), Some(h)));
        let ok = verify_password(password, hash, permit).await && known.is_some();
        let Some((id, _)) = known.filter(|_| ok) else {
            failed_sign_in(state, &email, address, known).await?;
            return Err(AppError::invalid("password", WRONG).into());
        };
        throttle::record_success(&state.db, email.as_str()).await?;
        start_session(session, id, now_ms()).await?;
        let user = user_by_id(state, id).await?.ok_or_else(|| AppError::internal("login", "user vanished"))?;
        Operation::new(Level::Info, OperationKind::SignedIn)
            .workspace(user.workspace_id)
            .actor(id)
            .record(&state.db)
            .await;
        Ok(user)
    }

    /// Signs `user_id` in on `session` at `now`: a new session id (no fixation), and the times
    /// [`session_user`] measures the absolute and idle lifetimes from. Password sign-in and the
    /// connect-session exchange both start sessions this way.
    pub async fn start_session(session: &Session, user_id: i64, now: i64) -> AppResult<()> {
        session.cycle_id().await?;
        session.insert(USER_ID, user_id).await?;
        session.insert(SIGNED_IN_AT, now).await?;
        session.insert(SEEN_AT, now).await?;
        Ok(())
    }

    /// Counts a wrong password against the account and the address, and writes it (and any
    /// lock it sets) to the operations log. `user` is the account's (id, workspace) if it exists.
    async fn failed_sign_in(state: &AppState, email: &Email, address: &str, user: Option<(i64, i64)>) -> AppResult<()> {
        tracing::info!(email = email.as_str(), address, "failed sign-in");
        let (actor, workspace) = (user.map(|u| u.0), user.map(|u| u.1));
        let entry = |kind, detail| Operation::new(Level::Warn, kind).workspace(workspace).actor(actor).detail(detail);
        let detail = format!("Wrong email or password for {} from {address}.", email.as_str());
        entry(OperationKind::SignInFailed, detail).record(&state.db).await;
        for (scope, subject) in [(Scope::Account, email.as_str()), (Scope::Address, address)] {
            let Some(lock) = throttle::record_failure(&state.db, &state.settings, scope, subject).await? else {
                continue;
            };
            let wait = human_wait(retry_after_secs(lock.millis));
            let what = match scope {
                Scope::Account => format!("Sign-ins to {}", email.as_str()),
                Scope::Address => format!("Sign-ins from {address}"),
            };
            tracing::warn!(subject, failures = lock.failures, millis = lock.millis, "sign-ins locked");
            let detail = format!("{what} paused for {wait} after {} failed attempts in a row.", lock.failures);
            entry(OperationKind::SignInLocked, detail).record(&state.db).await;
        }
        Ok(())
    }

    /// Argon2id hash (PHC string) of a password, computed off the async executor.
    pub async fn hash_password(password: &str) -> AppResult<String> {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await
        .map_err(|e| AppError::internal("hash task", e))?
        .map_err(|e| AppError::internal("hash password", e))
    }

    /// Verifies off the executor; with no hash (unknown user) it verifies against a dummy hash so
    /// both answers take the same time.
    /// The permit is held until the check ends, even if the caller has gone away meanwhile.
    async fn verify_password(password: &str, hash: Option<String>, permit: tokio::sync::OwnedSemaphorePermit) -> bool {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
            PasswordHash::new(&hash)
                .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }

    /// A valid Argon2id hash of a random password nobody knows.
    fn dummy_hash() -> &'static str {
        static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        HASH.get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            let secret = crate::ssr::ids::random_token(32);
            Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
        })
    }
}
