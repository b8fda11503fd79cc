//! The versioned REST API for a host product's backend, under `/v1`: API-key authentication,
//! per-key rate limits, RFC 9457 problems, `Idempotency-Key` on writes, and an OpenAPI 3.1
//! document generated from these handlers and types (`utoipa`): the router and the document
//! come from the same `routes!` list, so they cannot name different routes.
//!
//! Handlers are thin: the guard's caller, then a plain function of [`model`].

pub mod guard;
pub mod model;
pub mod problem;
mod reference;

use super::connect_sessions::{self, ConnectSession, NewConnectSession};
use super::ApiScope;
use crate::ssr::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use guard::{idempotent, Api, Body, IdempotencyKey, Params};
use model::*;
use problem::Problem;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Connections manager API",
        version = "1",
        description = "Server-to-server API for a host product's backend. Authenticate with a workspace API key \
                       (`Authorization: Bearer cmk_…`). Errors are RFC 9457 problem details."
    ),
    modifiers(&BearerKey),
    tags(
        (name = "connect sessions", description = "Open the embedded panel signed in as an end user"),
        (name = "connections", description = "Connections, their health, and calls over them"),
        (name = "operations", description = "The workspace's Operations log"),
    )
)]
struct ApiDoc;

struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("cmk_…").build()),
        );
    }
}

/// The `/v1` routes and the OpenAPI document describing exactly them.
pub fn routes() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_connect_session))
        .routes(routes!(list_connections))
        .routes(routes!(get_connection))
        .routes(routes!(invoke))
        .routes(routes!(list_operations))
        .split_for_parts()
}

/// `/v1` with `/v1/openapi.json` and the reference page `/v1/docs`.
pub fn router() -> axum::Router<AppState> {
    let (router, doc) = routes();
    // Rendered once; each answer shares the bytes.
    let json = axum::body::Bytes::from(doc.to_pretty_json().unwrap_or_default());
    let page = axum::body::Bytes::from(reference::page(&doc));
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let json = json.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route(
            "/v1/docs",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        )
        .route(
            "/v1/{*rest}",
            axum::routing::any(|| async { Problem::new("not-found", "No such API route; see /v1/docs.") }),
        )
}

fn ok<T: serde::Serialize>(status: StatusCode, value: T) -> crate::error::AppResult<(StatusCode, serde_json::Value)> {
    serde_json::to_value(value).map(|v| (status, v)).map_err(|e| crate::error::AppError::internal("api answer", e))
}

/// Creates a single-use token that opens the embedded panel signed in as the end user.
#[utoipa::path(
    post, path = "/v1/connect-sessions", tag = "connect sessions",
    request_body = NewConnectSession,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = ConnectSession),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn create_connect_session(
    State(state): State<AppState>,
    api: Api,
    key: Option<IdempotencyKey>,
    Body(req, raw): Body<NewConnectSession>,
) -> Response {
    if let Err(p) = api.require(&state, ApiScope::ConnectSessions).await {
        return p.into_response();
    }
    idempotent(&state, &api, key, &raw, async {
        let session = connect_sessions::create(&state, &api.0, &req).await?;
        ok(StatusCode::CREATED, session)
    })
    .await
}

/// Connections with their health, as the end user (or the key's creator) sees them.
#[utoipa::path(
    get, path = "/v1/connections", tag = "connections",
    params(ListQuery),
    responses(
        (status = 200, body = ConnectionList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_connections(
    State(state): State<AppState>,
    api: Api,
    Params(q): Params<ListQuery>,
) -> Result<Json<ConnectionList>, Problem> {
    api.require(&state, ApiScope::ConnectionsRead).await?;
    Ok(Json(model::list_connections(&state, &api.0, q).await?))
}

/// One connection with its authorization in each environment.
#[utoipa::path(
    get, path = "/v1/connections/{link_name}", tag = "connections",
    params(("link_name" = String, Path, description = "The connection's link name"), OneQuery),
    responses(
        (status = 200, body = ConnectionDetails),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_connection(
    State(state): State<AppState>,
    api: Api,
    Path(link_name): Path<String>,
    Params(q): Params<OneQuery>,
) -> Result<Json<ConnectionDetails>, Problem> {
    api.require(&state, ApiScope::ConnectionsRead).await?;
    Ok(Json(model::get_connection(&state, &api.0, &link_name, q).await?))
}

/// Calls the service over the connection as the end user: the same policy and guarded client
/// as the application's components; the connection's credentials are never returned. A
/// connection the user has not authorized answers 428 `authorization-required` (open the panel).
#[utoipa::path(
    post, path = "/v1/connections/{link_name}/invoke", tag = "connections",
    params(
        ("link_name" = String, Path, description = "The connection's link name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer"),
    ),
    request_body = InvokeCall,
    responses(
        (status = 200, body = InvokeResult),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn invoke(
    State(state): State<AppState>,
    api: Api,
    Path(link_name): Path<String>,
    key: Option<IdempotencyKey>,
    Body(call, raw): Body<InvokeCall>,
) -> Response {
    if let Err(p) = api.require(&state, ApiScope::Invoke).await {
        return p.into_response();
    }
    idempotent(&state, &api, key, &[link_name.as_bytes(), b"\n", &raw].concat(), async {
        ok(StatusCode::OK, model::invoke(&state, &api.0, &link_name, call).await?)
    })
    .await
}

/// The workspace's Operations entries, newest first.
#[utoipa::path(
    get, path = "/v1/operations", tag = "operations",
    params(OperationsQuery),
    responses(
        (status = 200, body = OperationList),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_operations(
    State(state): State<AppState>,
    api: Api,
    Params(q): Params<OperationsQuery>,
) -> Result<Json<OperationList>, Problem> {
    api.require(&state, ApiScope::ConnectionsRead).await?;
    Ok(Json(model::operations(&state, &api.0, q).await?))
}
