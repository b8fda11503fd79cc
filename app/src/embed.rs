//! The embeddable connections panel: `/embed/:app` in an iframe (created by the one-line
//! `/embed.js` snippet), allowed only for the origins on the application's embed allowlist
//! (`Content-Security-Policy: frame-ancestors`), posting `connections.*` events to the parent.
//! Every other page answers `frame-ancestors 'none'` and `X-Frame-Options: DENY`.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The event types the embedded panel posts to its parent window.
pub const EVENT_TYPES: [&str; 4] =
    ["connections.authorized", "connections.switched", "connections.revoked", "connections.sync_finished"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedAllowlist {
    pub app: String,
    /// Origins (`https://host[:port]`) allowed to embed the panel, besides this server itself.
    pub origins: Vec<String>,
    /// The snippet that embeds this application's panel from this server.
    pub snippet: String,
}

/// The application's embed allowlist (anyone who may open the application).
#[server(prefix = "/api", endpoint = "embed_settings")]
pub async fn embed_settings(app: String) -> Result<EmbedAllowlist, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::settings(&state, &user, &app).await
}

/// Replaces the application's embed allowlist (builders only): origins separated by spaces,
/// commas or new lines.
#[server(prefix = "/api", endpoint = "set_embed_origins")]
pub async fn set_embed_origins(app: String, origins: String) -> Result<EmbedAllowlist, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("change who may embed an application").await?;
    ssr::set_origins(&state, &user, &app, &origins).await
}

/// Checks one origin: `http(s)://host[:port]`, nothing else (no path, wildcard, user info or
/// quote that could change the header it ends up in). Returned in lower case.
pub fn parse_origin(raw: &str) -> Result<String, AppError> {
    let bad = || AppError::invalid("origins", format!("'{raw}' is not an origin like https://example.com."));
    let s = raw.trim().to_ascii_lowercase();
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).ok_or_else(bad)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(s)
    } else {
        Err(bad())
    }
}

/// Parses an allowlist as typed: origins separated by whitespace or commas, duplicates dropped.
pub fn parse_origins(raw: &str) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::new();
    for part in raw.split(|c: char| c.is_whitespace() || c == ',').filter(|p| !p.is_empty()) {
        let o = parse_origin(part)?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    if out.len() > 20 {
        return Err(AppError::invalid("origins", "At most 20 origins may embed an application."));
    }
    Ok(out)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;

    /// `<script src="<public url>/embed.js" data-app="<app>"></script>`
    pub fn snippet(state: &crate::ssr::AppState, app: &str) -> String {
        format!(r#"<script src="{}/embed.js" data-app="{app}"></script>"#, state.settings.public_url())
    }
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::operations::ssr::{Level, Operation, OperationKind};
    use crate::ssr::AppState;

    fn stored(raw: &str) -> Vec<String> {
        // Stored values were checked when saved; check again so a bad row cannot widen the header.
        raw.split_whitespace().filter_map(|o| parse_origin(o).ok()).collect()
    }

    pub async fn settings(state: &AppState, user: &SessionUser, app: &str) -> AppResult<EmbedAllowlist> {
        let a = crate::applications::ssr::find(state, user, app).await?;
        let raw: String = sqlx::query_scalar("SELECT embed_origins FROM applications WHERE id = $1")
            .bind(a.id)
            .fetch_one(&state.db.pool)
            .await?;
        Ok(EmbedAllowlist { snippet: snippet(state, &a.link_name), app: a.link_name, origins: stored(&raw) })
    }

    pub async fn set_origins(state: &AppState, user: &SessionUser, app: &str, raw: &str) -> AppResult<EmbedAllowlist> {
        let a = crate::applications::ssr::find(state, user, app).await?;
        let origins = parse_origins(raw)?;
        sqlx::query("UPDATE applications SET embed_origins = $1 WHERE id = $2")
            .bind(origins.join(" "))
            .bind(a.id)
            .execute(&state.db.pool)
            .await?;
        Operation::by(user, Level::Info, OperationKind::EmbedOriginsChanged)
            .detail(format!("{}: {}", a.link_name, if origins.is_empty() { "none".into() } else { origins.join(" ") }))
            .record(&state.db)
            .await;
        Ok(EmbedAllowlist { snippet: snippet(state, &a.link_name), app: a.link_name, origins })
    }

    /// `GET /embed.js`: the snippet that creates the iframe.
    pub async fn script() -> impl axum::response::IntoResponse {
        use axum::http::header;
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
            include_str!("../embed/embed.js"),
        )
    }

    /// `GET /embed-example`: a page embedding the panel with the snippet and listing its events.
    pub async fn example_page() -> axum::response::Html<&'static str> {
        axum::response::Html(include_str!("../embed/example.html"))
    }

    /// Sets `Content-Security-Policy: frame-ancestors` on every answer: the allowlist for
    /// `/embed/<app>`, `'none'` (and `X-Frame-Options: DENY`) everywhere else.
    pub async fn frame_headers(
        axum::extract::State(state): axum::extract::State<AppState>,
        req: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        use axum::http::{header, HeaderValue};
        let path = req.uri().path().to_owned();
        let mut res = next.run(req).await;
        let ancestors = frame_ancestors(&state, &path).await;
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("frame-ancestors {ancestors}")) {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        if ancestors == "'none'" {
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        res
    }

    /// The `frame-ancestors` sources for a request path: `'self'` plus the application's
    /// allowlist for `/embed/<app>`; `'none'` for everything else. An application link name
    /// used by several workspaces gets only the origins all of them allow.
    pub async fn frame_ancestors(state: &AppState, path: &str) -> String {
        let Some(app) = path.strip_prefix("/embed/").map(|rest| rest.split('/').next().unwrap_or_default()) else {
            return "'none'".into();
        };
        let rows: Vec<String> = match sqlx::query_scalar("SELECT embed_origins FROM applications WHERE link_name = $1")
            .bind(app)
            .fetch_all(&state.db.pool)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "embed allowlist lookup failed");
                vec![]
            }
        };
        let mut lists = rows.iter().map(|r| stored(r));
        let allowed: Vec<String> = match lists.next() {
            Some(first) => {
                let rest: Vec<Vec<String>> = lists.collect();
                first.into_iter().filter(|o| rest.iter().all(|l| l.contains(o))).collect()
            }
            None => vec![],
        };
        std::iter::once("'self'".to_string()).chain(allowed).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert_eq!(parse_origin("https://Partner.Example").unwrap(), "https://partner.example");
        assert_eq!(parse_origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in [
            "partner.example",
            "https://",
            "https://a.example/path",
            "https://*.example",
            "https://a.example;script-src",
            "https://a.example'",
            "javascript:alert(1)",
            "https://user@a.example",
            "https://a.example:99999x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_origins("https://a.example, https://a.example\nhttp://b.example:3000").unwrap(),
            ["https://a.example", "http://b.example:3000"]
        );
    }
}
