//! RFC 9457 problem details for every `/v1` error: `application/problem+json` with a stable
//! `type` URI per kind of problem (a `tag:` URI, RFC 4151: stable across deployments, listed
//! on the reference page), the status, a title, and a detail meant for people.

use crate::error::AppError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The stable `type` of each kind of problem.
pub const TYPE_BASE: &str = "tag:connections-manager,2026:problems/";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `tag:connections-manager,2026:problems/<kind>`; switch on this, not on `title`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault (invalid requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The connection that needs authorizing (authorization required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Seconds to wait (rate limited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Every kind of problem: its slug (the end of its `type`), status and title.
pub const KINDS: &[(&str, u16, &str)] = &[
    ("unauthorized", 401, "Missing, unknown or revoked API key"),
    ("forbidden", 403, "Not allowed"),
    ("not-found", 404, "Not found"),
    ("invalid-request", 400, "Invalid request"),
    ("conflict", 409, "Conflict"),
    ("idempotency-key-reused", 422, "Idempotency-Key reused with another request"),
    ("authorization-required", 428, "The connection needs authorizing"),
    ("rate-limited", 429, "Too many requests"),
    ("upstream-failed", 502, "The service failed"),
    ("internal", 500, "Internal error"),
];

impl Problem {
    pub fn new(slug: &str, detail: impl Into<String>) -> Self {
        let (slug, status, title) =
            KINDS.iter().copied().find(|(s, _, _)| *s == slug).unwrap_or(("internal", 500, "Internal error"));
        Problem {
            type_uri: format!("{TYPE_BASE}{slug}"),
            title: title.into(),
            status,
            detail: detail.into(),
            field: None,
            connection: None,
            retry_after: None,
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new("unauthorized", detail)
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut p = Problem::new("rate-limited", format!("This key made too many requests. Retry in {retry_after} s."));
        p.retry_after = Some(retry_after);
        p
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let detail = e.to_string();
        match e {
            AppError::Unauthenticated => Problem::unauthorized(detail),
            AppError::Forbidden(_) => Problem::new("forbidden", detail),
            AppError::NotFound(_) => Problem::new("not-found", detail),
            AppError::Invalid { field, .. } => {
                Problem { field: Some(field), ..Problem::new("invalid-request", detail) }
            }
            AppError::BadRequest(_) => Problem::new("invalid-request", detail),
            AppError::Conflict(_) => Problem::new("conflict", detail),
            AppError::TooManyRequests(_) => Problem::new("rate-limited", detail),
            AppError::AuthorizationRequired { connection, .. } => {
                Problem { connection: Some(connection), ..Problem::new("authorization-required", detail) }
            }
            AppError::Upstream(_) => Problem::new("upstream-failed", detail),
            AppError::Internal { .. } | AppError::Transport(_) => Problem::new("internal", detail),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == 401 {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_error_has_a_documented_kind() {
        let errors = [
            AppError::Unauthenticated,
            AppError::forbidden("no"),
            AppError::not_found("no"),
            AppError::invalid("f", "bad"),
            AppError::BadRequest("x".into()),
            AppError::Conflict("x".into()),
            AppError::TooManyRequests("x".into()),
            AppError::AuthorizationRequired { connection: "c".into(), prompt: true, message: "m".into() },
            AppError::Upstream("x".into()),
            AppError::Internal { reference: "r".into() },
        ];
        for e in errors {
            let status = e.status();
            let p = Problem::from(e);
            assert_eq!(p.status, status, "{p:?}");
            assert!(KINDS.iter().any(|(s, _, _)| p.type_uri == format!("{TYPE_BASE}{s}")), "{p:?}");
        }
    }
}
