//! The one error type shared by client and server.
//!
//! User-facing variants carry a message meant to be shown as it is. Internal causes are logged on
//! the server with their context and answered with the opaque [`AppError::Internal`] variant, so
//! no SQL text, file path or credential ever reaches a browser.

use serde::{Deserialize, Serialize};
use server_fn_error::*;

/// Re-exported pieces of `server_fn` needed to plug [`AppError`] into `#[server]` functions.
mod server_fn_error {
    pub use leptos::server_fn::codec::JsonEncoding;
    pub use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
    pub use leptos::server_fn::{Bytes, Encodes};
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Input that failed validation; `field` names the form control it belongs to.
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The connection has no working authorization for the caller. `prompt` says whether the
    /// caller may authorize it (show the authorization prompt) or must ask an admin.
    #[error("{message}")]
    AuthorizationRequired { connection: String, prompt: bool, message: String },
    /// The request itself could not be read (malformed or over-long body, missing argument).
    #[error("The request could not be understood: {0}")]
    BadRequest(String),
    /// A failure in a third-party service, described for a person.
    #[error("{0}")]
    Upstream(String),
    /// Anything else. The cause was logged on the server under `reference`.
    #[error("Something went wrong on our side (reference {reference}). Please try again.")]
    Internal { reference: String },
    /// The browser could not reach the server or read its answer.
    #[error("Could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid { field: field.into(), message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::NotFound(message.into())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Invalid { .. } | AppError::BadRequest(_) => 400,
            AppError::Conflict(_) => 409,
            AppError::TooManyRequests(_) => 429,
            AppError::AuthorizationRequired { .. } => 428,
            AppError::Upstream(_) => 502,
            AppError::Internal { .. } | AppError::Transport(_) => 500,
        }
    }

    /// The form field an error belongs to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => AppError::BadRequest(short(&m)),
            // On the server these come from reading the request body (not UTF-8, cut off): the
            // caller's request was bad. In the browser they mean the server's answer never came.
            ServerFnErrorErr::Request(m) | ServerFnErrorErr::Deserialization(m) if cfg!(feature = "ssr") => {
                AppError::BadRequest(short(&m))
            }
            ServerFnErrorErr::Request(m) | ServerFnErrorErr::Deserialization(m) => AppError::Transport(short(&m)),
            other => AppError::Transport(short(&other.to_string())),
        }
    }

    /// Encodes the error as a server function's answer. On the server this is where an error
    /// becomes a response, so it also sets that response's status ([`AppError::status`]).
    fn ser(&self) -> Bytes {
        #[cfg(feature = "ssr")]
        ssr::set_response_status(self);
        // A plain enum of strings always encodes; the fallback keeps the answer well-formed.
        <JsonEncoding as Encodes<Self>>::encode(self)
            .unwrap_or_else(|_| Bytes::from_static(br#"{"Internal":{"reference":"-"}}"#))
    }
}

/// Keeps decoder messages readable (and bounded) when they are shown to a person.
fn short(message: &str) -> String {
    let mut s: String = message.chars().take(200).collect();
    if s.len() < message.len() {
        s.push('…');
    }
    s
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use axum::http::{header, request::Parts, StatusCode};
    use leptos::prelude::use_context;

    /// Gives the server function's answer the error's own status (403, 404, 428, …) through
    /// Leptos' `ResponseOptions`. A plain HTML form post is left alone: Leptos answers it with a
    /// redirect back to the form, carrying the error in the URL.
    pub(super) fn set_response_status(error: &AppError) {
        let Some(response) = use_context::<leptos_axum::ResponseOptions>() else { return };
        let form_post = use_context::<Parts>()
            .and_then(|p| p.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(|v| v.contains("text/html")))
            .unwrap_or(false);
        if !form_post {
            response.set_status(StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
    }

    impl AppError {
        /// Logs an internal cause with its context and returns the opaque error the user sees.
        #[track_caller]
        pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
            let reference = crate::ssr::ids::short_reference();
            let at = std::panic::Location::caller();
            tracing::error!(%reference, context, %cause, location = %at, "internal error");
            AppError::Internal { reference }
        }
    }

    impl From<sqlx::Error> for AppError {
        #[track_caller]
        fn from(e: sqlx::Error) -> Self {
            // PostgreSQL refuses text it cannot store (a NUL character: 22021, 22P05); that is
            // the request's fault, and no statement bound to it ran.
            if let Some(code) = e.as_database_error().and_then(|d| d.code()) {
                if matches!(code.as_ref(), "22021" | "22P05") {
                    tracing::info!(%code, "text the database cannot store");
                    return AppError::BadRequest("The request contains a character that cannot be stored.".into());
                }
            }
            AppError::internal("database", e)
        }
    }

    impl From<tower_sessions::session::Error> for AppError {
        #[track_caller]
        fn from(e: tower_sessions::session::Error) -> Self {
            AppError::internal("session store", e)
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
