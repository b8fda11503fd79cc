//! Custom OAuth2 connectors and their authorization server: RFC 8414 metadata (or OpenID
//! discovery) fills the endpoints a builder left empty and says whether authorization responses
//! carry `iss` (RFC 9207); server-to-server endpoints must be `https://` unless allowlisted.
//! Checked when the connector is saved, so a builder hears about a bad URL at once.

use super::ValidatedConnector;
use crate::error::{AppError, AppResult};
use crate::ssr::outbound::OutboundError;
use crate::ssr::AppState;
use serde::Deserialize;

/// The fields of an authorization server's metadata this server uses.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Where the metadata may be: the URL the builder gave, or the well-known places under the issuer.
fn metadata_urls(v: &ValidatedConnector) -> Vec<String> {
    match (&v.discovery_url, &v.config.issuer) {
        (Some(url), _) => vec![url.clone()],
        (None, Some(issuer)) => vec![
            format!("{issuer}/.well-known/oauth-authorization-server"),
            format!("{issuer}/.well-known/openid-configuration"),
        ],
        (None, None) => vec![],
    }
}

async fn read_metadata(state: &AppState, v: &ValidatedConnector) -> AppResult<Option<Metadata>> {
    let explicit = v.discovery_url.is_some();
    let mut last_problem = None;
    for raw in metadata_urls(v) {
        let url = url::Url::parse(&raw).map_err(|_| AppError::invalid("discovery_url", "Enter a full https URL."))?;
        match state.outbound.get_json(&url).await {
            Ok(doc) => {
                let meta: Metadata = serde_json::from_value(doc).map_err(|_| {
                    AppError::invalid("discovery_url", format!("{raw} is not an authorization server's metadata."))
                })?;
                return Ok(Some(meta));
            }
            Err(OutboundError::Refused(why)) => return Err(AppError::invalid(field(explicit), why)),
            Err(e) => last_problem = Some(format!("{raw}: {e}")),
        }
    }
    match last_problem {
        // A metadata URL the builder named must work; an issuer alone may have none.
        Some(problem) if explicit => {
            Err(AppError::invalid("discovery_url", format!("The metadata could not be read ({problem}).")))
        }
        _ => Ok(None),
    }
}

fn field(explicit: bool) -> &'static str {
    if explicit {
        "discovery_url"
    } else {
        "issuer"
    }
}

/// Fills empty endpoints and the issuer from the server's metadata, then checks that every
/// server-to-server endpoint may be called.
pub async fn complete_endpoints(state: &AppState, v: &mut ValidatedConnector) -> AppResult<()> {
    if let Some(meta) = read_metadata(state, v).await? {
        // RFC 8414 §3.3: the metadata's issuer must be the one it was asked for.
        if let Some(expected) = &v.config.issuer {
            if !same_issuer(expected, &meta.issuer) {
                return Err(AppError::invalid(
                    "issuer",
                    format!("The service's metadata names another issuer ({}).", meta.issuer),
                ));
            }
        }
        let cfg = &mut v.config;
        cfg.issuer = Some(meta.issuer.trim_end_matches('/').to_string());
        cfg.iss_parameter_supported = meta.authorization_response_iss_parameter_supported;
        cfg.authorize_url = cfg.authorize_url.take().or(meta.authorization_endpoint);
        cfg.token_url = cfg.token_url.take().or(meta.token_endpoint);
        cfg.revoke_url = cfg.revoke_url.take().or(meta.revocation_endpoint);
    }
    let cfg = &v.config;
    if cfg.token_url.is_none() {
        return Err(AppError::invalid("token_url", "Enter the token URL (the service's metadata did not give one)."));
    }
    if cfg.grant_type == crate::connectors::GrantType::AuthorizationCode && cfg.authorize_url.is_none() {
        return Err(AppError::invalid(
            "authorize_url",
            "Enter the authorization URL (the service's metadata did not give one).",
        ));
    }
    for (name, url) in
        [("token_url", &cfg.token_url), ("refresh_url", &cfg.refresh_url), ("revoke_url", &cfg.revoke_url)]
    {
        if let Some(raw) = url {
            let parsed = url::Url::parse(raw).map_err(|_| AppError::invalid(name, "Enter a full https URL."))?;
            state.outbound.check_oauth_endpoint(&parsed).map_err(|e| AppError::invalid(name, e.to_string()))?;
        }
    }
    Ok(())
}
