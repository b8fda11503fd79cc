//! Tracing: human-readable or JSON logs, and one span per request.

use app::ssr::settings::LogFormat;
use axum::http::Request;
use tracing::Span;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,leptos_axum=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Human => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true)).try_init(),
    };
}

/// The span every request runs in: method and path only (never the query string, which may
/// carry OAuth codes).
pub fn request_span<B>(req: &Request<B>) -> Span {
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
}
