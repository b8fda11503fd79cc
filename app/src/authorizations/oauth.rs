//! The OAuth2 authorization-code flow (R8.1–R8.7, R8.9): starting it with PKCE (S256) and a
//! random `state` kept as a pending row in the database (its verifier encrypted), finishing it
//! once with the provider's answer, and the token requests (code exchange, client credentials),
//! all sent through the guarded outbound client.

use super::callback::CallbackParams;
use super::credentials::{pending_aad, store_authorization, Credentials};
use super::{AuthorizeOutcome, FlowStatus};
use crate::auth::SessionUser;
use crate::connections::ssr::{load as load_connection, Connection};
use crate::connectors::ssr::{load as load_connector, Connector};
use crate::domain::{DisplayName, Environment};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::ids::{now_ms, random_token};
use crate::ssr::outbound::OutboundError;
use crate::ssr::AppState;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, TokenResponse, TokenUrl,
};

fn redirect_uri(state: &AppState) -> String {
    format!("{}/oauth/callback", state.settings.public_url())
}

fn missing(what: &str) -> AppError {
    AppError::Upstream(format!(
        "This connector is not fully configured on this server ({what} is missing). Ask your admin."
    ))
}

/// A custom OAuth2 connector imported from another workspace has no client secret until a
/// builder sets it (exports never carry one): nobody can authorize its connections before.
fn ensure_client_secret(connector: &Connector) -> AppResult<()> {
    if connector.kind == crate::connectors::ConnectorKind::Custom && connector.client_secret.is_none() {
        return Err(AppError::Conflict(format!(
            "{} has no client secret yet (it was imported without one). A builder sets it on the connector's Edit page first.",
            connector.name
        )));
    }
    Ok(())
}

pub(super) fn bad_url(what: &str) -> AppError {
    AppError::Upstream(format!("This connector's {what} is not a valid URL. Ask your admin to fix the connector."))
}

pub(super) async fn start_oauth(
    state: &AppState,
    user: &SessionUser,
    conn: &Connection,
    connector: &Connector,
    name: DisplayName,
    envs: Vec<Environment>,
    replace: bool,
) -> AppResult<AuthorizeOutcome> {
    ensure_client_secret(connector)?;
    let cfg = &connector.config;
    let auth_url = cfg.authorize_url.clone().ok_or_else(|| missing("authorization URL"))?;
    let client_id = cfg.client_id.clone().ok_or_else(|| missing("client ID"))?;
    let redirect = redirect_uri(state);
    let client = BasicClient::new(ClientId::new(client_id))
        .set_auth_uri(AuthUrl::new(auth_url).map_err(|_| bad_url("authorization URL"))?)
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(|e| AppError::internal("redirect uri", e))?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let delimiter = if cfg.scope_delimiter.is_empty() { " " } else { cfg.scope_delimiter.as_str() };
    let scopes = conn.scopes.split_whitespace().collect::<Vec<_>>().join(delimiter);
    let mut request = client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge);
    if !scopes.is_empty() {
        request = request.add_extra_param("scope", scopes);
    }
    for (k, v) in &cfg.extra_authorize_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, csrf) = request.url();
    let flow = csrf.secret().clone();
    let window = state.settings.oauth_window_secs;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO oauth_pending (state, connection_id, user_id, environments, account_name, pkce_verifier_ct,
                                    redirect_uri, created_at, expires_at, replace_account, token_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&flow)
    .bind(conn.id)
    .bind(user.id)
    .bind(envs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(","))
    .bind(name.as_str())
    .bind(state.cipher.encrypt(&pending_aad(&flow), verifier.secret().as_bytes()))
    .bind(&redirect)
    .bind(now)
    .bind(now + (window as i64) * 1000)
    .bind(replace as i64)
    .bind(&cfg.token_url)
    .execute(&state.db.pool)
    .await?;
    tracing::info!(connection_id = conn.id, "oauth flow started");
    Ok(AuthorizeOutcome::Redirect { flow, authorize_url: url.to_string(), window_secs: window })
}

/// The `oauth2` client for a connector: only its token endpoint is set (the authorize URL is
/// built per flow, revocation goes through `revocations`).
pub(super) type OAuthClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

pub(super) fn oauth_client(connector: &Connector) -> AppResult<OAuthClient> {
    let cfg = &connector.config;
    let token_url = cfg.token_url.clone().ok_or_else(|| missing("token URL"))?;
    let mut client = BasicClient::new(ClientId::new(cfg.client_id.clone().ok_or_else(|| missing("client ID"))?))
        .set_token_uri(TokenUrl::new(token_url).map_err(|_| bad_url("token URL"))?)
        .set_auth_type(if cfg.client_auth == crate::connectors::Placement::Query {
            oauth2::AuthType::RequestBody
        } else {
            oauth2::AuthType::BasicAuth
        });
    if let Some(secret) = &connector.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    Ok(client)
}

pub(super) fn token_error(e: RequestTokenError<OutboundError, oauth2::basic::BasicErrorResponse>) -> AppError {
    match e {
        RequestTokenError::Request(OutboundError::Refused(why)) => {
            tracing::warn!(%why, "token endpoint refused by the outbound rules");
            AppError::forbidden(why)
        }
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().as_ref().to_string();
            tracing::warn!(error = %code, "token endpoint refused");
            AppError::Upstream(format!("The service refused the authorization ({code})."))
        }
        RequestTokenError::Request(e) => {
            tracing::warn!(error = %e, "token endpoint unreachable");
            AppError::Upstream("The service could not be reached. Try again in a moment.".into())
        }
        RequestTokenError::Parse(e, _) => {
            tracing::warn!(error = %e, "token endpoint answered garbage");
            AppError::Upstream("The service answered with something that is not a token.".into())
        }
        RequestTokenError::Other(e) => {
            tracing::warn!(error = %e, "token request failed");
            AppError::Upstream("The service's answer could not be used.".into())
        }
    }
}

pub(super) fn credentials_from(
    token: &oauth2::basic::BasicTokenResponse,
    previous_refresh: Option<String>,
) -> Credentials {
    let now = now_ms();
    Credentials::OAuth2 {
        access_token: token.access_token().secret().clone(),
        refresh_token: token.refresh_token().map(|r| r.secret().clone()).or(previous_refresh),
        expires_at: token.expires_in().map(|d| now + d.as_millis() as i64),
        issued_at: Some(now),
    }
}

/// A token by the client-credentials grant for `scopes` (space-separated): at authorization,
/// and again whenever the stored one has expired (there is no refresh token in this grant).
pub(super) async fn client_credentials(
    state: &AppState,
    connector: &Connector,
    scopes: &str,
) -> AppResult<Credentials> {
    ensure_client_secret(connector)?;
    let client = oauth_client(connector)?;
    let mut req = client.exchange_client_credentials();
    for s in scopes.split_whitespace() {
        req = req.add_scope(oauth2::Scope::new(s.to_string()));
    }
    let token = req.request_async(&state.outbound).await.map_err(token_error)?;
    Ok(credentials_from(&token, None))
}

/// Finishes an OAuth2 flow. Every refusal is final: the pending row is consumed first, so
/// a second callback with the same `state` (a replay) finds nothing to finish.
#[tracing::instrument(skip_all)]
pub async fn finish(state: &AppState, user: Option<&SessionUser>, params: CallbackParams) -> FlowStatus {
    let Some(flow) = params.state.clone().filter(|s| is_flow_state(s)) else {
        return FlowStatus::Failed { message: "This authorization answer has no valid state; it was ignored.".into() };
    };
    let now = now_ms();
    // Consume atomically: only the first callback for a state gets the row.
    let row: Option<PendingFlow> = match sqlx::query_as(
        "UPDATE oauth_pending SET consumed_at = $1
         WHERE state = $2 AND consumed_at IS NULL
         RETURNING connection_id, user_id, environments, account_name, pkce_verifier_ct, redirect_uri,
                   expires_at, token_url",
    )
    .bind(now)
    .bind(&flow)
    .fetch_optional(&state.db.pool)
    .await
    {
        Ok(r) => r,
        Err(e) => return FlowStatus::Failed { message: AppError::from(e).to_string() },
    };
    let Some(pending) = row else {
        tracing::warn!("oauth callback for an unknown or already used state");
        return FlowStatus::Failed {
            message: "This authorization link is not valid or was already used. Start again from Authorize.".into(),
        };
    };
    let (connection_id, user_id) = (pending.connection_id, pending.user_id);
    let status = finish_inner(state, user, &flow, params, pending, now)
        .await
        .unwrap_or_else(|e| FlowStatus::Failed { message: e.to_string() });
    if !matches!(status, FlowStatus::Connected { .. }) {
        let workspace: Option<i64> = sqlx::query_scalar("SELECT workspace_id FROM connections WHERE id = $1")
            .bind(connection_id)
            .fetch_optional(&state.db.pool)
            .await
            .unwrap_or_default();
        Operation::new(Level::Warn, OperationKind::OauthFailed)
            .workspace(workspace)
            .actor(user_id)
            .on(connection_id)
            .detail(status.message())
            .record(&state.db)
            .await;
    }
    let (outcome, detail) = match &status {
        FlowStatus::Connected { account_name } => (FlowOutcome::Connected, account_name.clone()),
        FlowStatus::Expired => (FlowOutcome::Expired, String::new()),
        FlowStatus::Denied => (FlowOutcome::Denied, String::new()),
        FlowStatus::Cancelled => (FlowOutcome::Cancelled, String::new()),
        FlowStatus::Failed { message } => (FlowOutcome::Failed, message.clone()),
        FlowStatus::Pending { .. } => (FlowOutcome::Failed, "unexpected".into()),
    };
    if let Err(e) = sqlx::query("UPDATE oauth_pending SET outcome = $1, outcome_detail = $2 WHERE state = $3")
        .bind(outcome.as_str())
        .bind(&detail)
        .bind(&flow)
        .execute(&state.db.pool)
        .await
    {
        tracing::error!(error = %e, "could not record the oauth outcome");
    }
    status
}

/// An OAuth2 flow waiting for the provider's answer (a row of `oauth_pending`).
#[derive(sqlx::FromRow)]
struct PendingFlow {
    connection_id: i64,
    user_id: i64,
    environments: String,
    account_name: String,
    pkce_verifier_ct: Vec<u8>,
    redirect_uri: String,
    expires_at: i64,
    /// The token endpoint the flow was started for: its code goes nowhere else.
    token_url: Option<String>,
}

async fn finish_inner(
    state: &AppState,
    user: Option<&SessionUser>,
    flow: &str,
    params: CallbackParams,
    pending: PendingFlow,
    now: i64,
) -> AppResult<FlowStatus> {
    if now > pending.expires_at {
        return Ok(FlowStatus::Expired);
    }
    let Some(user) = user.filter(|u| u.id == pending.user_id) else {
        tracing::warn!(expected = pending.user_id, "oauth callback in another user's session");
        return Ok(FlowStatus::Failed {
            message: "This authorization was started by someone else (or you signed out). Start again from Authorize."
                .into(),
        });
    };
    let connection_id = pending.connection_id;
    let conn = load_connection(state, user.workspace_id, connection_id).await?;
    let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
    let cfg = &connector.config;
    // The code goes only to the token endpoint the flow was started for: a connector edited
    // meanwhile (or a flow of another connector) never sends it elsewhere.
    if pending.token_url.is_some() && pending.token_url != cfg.token_url {
        tracing::warn!("oauth callback for a connector whose token endpoint changed");
        return Ok(FlowStatus::Failed {
            message:
                "This connection's service settings changed while you were authorizing. Start again from Authorize."
                    .into(),
        });
    }
    // RFC 9207: where the issuer is known, an answer naming another one is refused, and one
    // naming none is refused where the provider says it always names itself.
    match (&params.iss, &cfg.issuer) {
        (Some(iss), Some(issuer)) if iss.trim_end_matches('/') != issuer.trim_end_matches('/') => {
            tracing::warn!(%iss, "oauth callback from an unexpected issuer");
            return Ok(FlowStatus::Failed {
                message:
                    "The answer came from a different service than the one asked (issuer mismatch); it was refused."
                        .into(),
            });
        }
        (None, Some(_)) if cfg.iss_parameter_supported => {
            return Ok(FlowStatus::Failed {
                message: "The answer did not say which service sent it (missing iss); it was refused.".into(),
            });
        }
        _ => {}
    }
    if let Some(error) = params.error.as_deref() {
        return Ok(if error == "access_denied" {
            FlowStatus::Denied
        } else {
            let detail = params.error_description.unwrap_or_default();
            FlowStatus::Failed {
                message: format!(
                    "The service reported an error: {error}. {}",
                    detail.chars().take(200).collect::<String>()
                ),
            }
        });
    }
    let Some(code) = params.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return Ok(FlowStatus::Failed { message: "The service's answer had no authorization code.".into() });
    };
    let verifier = String::from_utf8(
        state
            .cipher
            .decrypt(&pending_aad(flow), &pending.pkce_verifier_ct)
            .map_err(|e| AppError::internal("pkce verifier", e))?,
    )
    .map_err(|e| AppError::internal("pkce verifier", e))?;
    let client = oauth_client(&connector)?.set_redirect_uri(
        RedirectUrl::new(pending.redirect_uri.clone()).map_err(|e| AppError::internal("redirect uri", e))?,
    );
    let token = match client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&state.outbound)
        .await
    {
        Ok(t) => t,
        Err(e) => return Ok(FlowStatus::Failed { message: token_error(e).to_string() }),
    };
    let envs: Vec<Environment> = pending.environments.split(',').filter_map(|e| Environment::parse(e).ok()).collect();
    let creds = credentials_from(&token, None);
    store_authorization(state, user, &conn, &connector, &pending.account_name, &creds, &envs).await?;
    Ok(FlowStatus::Connected { account_name: pending.account_name })
}

/// The state of a flow the caller started.
pub async fn flow_status(state: &AppState, user: &SessionUser, flow: &str) -> AppResult<FlowStatus> {
    #[derive(sqlx::FromRow)]
    struct FlowRow {
        user_id: i64,
        expires_at: i64,
        consumed_at: Option<i64>,
        outcome: Option<String>,
        outcome_detail: Option<String>,
    }
    let row: Option<FlowRow> = sqlx::query_as(
        "SELECT user_id, expires_at, consumed_at, outcome, outcome_detail FROM oauth_pending WHERE state = $1",
    )
    .bind(flow)
    .fetch_optional(&state.db.pool)
    .await?;
    // Another user's flow is "not found" for the caller.
    let Some(FlowRow { expires_at, consumed_at, outcome, outcome_detail: detail, .. }) =
        row.filter(|r| r.user_id == user.id)
    else {
        return Err(AppError::not_found("There is no such authorization in progress."));
    };
    let outcome = outcome.map(|o| FlowOutcome::parse(&o).unwrap_or(FlowOutcome::Failed));
    Ok(match (outcome, consumed_at) {
        (Some(FlowOutcome::Connected), _) => FlowStatus::Connected { account_name: detail.unwrap_or_default() },
        (Some(FlowOutcome::Expired), _) => FlowStatus::Expired,
        (Some(FlowOutcome::Denied), _) => FlowStatus::Denied,
        (Some(FlowOutcome::Cancelled), _) => FlowStatus::Cancelled,
        (Some(FlowOutcome::Failed), _) => FlowStatus::Failed { message: detail.unwrap_or_default() },
        (None, Some(_)) => FlowStatus::Pending { seconds_left: 0 },
        (None, None) => {
            let left_ms = expires_at - now_ms();
            if left_ms < 0 {
                // Nobody came back in time: close the flow so a late callback is refused.
                sqlx::query(
                    "UPDATE oauth_pending SET consumed_at = $1, outcome = $2 WHERE state = $3 AND consumed_at IS NULL",
                )
                .bind(now_ms())
                .bind(FlowOutcome::Expired.as_str())
                .bind(flow)
                .execute(&state.db.pool)
                .await?;
                FlowStatus::Expired
            } else {
                FlowStatus::Pending { seconds_left: (left_ms + 999) / 1000 }
            }
        }
    })
}

/// A random flow id that is not a `state` (for tests that forge callbacks).
pub fn forged_state() -> String {
    random_token(43)
}

/// Whether `s` can be a flow's `state` at all (before it is looked up).
pub(super) fn is_flow_state(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200
}

closed_set! {
    /// How a flow ended, as `oauth_pending.outcome` stores it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FlowOutcome ("outcome", "flow outcome") {
        Connected = "connected", "Connected";
        Expired = "expired", "Expired";
        Denied = "denied", "Denied";
        Cancelled = "cancelled", "Cancelled";
        Failed = "failed", "Failed";
    }
}

/// Cancels the caller's unfinished flow `flow` (Cancel in the dialog): it is consumed, so a
/// consent given afterwards finds nothing to finish. A flow that already ended keeps its
/// outcome, which is answered.
#[tracing::instrument(skip_all)]
pub async fn cancel(state: &AppState, user: &SessionUser, flow: &str) -> AppResult<FlowStatus> {
    sqlx::query(
        "UPDATE oauth_pending SET consumed_at = $1, outcome = $2 WHERE state = $3 AND user_id = $4 AND consumed_at IS NULL",
    )
    .bind(now_ms())
    .bind(FlowOutcome::Cancelled.as_str())
    .bind(flow)
    .bind(user.id)
    .execute(&state.db.pool)
    .await?;
    flow_status(state, user, flow).await
}
