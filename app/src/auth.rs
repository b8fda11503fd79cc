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
    let user = ssr::login(&state, &session, &email, &password).await?;
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
    use crate::operations::ssr::{record, Level};
    use crate::ssr::sessions::USER_ID;
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
        record(
            &state.db,
            Some(user.workspace_id),
            Level::Warn,
            "access_denied",
            Some(user.id),
            None,
            None,
            &format!("{} tried to {what}", user.email),
        )
        .await;
        Err(AppError::forbidden(format!(
            "Only super admins, admins and developers can {what}. Contact your admin if you need this."
        )))
    }

    pub async fn session_user(state: &AppState, session: &Session) -> AppResult<Option<SessionUser>> {
        let Some(id) = session.get::<i64>(USER_ID).await? else {
            return Ok(None);
        };
        user_by_id(state, id).await
    }

    pub async fn user_by_id(state: &AppState, id: i64) -> AppResult<Option<SessionUser>> {
        let row: Option<(i64, i64, String, String, String)> =
            sqlx::query_as("SELECT id, workspace_id, email, display_name, role FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&state.db.pool)
                .await?;
        row.map(|(id, workspace_id, email, name, role)| {
            Ok(SessionUser { id, workspace_id, email, name, role: Role::parse(&role)? })
        })
        .transpose()
    }

    const WRONG: &str = "Wrong email or password.";

    /// Checks the password and starts a new session (a new session id on every sign-in).
    pub async fn login(state: &AppState, session: &Session, email: &str, password: &str) -> AppResult<SessionUser> {
        if password.is_empty() {
            return Err(AppError::invalid("password", "Enter your password."));
        }
        if password.len() > 1024 {
            return Err(AppError::invalid("password", WRONG));
        }
        let email = Email::parse(email)?;
        let row: Option<(i64, String)> = sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&state.db.pool)
            .await?;
        // Verify against a dummy hash for unknown users so both answers take the same time.
        let (id, hash) = row.map_or((0, None), |(id, h)| (id, Some(h)));
        let ok = verify_password(password, hash).await && id != 0;
        if !ok {
            tracing::info!(email = email.as_str(), "failed sign-in");
            return Err(AppError::invalid("password", WRONG));
        }
        session.cycle_id().await?;
        session.insert(USER_ID, id).await?;
        let user = user_by_id(state, id).await?.ok_or_else(|| AppError::internal("login", "user vanished"))?;
        record(&state.db, Some(user.workspace_id), Level::Info, "signed_in", Some(id), None, None, "").await;
        Ok(user)
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
    async fn verify_password(password: &str, hash: Option<String>) -> bool {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
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
