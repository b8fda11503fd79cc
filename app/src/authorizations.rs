//! Authorizing connections (seed 002 steps 9–12, "Reuse authorization", "Use different
//! authorizations for different environments", "Reauthorize connection"; seed 000 §5–6).
//!
//! OAuth2 uses the authorization code grant with PKCE (S256) and `state` (the `oauth2` crate).
//! The pending flow lives in the database, so the callback may land on any replica; it is
//! refused after the authorization window (90 s), on reuse, on an unknown `state`, for another
//! signed-in user, and on a wrong or missing `iss` where the provider advertises it (RFC 9207).

use crate::domain::Environment;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The credentials a person types (only the ones the connector's auth type needs are read).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsInput {
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsInput(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizeOutcome {
    /// Stored; the connection works now.
    Authorized { account_name: String },
    /// Open `authorize_url` (the provider's page) and finish within `window_secs`.
    Redirect { flow: String, authorize_url: String, window_secs: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowStatus {
    Pending { seconds_left: i64 },
    Connected { account_name: String },
    Expired,
    Denied,
    Failed { message: String },
}

impl FlowStatus {
    pub fn message(&self) -> String {
        match self {
            FlowStatus::Pending { seconds_left } => format!("Waiting for you to grant access ({seconds_left} s left)."),
            FlowStatus::Connected { account_name } => format!("Connected as {account_name}."),
            FlowStatus::Expired => "The 90-second authorization window expired. Click Authorize to try again.".into(),
            FlowStatus::Denied => {
                "Access was denied on the service's page, so the connection was not authorized.".into()
            }
            FlowStatus::Failed { message } => message.clone(),
        }
    }
}

/// An account the caller authorized before for the same service and configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOption {
    pub id: i64,
    /// The account's name, or for accounts from before names existed, the connection's name.
    pub label: String,
    /// True for accounts without a name: one must be given when it is picked.
    pub needs_name: bool,
}

#[server(prefix = "/api", endpoint = "authorize_connection")]
pub async fn authorize_connection(
    connection_id: i64,
    account_name: String,
    #[server(default)] environments: Vec<Environment>,
    #[server(default)] credentials: CredentialsInput,
    #[server(default)] replace: bool,
) -> Result<AuthorizeOutcome, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::authorize(&state, &user, ssr::Request { connection_id, account_name, environments, credentials, replace })
        .await
}

#[server(prefix = "/api", endpoint = "authorization_status")]
pub async fn authorization_status(flow: String) -> Result<FlowStatus, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::flow_status(&state, &user, &flow).await
}

/// Finishes an OAuth2 flow in the window that started it, with the provider's answer the
/// popup handed over: when the panel is embedded on another site, its session lives in the
/// frame, so the popup (a top-level window) has no session of its own to finish with.
#[server(prefix = "/api", endpoint = "complete_authorization")]
pub async fn complete_authorization(
    flow: String,
    #[server(default)] code: Option<String>,
    #[server(default)] iss: Option<String>,
    #[server(default)] error: Option<String>,
    #[server(default)] error_description: Option<String>,
) -> Result<FlowStatus, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    let params = ssr::CallbackParams { state: Some(flow), code, iss, error, error_description };
    Ok(ssr::finish(&state, Some(&user), params).await)
}

#[server(prefix = "/api", endpoint = "reusable_accounts")]
pub async fn reusable_accounts(connection_id: i64) -> Result<Vec<AccountOption>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::reusable_accounts(&state, &user, connection_id).await
}

#[server(prefix = "/api", endpoint = "reuse_account")]
pub async fn reuse_account(
    connection_id: i64,
    account_id: i64,
    #[server(default)] environments: Vec<Environment>,
    #[server(default)] account_name: Option<String>,
) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::reuse_account(&state, &user, connection_id, account_id, environments, account_name).await
}

/// Renames the authorized account a connection uses in `environment` (the edit icon beside the
/// account name in the panel).
#[server(prefix = "/api", endpoint = "rename_account")]
pub async fn rename_account(connection_id: i64, environment: Environment, name: String) -> Result<String, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::rename_account(&state, &user, connection_id, environment, &name).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::connections::ssr::{load as load_connection, Connection};
    use crate::connectors::ssr::{load as load_connector, Connector};
    use crate::domain::{AuthType, ConnectionType, DisplayName};
    use crate::error::AppResult;
    use crate::operations::ssr::{record, Level};
    use crate::policy::{decide, Action, Decision};
    use crate::ssr::ids::{now_ms, random_token};
    use crate::ssr::outbound::OutboundError;
    use crate::ssr::AppState;
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier,
        RedirectUrl, RequestTokenError, TokenResponse, TokenUrl,
    };

    /// Stored credentials (encrypted at rest). `Debug` never shows them.
    #[derive(Clone, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum Credentials {
        OAuth2 {
            access_token: String,
            refresh_token: Option<String>,
            expires_at: Option<i64>,
            #[serde(default)]
            issued_at: Option<i64>,
        },
        ApiKey {
            key: String,
        },
        Basic {
            username: String,
            password: String,
        },
    }

    impl std::fmt::Debug for Credentials {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let kind = match self {
                Credentials::OAuth2 { .. } => "OAuth2",
                Credentials::ApiKey { .. } => "ApiKey",
                Credentials::Basic { .. } => "Basic",
            };
            write!(f, "Credentials::{kind}(<redacted>)")
        }
    }

    pub fn account_aad(id: i64) -> Vec<u8> {
        format!("authorized_accounts:{id}").into_bytes()
    }

    pub(crate) fn pending_aad(state: &str) -> Vec<u8> {
        format!("oauth_pending:{state}").into_bytes()
    }

    #[derive(Debug)]
    pub struct Request {
        pub connection_id: i64,
        pub account_name: String,
        pub environments: Vec<Environment>,
        pub credentials: CredentialsInput,
        pub replace: bool,
    }

    /// The caller may authorize this connection, or is told whom to ask.
    pub fn ensure_may_authorize(user: &SessionUser, conn: &Connection) -> AppResult<()> {
        match decide(user.role, conn.conn_type, Action::Authorize, conn.policy_context()) {
            Decision::Allowed | Decision::Prompt => Ok(()),
            Decision::ContactAdmin(who) => Err(AppError::forbidden(who.message())),
            Decision::Denied => Err(AppError::forbidden("You cannot authorize this connection.")),
        }
    }

    /// The environments an authorization applies to: all of them, locked together, when the
    /// connection uses the same authorization everywhere.
    pub fn environments_for(conn: &Connection, chosen: &[Environment]) -> AppResult<Vec<Environment>> {
        if conn.same_for_all_envs {
            return Ok(Environment::ALL.to_vec());
        }
        let mut envs: Vec<Environment> = chosen.to_vec();
        envs.sort();
        envs.dedup();
        if envs.is_empty() {
            return Err(AppError::invalid("environments", "Choose at least one environment."));
        }
        Ok(envs)
    }

    /// Who an authorization belongs to: each user for logged-in-user connections, else shared.
    pub fn subject_for(conn: &Connection, user: &SessionUser) -> i64 {
        if conn.conn_type == ConnectionType::LoggedInUser {
            user.id
        } else {
            0
        }
    }

    /// Accounts are reusable across connections of the same service and configuration.
    pub fn config_key(connector: &Connector, scopes: &str) -> String {
        let mut s: Vec<&str> = scopes.split_whitespace().collect();
        s.sort_unstable();
        format!("{}|{}|{}", connector.id, s.join(" "), connector.config.api_base.as_deref().unwrap_or(""))
    }

    #[tracing::instrument(skip_all, fields(connection_id = req.connection_id, user_id = user.id))]
    pub async fn authorize(state: &AppState, user: &SessionUser, req: Request) -> AppResult<AuthorizeOutcome> {
        let conn = load_connection(state, user.workspace_id, req.connection_id).await?;
        ensure_may_authorize(user, &conn)?;
        let name = DisplayName::parse("account_name", &req.account_name)?;
        let envs = environments_for(&conn, &req.environments)?;
        let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
        let creds = match connector.auth_type {
            AuthType::ApiKey => {
                let key = req.credentials.api_key.trim();
                if key.is_empty() || key.len() > 4096 {
                    return Err(AppError::invalid("api_key", "Enter the API key."));
                }
                Credentials::ApiKey { key: key.to_string() }
            }
            AuthType::Basic => {
                let (u, p) = (req.credentials.username.trim(), &req.credentials.password);
                if u.is_empty() || u.len() > 500 {
                    return Err(AppError::invalid(
                        "username",
                        format!("Enter the {}.", connector.config.username_label().to_lowercase()),
                    ));
                }
                if p.is_empty() || p.len() > 4096 {
                    return Err(AppError::invalid(
                        "password",
                        format!("Enter the {}.", connector.config.password_label().to_lowercase()),
                    ));
                }
                Credentials::Basic { username: u.to_string(), password: p.clone() }
            }
            AuthType::OAuth2 if connector.config.grant_type == "client_credentials" => {
                client_credentials(state, &connector, &conn).await?
            }
            AuthType::OAuth2 => return start_oauth(state, user, &conn, &connector, name, envs, req.replace).await,
        };
        store_authorization(state, user, &conn, &connector, name.as_str(), &creds, &envs).await?;
        Ok(AuthorizeOutcome::Authorized { account_name: name.to_string() })
    }

    fn redirect_uri(state: &AppState) -> String {
        format!("{}/oauth/callback", state.settings.public_url())
    }

    fn missing(what: &str) -> AppError {
        AppError::Upstream(format!(
            "This connector is not fully configured on this server ({what} is missing). Ask your admin."
        ))
    }

    fn bad_url(what: &str) -> AppError {
        AppError::Upstream(format!("This connector's {what} is not a valid URL. Ask your admin to fix the connector."))
    }

    async fn start_oauth(
        state: &AppState,
        user: &SessionUser,
        conn: &Connection,
        connector: &Connector,
        name: DisplayName,
        envs: Vec<Environment>,
        replace: bool,
    ) -> AppResult<AuthorizeOutcome> {
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

    fn oauth_client(
        connector: &Connector,
    ) -> AppResult<
        oauth2::Client<
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
        >,
    > {
        let cfg = &connector.config;
        let token_url = cfg.token_url.clone().ok_or_else(|| missing("token URL"))?;
        let mut client = BasicClient::new(ClientId::new(cfg.client_id.clone().ok_or_else(|| missing("client ID"))?))
            .set_token_uri(TokenUrl::new(token_url).map_err(|_| bad_url("token URL"))?)
            .set_auth_type(if cfg.client_auth == "query" {
                oauth2::AuthType::RequestBody
            } else {
                oauth2::AuthType::BasicAuth
            });
        if let Some(secret) = &connector.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(client)
    }

    fn token_error(e: RequestTokenError<OutboundError, oauth2::basic::BasicErrorResponse>) -> AppError {
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

    fn credentials_from(token: &oauth2::basic::BasicTokenResponse, previous_refresh: Option<String>) -> Credentials {
        let now = now_ms();
        Credentials::OAuth2 {
            access_token: token.access_token().secret().clone(),
            refresh_token: token.refresh_token().map(|r| r.secret().clone()).or(previous_refresh),
            expires_at: token.expires_in().map(|d| now + d.as_millis() as i64),
            issued_at: Some(now),
        }
    }

    async fn client_credentials(state: &AppState, connector: &Connector, conn: &Connection) -> AppResult<Credentials> {
        let client = oauth_client(connector)?;
        let mut req = client.exchange_client_credentials();
        for s in conn.scopes.split_whitespace() {
            req = req.add_scope(oauth2::Scope::new(s.to_string()));
        }
        let token = req.request_async(&state.outbound).await.map_err(token_error)?;
        Ok(credentials_from(&token, None))
    }

    /// Stores an authorized account and maps it to the connection for `envs`, in one
    /// transaction. Earlier mappings for those environments are replaced at once.
    pub async fn store_authorization(
        state: &AppState,
        user: &SessionUser,
        conn: &Connection,
        connector: &Connector,
        name: &str,
        creds: &Credentials,
        envs: &[Environment],
    ) -> AppResult<i64> {
        let plaintext = serde_json::to_vec(creds).map_err(|e| AppError::internal("credentials", e))?;
        let expires_at = creds.expires_at();
        let now = now_ms();
        let mut tx = state.db.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO authorized_accounts (workspace_id, connector_id, config_key, owner_user_id, name, credentials_ct,
                                              access_expires_at, authorized_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(user.workspace_id)
        .bind(connector.id)
        .bind(config_key(connector, &conn.scopes))
        .bind(user.id)
        .bind(name)
        .bind(Vec::<u8>::new())
        .bind(expires_at)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE authorized_accounts SET credentials_ct = $1 WHERE id = $2")
            .bind(state.cipher.encrypt(&account_aad(id), &plaintext))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        map_account(&mut tx, conn, user, id, envs, now).await?;
        tx.commit().await?;
        record(
            &state.db,
            Some(user.workspace_id),
            Level::Info,
            "authorized",
            Some(user.id),
            Some(conn.id),
            Some(&envs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")),
            &format!("account {name}"),
        )
        .await;
        Ok(id)
    }

    async fn map_account(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        conn: &Connection,
        user: &SessionUser,
        account_id: i64,
        envs: &[Environment],
        now: i64,
    ) -> AppResult<()> {
        for env in envs {
            sqlx::query(
                "INSERT INTO connection_authorizations (connection_id, environment, subject_user_id, account_id, authorized_by, authorized_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (connection_id, environment, subject_user_id)
                 DO UPDATE SET account_id = excluded.account_id, authorized_by = excluded.authorized_by,
                               authorized_at = excluded.authorized_at",
            )
            .bind(conn.id)
            .bind(env.as_str())
            .bind(subject_for(conn, user))
            .bind(account_id)
            .bind(user.id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "DELETE FROM revoked_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
            )
            .bind(conn.id)
            .bind(env.as_str())
            .bind(subject_for(conn, user))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// The query parameters the provider sends back to the redirect URI.
    #[derive(Debug, Default, Deserialize)]
    pub struct CallbackParams {
        pub state: Option<String>,
        pub code: Option<String>,
        pub iss: Option<String>,
        pub error: Option<String>,
        pub error_description: Option<String>,
    }

    /// Finishes an OAuth2 flow. Every refusal is final: the pending row is consumed first, so
    /// a second callback with the same `state` (a replay) finds nothing to finish.
    #[tracing::instrument(skip_all)]
    pub async fn finish(state: &AppState, user: Option<&SessionUser>, params: CallbackParams) -> FlowStatus {
        let Some(flow) = params.state.clone().filter(|s| is_flow_state(s)) else {
            return FlowStatus::Failed {
                message: "This authorization answer has no valid state; it was ignored.".into(),
            };
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
            record(
                &state.db,
                workspace,
                Level::Warn,
                "oauth_failed",
                Some(user_id),
                Some(connection_id),
                None,
                &status.message(),
            )
            .await;
        }
        let (outcome, detail) = match &status {
            FlowStatus::Connected { account_name } => ("connected", account_name.clone()),
            FlowStatus::Expired => ("expired", String::new()),
            FlowStatus::Denied => ("denied", String::new()),
            FlowStatus::Failed { message } => ("failed", message.clone()),
            FlowStatus::Pending { .. } => ("failed", "unexpected".into()),
        };
        if let Err(e) = sqlx::query("UPDATE oauth_pending SET outcome = $1, outcome_detail = $2 WHERE state = $3")
            .bind(outcome)
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
                message:
                    "This authorization was started by someone else (or you signed out). Start again from Authorize."
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
        let envs: Vec<Environment> =
            pending.environments.split(',').filter_map(|e| Environment::parse(e).ok()).collect();
        let creds = credentials_from(&token, None);
        store_authorization(state, user, &conn, &connector, &pending.account_name, &creds, &envs).await?;
        Ok(FlowStatus::Connected { account_name: pending.account_name })
    }

    /// The state of a flow the caller started.
    pub async fn flow_status(state: &AppState, user: &SessionUser, flow: &str) -> AppResult<FlowStatus> {
        let row: Option<(i64, i64, Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT user_id, expires_at, consumed_at, outcome, outcome_detail FROM oauth_pending WHERE state = $1",
        )
        .bind(flow)
        .fetch_optional(&state.db.pool)
        .await?;
        let Some((owner, expires_at, consumed_at, outcome, detail)) = row.filter(|r| r.0 == user.id) else {
            return Err(AppError::not_found("There is no such authorization in progress."));
        };
        let _ = owner;
        Ok(match (outcome.as_deref(), consumed_at) {
            (Some("connected"), _) => FlowStatus::Connected { account_name: detail.unwrap_or_default() },
            (Some("expired"), _) => FlowStatus::Expired,
            (Some("denied"), _) => FlowStatus::Denied,
            (Some(_), _) => FlowStatus::Failed { message: detail.unwrap_or_default() },
            (None, Some(_)) => FlowStatus::Pending { seconds_left: 0 },
            (None, None) => {
                let left_ms = expires_at - now_ms();
                if left_ms < 0 {
                    // Nobody came back in time: close the flow so a late callback is refused.
                    sqlx::query(
                        "UPDATE oauth_pending SET consumed_at = $1, outcome = 'expired' WHERE state = $2 AND consumed_at IS NULL",
                    )
                    .bind(now_ms())
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

    /// Accounts the caller authorized before for the same service and configuration.
    pub async fn reusable_accounts(
        state: &AppState,
        user: &SessionUser,
        connection_id: i64,
    ) -> AppResult<Vec<AccountOption>> {
        let conn = load_connection(state, user.workspace_id, connection_id).await?;
        let connector = load_connector(state, user.workspace_id, conn.connector_id).await?;
        let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT a.id, a.name,
                    (SELECT c.display_name FROM connection_authorizations ca JOIN connections c ON c.id = ca.connection_id
                      WHERE ca.account_id = a.id ORDER BY c.id LIMIT 1)
             FROM authorized_accounts a
             WHERE a.owner_user_id = $1 AND a.config_key = $2 AND a.status = 'connected'
             ORDER BY a.authorized_at DESC",
        )
        .bind(user.id)
        .bind(config_key(&connector, &conn.scopes))
        .fetch_all(&state.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, conn_name)| AccountOption {
                id,
                needs_name: name.is_none(),
                label: name.or(conn_name).unwrap_or_else(|| format!("Account {id}")),
            })
            .collect())
    }

    pub async fn reuse_account(
        state: &AppState,
        user: &SessionUser,
        connection_id: i64,
        account_id: i64,
        environments: Vec<Environment>,
        account_name: Option<String>,
    ) -> AppResult<()> {
        let conn = load_connection(state, user.workspace_id, connection_id).await?;
        ensure_may_authorize(user, &conn)?;
        let envs = environments_for(&conn, &environments)?;
        let options = reusable_accounts(state, user, connection_id).await?;
        let option = options
            .into_iter()
            .find(|o| o.id == account_id)
            .ok_or_else(|| AppError::not_found("That account cannot be reused for this connection."))?;
        let now = now_ms();
        let mut tx = state.db.pool.begin().await?;
        if option.needs_name {
            let name = DisplayName::parse("account_name", account_name.as_deref().unwrap_or("")).map_err(|_| {
                AppError::invalid("account_name", "This account has no name yet. Give it one to reuse it.")
            })?;
            sqlx::query("UPDATE authorized_accounts SET name = $1 WHERE id = $2")
                .bind(name.as_str())
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        map_account(&mut tx, &conn, user, account_id, &envs, now).await?;
        tx.commit().await?;
        record(
            &state.db,
            Some(user.workspace_id),
            Level::Info,
            "authorization_reused",
            Some(user.id),
            Some(conn.id),
            Some(&envs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")),
            &format!("account {}", option.label),
        )
        .await;
        Ok(())
    }

    /// The credentials the connection uses for `user` in `env`, decrypted.
    pub async fn credentials_for(
        state: &AppState,
        conn: &Connection,
        user: &SessionUser,
        env: Environment,
    ) -> AppResult<Option<(i64, Credentials)>> {
        let row: Option<(i64, Vec<u8>, String)> = sqlx::query_as(
            "SELECT a.id, a.credentials_ct, a.status FROM connection_authorizations ca
             JOIN authorized_accounts a ON a.id = ca.account_id
             WHERE ca.connection_id = $1 AND ca.environment = $2 AND ca.subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject_for(conn, user))
        .fetch_optional(&state.db.pool)
        .await?;
        let Some((id, ct, status)) = row.filter(|r| r.2 == "connected") else {
            return Ok(None);
        };
        let _ = status;
        let plain = state.cipher.decrypt(&account_aad(id), &ct).map_err(|e| AppError::internal("credentials", e))?;
        let creds = serde_json::from_slice(&plain).map_err(|e| AppError::internal("credentials", e))?;
        Ok(Some((id, creds)))
    }

    /// A random flow id that is not a `state` (for tests that forge callbacks).
    pub fn forged_state() -> String {
        random_token(43)
    }

    impl Credentials {
        /// The OAuth2 access token, if these are OAuth2 credentials.
        pub fn access_token(&self) -> Option<&str> {
            match self {
                Credentials::OAuth2 { access_token, .. } => Some(access_token),
                _ => None,
            }
        }

        /// When the OAuth2 access token expires (Unix ms), if known.
        pub fn expires_at(&self) -> Option<i64> {
            match self {
                Credentials::OAuth2 { expires_at, .. } => *expires_at,
                _ => None,
            }
        }

        /// Whether an OAuth2 access token should be refreshed before use: it expires within 30
        /// seconds, or within the last quarter of its lifetime for short-lived tokens.
        pub fn expiring(&self, now: i64) -> bool {
            match self {
                Credentials::OAuth2 { expires_at: Some(exp), issued_at, .. } => {
                    let lifetime = issued_at.map_or(i64::MAX, |i| exp - i);
                    *exp - now < 30_000.min(lifetime / 4)
                }
                _ => false,
            }
        }
    }

    /// Why an authorization needs re-authorization (shown to people after "Needs
    /// reauthorization: ").
    pub mod reason {
        pub const REFRESH_REJECTED: &str = "refresh token revoked or expired";
        pub const NO_REFRESH_TOKEN: &str = "access token expired (no refresh token)";
        pub const INTERRUPTED: &str = "a token refresh was interrupted and the refresh token no longer works";
        pub const UNREACHABLE: &str = "provider unreachable";
    }

    /// Consecutive refreshes that fail because the provider cannot be reached before the
    /// authorization shows "needs re-authorization: provider unreachable". One network blip only
    /// fails that call. The refresh token is kept, so the next call after the provider is back
    /// refreshes and the authorization heals itself (logged as `reconnected`); re-authorizing
    /// fixes it too.
    pub const UNREACHABLE_LIMIT: i64 = 3;

    /// In-process coalescing of token refreshes: concurrent callers in one process share one
    /// refresh per account, and only that one takes part in the cross-replica database lease.
    #[derive(Debug, Default)]
    pub struct Refreshes {
        flights: crate::ssr::single_flight::SingleFlight<i64, AppResult<Credentials>>,
        lease_attempts: std::sync::atomic::AtomicU64,
    }

    impl Refreshes {
        /// How many times this process tried to take a refresh lease in the database.
        pub fn lease_attempts(&self) -> u64 {
            self.lease_attempts.load(std::sync::atomic::Ordering::Relaxed)
        }

        /// How many refreshes this process started (callers that joined one are not counted).
        pub fn runs(&self) -> u64 {
            self.flights.runs()
        }
    }

    struct AccountRow {
        workspace_id: i64,
        creds: Credentials,
        status: String,
        reason: Option<String>,
        refresh_started_at: Option<i64>,
    }

    impl AccountRow {
        /// Unreachable-provider accounts keep their tokens and may still refresh.
        fn may_refresh(&self) -> bool {
            self.status == "connected"
                || (self.status == "needs_reauthorization" && self.reason.as_deref() == Some(reason::UNREACHABLE))
        }
    }

    async fn read_account(state: &AppState, account_id: i64) -> AppResult<AccountRow> {
        let (workspace_id, ct, status, reason, refresh_started_at): (
            i64,
            Vec<u8>,
            String,
            Option<String>,
            Option<i64>,
        ) = sqlx::query_as(
            "SELECT workspace_id, credentials_ct, status, status_reason, refresh_started_at
                 FROM authorized_accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(needs_reauthorization)?;
        let plain =
            state.cipher.decrypt(&account_aad(account_id), &ct).map_err(|e| AppError::internal("credentials", e))?;
        let creds = serde_json::from_slice(&plain).map_err(|e| AppError::internal("credentials", e))?;
        Ok(AccountRow { workspace_id, creds, status, reason, refresh_started_at })
    }

    /// The credentials a call may use for `user` in `env`, and whether they must be refreshed
    /// before use (the provider was unreachable at the last refreshes).
    pub async fn usable_credentials(
        state: &AppState,
        conn: &Connection,
        user: &SessionUser,
        env: Environment,
    ) -> AppResult<Option<(i64, Credentials, bool)>> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT account_id FROM connection_authorizations
             WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject_for(conn, user))
        .fetch_optional(&state.db.pool)
        .await?;
        let Some(id) = id else { return Ok(None) };
        let row = read_account(state, id).await?;
        if !row.may_refresh() {
            return Ok(None);
        }
        let refresh_first = row.status != "connected";
        Ok(Some((id, row.creds, refresh_first)))
    }

    /// Why the connection has no usable authorization for `user` in `env`, when it had one:
    /// "needs reauthorization: <reason>" or "revoked". `None` when it was never authorized.
    pub async fn unusable_status(
        state: &AppState,
        conn: &Connection,
        user: &SessionUser,
        env: Environment,
    ) -> AppResult<Option<crate::connections::Status>> {
        use crate::connections::Status;
        let subject = subject_for(conn, user);
        let status: Option<String> = sqlx::query_scalar(
            "SELECT a.status FROM connection_authorizations ca JOIN authorized_accounts a ON a.id = ca.account_id
             WHERE ca.connection_id = $1 AND ca.environment = $2 AND ca.subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject)
        .fetch_optional(&state.db.pool)
        .await?;
        if let Some(status) = status {
            return Ok(Some(Status::from_db(Some(&status))).filter(|s| *s != Status::Connected));
        }
        let revoked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM revoked_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject)
        .fetch_one(&state.db.pool)
        .await?;
        Ok((revoked > 0).then_some(Status::Revoked))
    }

    /// Refreshes an OAuth2 account's access token after `used` stopped working (or is about
    /// to). Callers in this process share one refresh per account (see [`Refreshes`]); that
    /// refresh runs to completion even if its callers go away. Across replicas, exactly one
    /// refresh per account runs at a time: the lease is a database row with an owner and an
    /// expiry, released only by its owner. Waiters re-read the stored token instead of
    /// refreshing again. A rotated refresh token is saved in the same transaction as the new
    /// access token; when the answer carries none, the old one is kept.
    #[tracing::instrument(skip_all, fields(account_id))]
    pub async fn refresh_account(
        state: &AppState,
        connector: &Connector,
        account_id: i64,
        used: &str,
    ) -> AppResult<Credentials> {
        let mut result = Err(needs_reauthorization());
        // A refresh already in flight may have started from an older token and answer with
        // `used` itself; then one more is needed.
        for _ in 0..2 {
            let (st, conn, token) = (state.clone(), connector.clone(), used.to_owned());
            result = state
                .refreshes
                .flights
                .run(account_id, move || async move { refresh_with_lease(&st, &conn, account_id, &token).await })
                .await
                .unwrap_or_else(|| Err(AppError::Upstream("The token refresh failed. Try again.".into())));
            match &result {
                Ok(c) if c.access_token() == Some(used) => continue,
                _ => return result,
            }
        }
        result
    }

    async fn refresh_with_lease(
        state: &AppState,
        connector: &Connector,
        account_id: i64,
        used: &str,
    ) -> AppResult<Credentials> {
        let owner = random_token(16);
        let lease_ms = state.settings.refresh_lease_ms;
        // The holder renews its lease while the provider answers, so a waiter may wait for a
        // whole token request (its timeout is 20 s), not just one lease.
        let deadline = now_ms() + lease_ms.max(20_000) + 10_000;
        let db_now = state.db.backend.now_ms_sql();
        loop {
            let current = read_account(state, account_id).await?;
            if !current.may_refresh() {
                return Err(needs_reauthorization());
            }
            if current.creds.access_token().is_some_and(|t| t != used) && current.status == "connected" {
                return Ok(current.creds); // someone else refreshed meanwhile
            }
            state.refreshes.lease_attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Taken, and judged expired, by the database's clock: replicas' clocks may differ.
            let acquired = sqlx::query(&format!(
                "INSERT INTO refresh_leases (account_id, owner, expires_at) VALUES ($1, $2, {db_now} + $3)
                 ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE refresh_leases.expires_at <= {db_now}"
            ))
            .bind(account_id)
            .bind(&owner)
            .bind(lease_ms)
            .execute(&state.db.pool)
            .await?
            .rows_affected()
                == 1;
            if acquired {
                let held = refresh_holding_lease(state, connector, account_id, used, &owner).await;
                if let Err(e) = sqlx::query("DELETE FROM refresh_leases WHERE account_id = $1 AND owner = $2")
                    .bind(account_id)
                    .bind(&owner)
                    .execute(&state.db.pool)
                    .await
                {
                    tracing::warn!(error = %e, "could not release the refresh lease (it expires by itself)");
                }
                match held {
                    Held::Done(result) => return result,
                    // Whoever holds the lease now decides; wait for its outcome like any waiter.
                    Held::LeaseLost => {}
                }
            }
            if now_ms() > deadline {
                return Err(AppError::Upstream("The token could not be refreshed in time. Try again.".into()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// How a refresh under a lease ended.
    enum Held {
        Done(AppResult<Credentials>),
        /// The lease ran out (by the database's clock) or was taken over before the answer was
        /// stored; nothing was written.
        LeaseLost,
    }

    /// What [`store_refreshed`] did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Stored {
        /// Written; the account's workspace.
        Written(i64),
        /// `owner` no longer holds an unexpired lease: nothing written.
        LeaseLost,
        /// The account was removed or is no longer refreshable (revoked meanwhile): nothing written.
        AccountGone,
    }

    /// Stores refreshed credentials, fenced: only while `owner` holds an unexpired lease on the
    /// account by the database's clock, and only on an account still there and refreshable. The
    /// lease row is updated first, which locks it for the transaction, so a takeover cannot slip
    /// between the check and the write; a revoke deletes the account (and the lease with it) and
    /// either comes before (nothing written here) or after (it revokes what was written).
    pub async fn store_refreshed(
        state: &AppState,
        account_id: i64,
        owner: &str,
        creds: &Credentials,
    ) -> AppResult<Stored> {
        let db_now = state.db.backend.now_ms_sql();
        let plaintext = serde_json::to_vec(creds).map_err(|e| AppError::internal("credentials", e))?;
        let mut tx = state.db.pool.begin().await?;
        let held = sqlx::query(&format!(
            "UPDATE refresh_leases SET expires_at = {db_now} + $1
             WHERE account_id = $2 AND owner = $3 AND expires_at > {db_now}"
        ))
        .bind(state.settings.refresh_lease_ms)
        .bind(account_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held == 0 {
            // Revoking deletes the account and its lease with it: say which happened.
            let refreshable: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM authorized_accounts
                 WHERE id = $1 AND (status = 'connected' OR (status = 'needs_reauthorization' AND status_reason = $2))",
            )
            .bind(account_id)
            .bind(reason::UNREACHABLE)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(if refreshable.is_some() { Stored::LeaseLost } else { Stored::AccountGone });
        }
        let ws: Option<i64> = sqlx::query_scalar(
            "UPDATE authorized_accounts SET credentials_ct = $1, access_expires_at = $2, refresh_started_at = NULL,
                    refresh_failures = 0, status = 'connected', status_reason = NULL
             WHERE id = $3 AND (status = 'connected' OR (status = 'needs_reauthorization' AND status_reason = $4))
             RETURNING workspace_id",
        )
        .bind(state.cipher.encrypt(&account_aad(account_id), &plaintext))
        .bind(creds.expires_at())
        .bind(account_id)
        .bind(reason::UNREACHABLE)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(ws) = ws else {
            tx.rollback().await?;
            return Ok(Stored::AccountGone);
        };
        // The audit entry for the refresh goes in with the tokens: no extra round trip between
        // the store and the callers waiting for it (the level is `Level::Info`'s column value).
        sqlx::query(
            "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
             VALUES ($1, $2, 'info', 'token_refreshed', NULL,
                     (SELECT connection_id FROM connection_authorizations WHERE account_id = $3
                      ORDER BY connection_id, environment LIMIT 1),
                     (SELECT environment FROM connection_authorizations WHERE account_id = $3
                      ORDER BY connection_id, environment LIMIT 1),
                     $4)",
        )
        .bind(ws)
        .bind(now_ms())
        .bind(account_id)
        .bind(format!("account {account_id}: access token refreshed"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Stored::Written(ws))
    }

    /// Extends `owner`'s lease from the database's now; false once it is lost (expired or taken).
    async fn renew_lease(state: &AppState, account_id: i64, owner: &str) -> AppResult<bool> {
        let db_now = state.db.backend.now_ms_sql();
        Ok(sqlx::query(&format!(
            "UPDATE refresh_leases SET expires_at = {db_now} + $1
             WHERE account_id = $2 AND owner = $3 AND expires_at > {db_now}"
        ))
        .bind(state.settings.refresh_lease_ms)
        .bind(account_id)
        .bind(owner)
        .execute(&state.db.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Tokens a refresh obtained but may not store (its lease was lost, or the account was
    /// revoked meanwhile): queued for revocation at the provider in one transaction, then sent.
    /// With rotation the old refresh token is spent already; the next lease holder's refresh
    /// then ends as "needs re-authorization", never as a silently stale "connected".
    async fn revoke_unstored(state: &AppState, connector: &Connector, workspace_id: i64, creds: &Credentials) {
        let target = crate::revocations::ssr::Target { connector_id: connector.id, workspace_id, connection_id: None };
        let queued = async {
            let mut tx = state.db.pool.begin().await?;
            let ids = crate::revocations::ssr::queue_in(&mut tx, state, &target, creds).await?;
            tx.commit().await?;
            AppResult::Ok(ids)
        }
        .await;
        match queued {
            Ok(ids) => crate::revocations::ssr::send_now(state, &ids).await,
            Err(e) => tracing::error!(error = %e, "could not queue the revocation of unstored refreshed tokens"),
        }
    }

    fn needs_reauthorization() -> AppError {
        AppError::AuthorizationRequired {
            connection: String::new(),
            prompt: true,
            message:
                "The authorization stopped working (the service revoked or expired it). Authorize the connection again."
                    .into(),
        }
    }

    fn unreachable() -> AppError {
        AppError::Upstream(
            "The service could not be reached to refresh the access token. Try again in a moment.".into(),
        )
    }

    async fn refresh_holding_lease(
        state: &AppState,
        connector: &Connector,
        account_id: i64,
        used: &str,
        owner: &str,
    ) -> Held {
        match refresh_under_lease(state, connector, account_id, used, owner).await {
            Ok(held) => held,
            Err(e) => Held::Done(Err(e)),
        }
    }

    async fn refresh_under_lease(
        state: &AppState,
        connector: &Connector,
        account_id: i64,
        used: &str,
        owner: &str,
    ) -> AppResult<Held> {
        // Re-read under the lease: the previous holder may have just finished.
        let current = read_account(state, account_id).await?;
        if !current.may_refresh() {
            return Ok(Held::Done(Err(needs_reauthorization())));
        }
        if current.creds.access_token().is_some_and(|t| t != used) && current.status == "connected" {
            return Ok(Held::Done(Ok(current.creds)));
        }
        let ws = Some(current.workspace_id);
        // A previous holder began a refresh and never stored its outcome: it died (or lost
        // its lease) after asking the provider. The refresh token below may be rotated away.
        let interrupted = current.refresh_started_at.is_some();
        if interrupted {
            tracing::warn!(account_id, "an earlier token refresh was interrupted; trying the stored refresh token");
        }
        let Credentials::OAuth2 { refresh_token: Some(refresh), .. } = &current.creds else {
            mark_needs_reauthorization(state, account_id, reason::NO_REFRESH_TOKEN).await?;
            record_refresh_failure(state, account_id, ws, reason::NO_REFRESH_TOKEN).await;
            return Ok(Held::Done(Err(needs_reauthorization())));
        };
        let mut client = oauth_client(connector)?;
        if let Some(url) = &connector.config.refresh_url {
            client = client.set_token_uri(TokenUrl::new(url.clone()).map_err(|_| bad_url("refresh URL"))?);
        }
        // Committed before the provider is asked, so a crash from here to the commit below is
        // seen by the next holder.
        sqlx::query("UPDATE authorized_accounts SET refresh_started_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(account_id)
            .execute(&state.db.pool)
            .await?;
        // Renew the lease every third of its length while the provider answers, so a slow token
        // endpoint does not let another replica replay the refresh token this request spends.
        let presented = oauth2::RefreshToken::new(refresh.clone());
        let exchange = client.exchange_refresh_token(&presented).request_async(&state.outbound);
        tokio::pin!(exchange);
        let period = std::time::Duration::from_millis((state.settings.refresh_lease_ms / 3).max(1) as u64);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut holding = true;
        let answer = loop {
            tokio::select! {
                answer = &mut exchange => break answer,
                _ = renew.tick(), if holding => match renew_lease(state, account_id, owner).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(account_id, "refresh lease lost while the provider was answering");
                        holding = false;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the refresh lease; trying again"),
                },
            }
        };
        let token = match answer {
            Ok(t) => t,
            Err(RequestTokenError::ServerResponse(r)) if r.error().as_ref() == "invalid_grant" => {
                let why = if interrupted { reason::INTERRUPTED } else { reason::REFRESH_REJECTED };
                mark_needs_reauthorization(state, account_id, why).await?;
                record_refresh_failure(state, account_id, ws, why).await;
                return Ok(Held::Done(Err(needs_reauthorization())));
            }
            Err(RequestTokenError::Request(e)) => {
                tracing::warn!(error = %e, "token endpoint unreachable");
                clear_refresh_mark(state, account_id).await?;
                provider_unreachable(state, account_id, &current).await?;
                record_refresh_failure(state, account_id, ws, "the token endpoint could not be reached").await;
                return Ok(Held::Done(Err(unreachable())));
            }
            Err(e) => {
                clear_refresh_mark(state, account_id).await?;
                let e = token_error(e);
                record_refresh_failure(state, account_id, ws, &e.to_string()).await;
                return Ok(Held::Done(Err(e)));
            }
        };
        let creds = credentials_from(&token, Some(refresh.clone()));
        // Only a lease holder writes, judged when writing: one whose lease ran out or was taken
        // over must not overwrite what the next holder does, and a revoked account stays revoked.
        match store_refreshed(state, account_id, owner, &creds).await? {
            Stored::Written(ws) => {
                tracing::info!(account_id, "access token refreshed");
                if current.status != "connected" {
                    record_status(
                        state,
                        account_id,
                        Some(ws),
                        Level::Info,
                        "reconnected",
                        "the provider is reachable again; access token refreshed",
                    )
                    .await;
                }
                Ok(Held::Done(Ok(creds)))
            }
            Stored::LeaseLost => {
                tracing::warn!(account_id, "refresh lease lost before the answer was stored; revoking what it got");
                revoke_unstored(state, connector, current.workspace_id, &creds).await;
                record_refresh_failure(
                    state,
                    account_id,
                    ws,
                    "the refresh lease ran out before the answer was stored; the new tokens were discarded and revoked",
                )
                .await;
                Ok(Held::LeaseLost)
            }
            Stored::AccountGone => {
                tracing::warn!(account_id, "the authorization was revoked during the refresh; revoking what it got");
                revoke_unstored(state, connector, current.workspace_id, &creds).await;
                record_refresh_failure(
                    state,
                    account_id,
                    ws,
                    "the authorization was revoked during the refresh; the new tokens were revoked too",
                )
                .await;
                Ok(Held::Done(Err(needs_reauthorization())))
            }
        }
    }

    async fn clear_refresh_mark(state: &AppState, account_id: i64) -> AppResult<()> {
        sqlx::query("UPDATE authorized_accounts SET refresh_started_at = NULL WHERE id = $1")
            .bind(account_id)
            .execute(&state.db.pool)
            .await?;
        Ok(())
    }

    /// Counts a refresh that could not reach the provider; the last of [`UNREACHABLE_LIMIT`]
    /// in a row turns the status into "needs re-authorization: provider unreachable". (After a
    /// timeout the provider may have rotated the refresh token anyway; the next refresh then
    /// gets `invalid_grant` and the status says so.)
    async fn provider_unreachable(state: &AppState, account_id: i64, current: &AccountRow) -> AppResult<()> {
        let failures: Option<i64> = sqlx::query_scalar(
            "UPDATE authorized_accounts SET refresh_failures = refresh_failures + 1 WHERE id = $1
             RETURNING refresh_failures",
        )
        .bind(account_id)
        .fetch_optional(&state.db.pool)
        .await?;
        if current.status == "connected" && failures.unwrap_or(0) >= UNREACHABLE_LIMIT {
            mark_needs_reauthorization(state, account_id, reason::UNREACHABLE).await?;
        }
        Ok(())
    }

    /// Resolves refreshes that a dead process left in flight (the mark is set and no live
    /// lease covers it), without waiting for a call: each ends with new tokens or as "needs
    /// re-authorization". Returns how many were looked at.
    #[tracing::instrument(skip_all)]
    pub async fn recover_interrupted(state: &AppState) -> AppResult<usize> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT a.id, a.workspace_id, a.connector_id FROM authorized_accounts a
             LEFT JOIN refresh_leases l ON l.account_id = a.id
             WHERE a.refresh_started_at IS NOT NULL AND a.status = 'connected'
               AND (l.account_id IS NULL OR l.expires_at <= {})
             ORDER BY a.id LIMIT 20",
            state.db.backend.now_ms_sql()
        ))
        .fetch_all(&state.db.pool)
        .await?;
        for (id, workspace_id, connector_id) in &rows {
            let connector = match crate::connectors::ssr::load(state, *workspace_id, *connector_id).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(account_id = id, error = %e, "interrupted refresh: connector not loadable");
                    continue;
                }
            };
            let current = read_account(state, *id).await?;
            let used = current.creds.access_token().unwrap_or_default().to_owned();
            match refresh_account(state, &connector, *id, &used).await {
                Ok(_) => tracing::info!(account_id = id, "interrupted refresh recovered with new tokens"),
                Err(e) => {
                    tracing::warn!(account_id = id, error = %e, "interrupted refresh resolved without new tokens")
                }
            }
        }
        Ok(rows.len())
    }

    async fn mark_needs_reauthorization(state: &AppState, account_id: i64, reason: &str) -> AppResult<()> {
        let ws: Option<i64> = sqlx::query_scalar(
            "UPDATE authorized_accounts SET status = 'needs_reauthorization', status_reason = $1, refresh_started_at = NULL
             WHERE id = $2 RETURNING workspace_id",
        )
        .bind(reason)
        .bind(account_id)
        .fetch_optional(&state.db.pool)
        .await?;
        record_status(state, account_id, ws, Level::Warn, "needs_reauthorization", reason).await;
        Ok(())
    }

    /// One Operations entry per failed refresh (not per caller waiting on it) saying why, named
    /// after the first connection using the account; a stored refresh is logged by
    /// [`store_refreshed`] in its transaction. Never a token.
    async fn record_refresh_failure(state: &AppState, account_id: i64, ws: Option<i64>, why: &str) {
        let usage: Option<(i64, String)> = sqlx::query_as(
            "SELECT connection_id, environment FROM connection_authorizations WHERE account_id = $1
             ORDER BY connection_id, environment LIMIT 1",
        )
        .bind(account_id)
        .fetch_optional(&state.db.pool)
        .await
        .unwrap_or_default();
        let (connection, env) = usage.map_or((None, None), |(c, e)| (Some(c), Some(e)));
        let detail = format!("account {account_id}: refresh failed: {why}");
        record(&state.db, ws, Level::Warn, "token_refresh_failed", None, connection, env.as_deref(), &detail).await;
    }

    /// Logs an account's status change once per connection using it, with its environments (so the
    /// Operations page names the connection), or once for the account when nothing uses it.
    async fn record_status(state: &AppState, account_id: i64, ws: Option<i64>, level: Level, kind: &str, detail: &str) {
        let uses: Vec<(i64, String)> = sqlx::query_as(
            "SELECT connection_id, environment FROM connection_authorizations WHERE account_id = $1
             ORDER BY connection_id, environment",
        )
        .bind(account_id)
        .fetch_all(&state.db.pool)
        .await
        .unwrap_or_default();
        let detail = format!("account {account_id}: {detail}");
        if uses.is_empty() {
            record(&state.db, ws, level, kind, None, None, None, &detail).await;
        }
        let mut grouped: Vec<(i64, Vec<String>)> = Vec::new();
        for (connection_id, env) in uses {
            match grouped.last_mut() {
                Some((c, envs)) if *c == connection_id => envs.push(env),
                _ => grouped.push((connection_id, vec![env])),
            }
        }
        for (connection_id, envs) in grouped {
            record(&state.db, ws, level, kind, None, Some(connection_id), Some(&envs.join(",")), &detail).await;
        }
    }

    pub async fn rename_account(
        state: &AppState,
        user: &SessionUser,
        connection_id: i64,
        env: Environment,
        name: &str,
    ) -> AppResult<String> {
        let conn = load_connection(state, user.workspace_id, connection_id).await?;
        if !decide(user.role, conn.conn_type, Action::View, conn.policy_context()).is_allowed() {
            return Err(AppError::not_found("There is no such connection."));
        }
        ensure_may_authorize(user, &conn)?;
        let name = DisplayName::parse("account_name", name)?;
        let account: Option<i64> = sqlx::query_scalar(
            "SELECT account_id FROM connection_authorizations WHERE connection_id = $1 AND environment = $2 AND subject_user_id = $3",
        )
        .bind(conn.id)
        .bind(env.as_str())
        .bind(subject_for(&conn, user))
        .fetch_optional(&state.db.pool)
        .await?;
        let account =
            account.ok_or_else(|| AppError::not_found("This connection has no authorized account here yet."))?;
        sqlx::query("UPDATE authorized_accounts SET name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(account)
            .execute(&state.db.pool)
            .await?;
        record(
            &state.db,
            Some(user.workspace_id),
            Level::Info,
            "account_renamed",
            Some(user.id),
            Some(conn.id),
            Some(env.as_str()),
            name.as_str(),
        )
        .await;
        Ok(name.to_string())
    }

    /// `GET /oauth/callback`: finishes the flow and shows the outcome in the popup, which tells
    /// the page that opened it and closes itself. The page polls the flow status as well, so it
    /// learns the outcome even if the popup was blocked or closed.
    pub async fn callback_handler(
        axum::extract::State(state): axum::extract::State<AppState>,
        session: tower_sessions::Session,
        axum::extract::Query(params): axum::extract::Query<CallbackParams>,
    ) -> axum::response::Response {
        let user = crate::auth::ssr::session_user(&state, &session).await.ok().flatten();
        let flow = params.state.clone().unwrap_or_default();
        let flow_js = serde_json::to_string(
            &flow.chars().filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect::<String>(),
        )
        .unwrap_or_else(|_| "\"\"".into());
        // Started by a session this window does not have (the panel embedded on another site
        // keeps its session in its frame): hand the answer to the window that opened this one,
        // which finishes it with its own session. Nothing is consumed here.
        if pending_owner(&state, &flow).await.is_some_and(|owner| user.as_ref().map(|u| u.id) != Some(owner)) {
            return handoff_page(&flow_js);
        }
        let status = finish(&state, user.as_ref(), params).await;
        let outcome = match &status {
            FlowStatus::Connected { .. } => "connected",
            FlowStatus::Expired => "expired",
            FlowStatus::Denied => "denied",
            FlowStatus::Failed { .. } | FlowStatus::Pending { .. } => "failed",
        };
        let message = escape_html(&status.message());
        popup_page(&format!(
            "<p role=\"status\" data-outcome=\"{outcome}\">{message}</p><p>You can close this window.</p>"
        ), &format!(
            "if(window.opener){{window.opener.postMessage({{type:\"connections:oauth\",flow:{flow_js},outcome:\"{outcome}\"}},location.origin);setTimeout(function(){{window.close()}},1500)}}"
        ))
    }

    /// Whether `s` can be a flow's `state` at all (before it is looked up).
    fn is_flow_state(s: &str) -> bool {
        !s.is_empty() && s.len() <= 200
    }

    /// A page for the authorization popup: `main` after the heading, `script` run guarded; never
    /// cached, and no referrer (its URL carries the provider's answer).
    fn popup_page(main: &str, script: &str) -> axum::response::Response {
        use axum::response::IntoResponse;
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization</title></head>\
             <body><main><h1>Authorization</h1>{main}</main><script>try{{{script}}}catch(e){{}}</script></body></html>"
        );
        let mut res = axum::response::Html(html).into_response();
        res.headers_mut().insert("cache-control", axum::http::HeaderValue::from_static("no-store"));
        res.headers_mut().insert("referrer-policy", axum::http::HeaderValue::from_static("no-referrer"));
        res
    }

    /// Who started the unfinished flow `flow`, if it is one.
    async fn pending_owner(state: &AppState, flow: &str) -> Option<i64> {
        if !is_flow_state(flow) {
            return None;
        }
        sqlx::query_scalar("SELECT user_id FROM oauth_pending WHERE state = $1 AND consumed_at IS NULL")
            .bind(flow)
            .fetch_optional(&state.db.pool)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "could not read the pending oauth flow");
                None
            })
    }

    /// The popup's page when the flow belongs to another session: it posts the provider's
    /// answer (code, iss or error, never shown) to the opener — addressed to this origin only —
    /// whose authorization dialog finishes it with [`super::complete_authorization`].
    fn handoff_page(flow_js: &str) -> axum::response::Response {
        popup_page(
            "<p role=\"status\" data-outcome=\"handoff\" id=\"s\">This authorization was started in another \
             window. Go back to it to finish; if it was not you, start again from Authorize.</p>",
            &format!(
                "var q=new URLSearchParams(location.search),m={{type:\"connections:oauth_handoff\",flow:{flow_js}}};\
                 [\"code\",\"iss\",\"error\",\"error_description\"].forEach(function(k){{if(q.has(k))m[k]=q.get(k)}});\
                 history.replaceState(null,\"\",location.pathname);\
                 if(window.opener){{window.opener.postMessage(m,location.origin);\
                 document.getElementById(\"s\").textContent=\"Finishing in the window you started from…\";\
                 setTimeout(function(){{window.close()}},1500)}}"
            ),
        )
    }

    pub fn escape_html(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }
}
