//! What every `/v1` request goes through: the API key (`Authorization: Bearer cmk_…`), the
//! per-key rate limit (a counter per key and minute in the database, so every replica counts
//! the same requests), the scope each route needs, and `Idempotency-Key` on writes.

use super::problem::Problem;
use crate::error::AppResult;
use crate::operations::ssr::{Level, OperationKind};
use crate::platform::keys::{authenticate, digest, ApiCaller, Refused};
use crate::platform::ApiScope;
use crate::ssr::ids::now_ms;
use crate::ssr::AppState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

const WINDOW_MS: i64 = 60_000;

/// The authenticated caller of a `/v1` route.
pub struct Api(pub ApiCaller);

impl FromRequestParts<AppState> for Api {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let caller = match authenticate(state, presented).await.map_err(Problem::from)? {
            Ok(caller) => caller,
            Err(Refused::Missing) => {
                return Err(Problem::unauthorized("Send an API key: Authorization: Bearer cmk_…"));
            }
            Err(Refused::Unknown) => return Err(Problem::unauthorized("This API key is not valid.")),
            Err(Refused::Revoked) => return Err(Problem::unauthorized("This API key has been revoked.")),
        };
        if let Some(wait) = over_limit(state, &caller).await.map_err(Problem::from)? {
            caller
                .operation(Level::Warn, OperationKind::ApiCallRefused)
                .detail(format!("{} over its rate limit: {} {}", caller.label(), parts.method, parts.uri.path()))
                .record(&state.db)
                .await;
            return Err(Problem::rate_limited(wait));
        }
        caller
            .operation(Level::Info, OperationKind::ApiCall)
            .detail(format!("{}: {} {}", caller.label(), parts.method, parts.uri.path()))
            .record(&state.db)
            .await;
        Ok(Api(caller))
    }
}

impl Api {
    /// The route's scope, or 403 (an Operations entry says which key tried what).
    pub async fn require(&self, state: &AppState, scope: ApiScope) -> Result<(), Problem> {
        if self.0.scopes.contains(&scope) {
            return Ok(());
        }
        self.0
            .operation(Level::Warn, OperationKind::ApiCallRefused)
            .detail(format!("{} lacks the scope {}", self.0.label(), scope.as_str()))
            .record(&state.db)
            .await;
        Err(Problem::new("forbidden", format!("This API key does not have the scope '{}'.", scope.as_str())))
    }
}

/// Counts the request in the key's current minute; `Some(seconds to wait)` beyond the limit.
async fn over_limit(state: &AppState, caller: &ApiCaller) -> AppResult<Option<u64>> {
    let now = now_ms();
    let window = now - now.rem_euclid(WINDOW_MS);
    // One atomic upsert on both backends: concurrent requests each get their own count.
    let count: i64 = sqlx::query_scalar(
        "INSERT INTO api_rate_windows (api_key_id, window_start, requests) VALUES ($1, $2, 1)
         ON CONFLICT (api_key_id, window_start) DO UPDATE SET requests = api_rate_windows.requests + 1
         RETURNING requests",
    )
    .bind(caller.key_id)
    .bind(window)
    .fetch_one(&state.db.pool)
    .await?;
    if count <= state.settings.api_requests_per_minute.max(1) {
        return Ok(None);
    }
    Ok(Some(((window + WINDOW_MS - now + 999) / 1000).max(1) as u64))
}

/// Old rate windows, spent or expired connect sessions and day-old idempotency records go.
pub async fn housekeeping(state: &AppState) -> AppResult<()> {
    let now = now_ms();
    sqlx::query("DELETE FROM api_rate_windows WHERE window_start < $1")
        .bind(now - 2 * WINDOW_MS)
        .execute(&state.db.pool)
        .await?;
    sqlx::query("DELETE FROM api_idempotency WHERE created_at < $1")
        .bind(now - IDEMPOTENCY_MS)
        .execute(&state.db.pool)
        .await?;
    sqlx::query("DELETE FROM connect_sessions WHERE expires_at < $1")
        .bind(now - 24 * 3_600_000)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// A JSON body whose faults are answered as problems (field and reason), not axum's text.
pub struct Body<T>(pub T, pub axum::body::Bytes);

impl<T: DeserializeOwned> axum::extract::FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Problem> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::new("invalid-request", format!("The body could not be read: {e}")))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| Problem::new("invalid-request", format!("The body is not the expected JSON: {e}")))?;
        Ok(Body(value, bytes))
    }
}

/// Query parameters whose faults are answered as problems.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| Problem::new("invalid-request", e.body_text()))
    }
}

/// `Idempotency-Key` as sent (1 to 200 visible characters).
pub struct IdempotencyKey(pub String);

impl OptionalFromRequestParts<AppState> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Option<Self>, Problem> {
        let Some(v) = parts.headers.get("idempotency-key") else { return Ok(None) };
        let key = v.to_str().ok().map(str::trim).filter(|k| !k.is_empty() && k.len() <= 200);
        match key {
            Some(k) => Ok(Some(IdempotencyKey(k.to_string()))),
            None => Err(Problem::new("invalid-request", "Idempotency-Key must be 1 to 200 visible characters.")),
        }
    }
}

/// How long a first answer is replayed.
pub const IDEMPOTENCY_MS: i64 = 24 * 3_600_000;

pub fn idempotency_aad(id: i64) -> Vec<u8> {
    format!("api_idempotency:{id}").into_bytes()
}

/// Runs a write once per `Idempotency-Key` (per API key): a retry with the same key and body
/// gets the first answer again (its status and body, stored encrypted as it may hold a
/// token); the same key with another body is refused with 422; a retry while the first is
/// still running gets 409. Without a key the write simply runs.
pub async fn idempotent<F>(state: &AppState, api: &Api, key: Option<IdempotencyKey>, request: &[u8], run: F) -> Response
where
    F: std::future::Future<Output = AppResult<(StatusCode, serde_json::Value)>>,
{
    let run = async { run.await.map_err(Problem::from) };
    let Some(IdempotencyKey(key)) = key else {
        return answer(run.await);
    };
    match claim(state, api.0.key_id, &key, &digest(request)).await {
        Ok(Claim::Run(id)) => {
            let result = run.await;
            let (status, body) = match &result {
                Ok((s, v)) => (*s, serde_json::to_vec(v).unwrap_or_default()),
                Err(p) => (StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Vec::new()),
            };
            if result.is_ok() {
                let stored = state.cipher.encrypt(&idempotency_aad(id), &body);
                let saved = sqlx::query("UPDATE api_idempotency SET status = $1, answer_ct = $2 WHERE id = $3")
                    .bind(i64::from(status.as_u16()))
                    .bind(stored)
                    .bind(id)
                    .execute(&state.db.pool)
                    .await;
                if let Err(e) = saved {
                    tracing::error!(error = %e, "could not keep an idempotent answer");
                }
            } else {
                // A refused write may be retried as it is (after authorizing, say): forget it.
                let _ = sqlx::query("DELETE FROM api_idempotency WHERE id = $1").bind(id).execute(&state.db.pool).await;
            }
            answer(result)
        }
        Ok(Claim::Replay(status, body)) => {
            let mut res = (status, body).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            res.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
            res
        }
        Ok(Claim::Mismatch) => Problem::new(
            "idempotency-key-reused",
            "This Idempotency-Key was used with another request; use a new key for a new request.",
        )
        .into_response(),
        Ok(Claim::Running) => {
            Problem::new("conflict", "A request with this Idempotency-Key is still running; retry shortly.")
                .into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

fn answer(result: Result<(StatusCode, serde_json::Value), Problem>) -> Response {
    match result {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(p) => p.into_response(),
    }
}

enum Claim {
    Run(i64),
    Replay(StatusCode, Vec<u8>),
    Mismatch,
    Running,
}

async fn claim(state: &AppState, key_id: i64, key: &str, request_hash: &str) -> AppResult<Claim> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO api_idempotency (api_key_id, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (api_key_id, idem_key) DO NOTHING RETURNING id",
    )
    .bind(key_id)
    .bind(key)
    .bind(request_hash)
    .bind(now_ms())
    .fetch_optional(&state.db.pool)
    .await?;
    if let Some(id) = inserted {
        return Ok(Claim::Run(id));
    }
    let (id, hash, status, answer): (i64, String, i64, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT id, request_hash, status, answer_ct FROM api_idempotency WHERE api_key_id = $1 AND idem_key = $2",
    )
    .bind(key_id)
    .bind(key)
    .fetch_one(&state.db.pool)
    .await?;
    if hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    match (StatusCode::from_u16(status as u16).ok().filter(|_| status > 0), answer) {
        (Some(status), Some(ct)) => {
            let body = state
                .cipher
                .decrypt(&idempotency_aad(id), &ct)
                .map_err(|e| crate::error::AppError::internal("idempotent answer", e))?;
            Ok(Claim::Replay(status, body))
        }
        _ => Ok(Claim::Running),
    }
}
