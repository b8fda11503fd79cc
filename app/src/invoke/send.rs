//! The request on the wire: the connection's credentials placed as its connector says, through
//! the one guarded outbound client, following same-origin redirects hop by hop; and the check of
//! new credentials against the connector's test request.

use super::{InvokeRequest, InvokeResponse};
use crate::authorizations::ssr::Credentials;
use crate::connectors::Placement;
use crate::error::{AppError, AppResult};
use crate::ssr::outbound::Outbound;
use crate::ssr::AppState;

const MAX_RESPONSE_BODY: usize = 4 * 1024 * 1024;
const MAX_HOPS: usize = 5;

/// The `scheme://host:port` of a URL.
pub(super) fn origin(u: &url::Url) -> String {
    format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or_default(), u.port_or_known_default().unwrap_or_default())
}

/// Checks new API-key or basic credentials with the connector's test request (Authorize and
/// Switch), through the same guarded client and credential placement as every call:
/// `Ok(true)` when the service accepts them, `Ok(false)` when the connector declares no test
/// request. Credentials the service refuses (401, 403) are an error on `field` carrying the
/// service's own message; an unreachable or failing service is an upstream error (nothing
/// is saved either way).
#[tracing::instrument(skip_all, fields(connector = %connector.link_name))]
pub async fn verify_credentials(
    state: &AppState,
    connector: &crate::connectors::ssr::Connector,
    creds: &Credentials,
    field: &str,
) -> AppResult<bool> {
    let Some(path) = connector.config.test_url.as_deref().filter(|p| p.starts_with('/')) else {
        return Ok(false);
    };
    let base = connector.config.api_base.as_deref().unwrap_or_default().trim_end_matches('/');
    let url = url::Url::parse(&format!("{base}{path}")).map_err(|e| AppError::internal("connector test URL", e))?;
    let unreachable =
        |m: String| AppError::Upstream(format!("Could not check these credentials with {}: {m}", connector.name));
    let res = send(state, connector, creds, &reqwest::Method::GET, &url, &InvokeRequest::default()).await.map_err(
        |e| match e {
            AppError::Upstream(m) => unreachable(m),
            other => other,
        },
    )?;
    match res.status {
        200..=299 => Ok(true),
        401 | 403 => Err(AppError::invalid(
            field,
            format!("{} refused these credentials: {}", connector.name, service_message(&res.body)),
        )),
        status => Err(unreachable(format!("it answered {status}. Try again later."))),
    }
}

/// A person-readable reason from an error body: `message`, `error.message`,
/// `error_description` or `error`, else the start of the text.
fn service_message(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |v: &serde_json::Value| -> Option<String> {
        ["message", "error_description", "error"]
            .iter()
            .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_owned))
            .or_else(|| v.get("error").and_then(|e| e.get("message")).and_then(|m| m.as_str()).map(str::to_owned))
    };
    let text = json.as_ref().and_then(field).unwrap_or_else(|| body.trim().to_string());
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.is_empty() {
        "no reason given.".into()
    } else {
        text
    }
}

/// Sends one request with the credentials, following same-origin redirects hop by hop.
pub(super) async fn send(
    state: &AppState,
    connector: &crate::connectors::ssr::Connector,
    creds: &Credentials,
    method: &reqwest::Method,
    url: &url::Url,
    req: &InvokeRequest,
) -> AppResult<InvokeResponse> {
    let mut current = url.clone();
    let mut method = method.clone();
    for _ in 0..=MAX_HOPS {
        let mut target = current.clone();
        if let (Credentials::ApiKey { key }, Placement::Query) = (creds, connector.config.placement) {
            let name = connector.config.key_name.clone().unwrap_or_else(|| "api_key".into());
            target.query_pairs_mut().append_pair(&name, key);
        }
        let mut rb = state.outbound.request(method.clone(), target)?;
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb = match creds {
            Credentials::OAuth2 { access_token, .. } => rb.bearer_auth(access_token),
            Credentials::Basic { username, password } => rb.basic_auth(username, Some(password)),
            Credentials::ApiKey { key } if connector.config.placement != Placement::Query => {
                let name = connector.config.key_name.clone().unwrap_or_else(|| "X-Api-Key".into());
                let prefix = connector.config.key_prefix.clone().unwrap_or_default();
                rb.header(name.as_str(), format!("{prefix}{key}"))
            }
            Credentials::ApiKey { .. } => rb,
        };
        if let Some(body) = &req.body {
            rb = rb.body(body.clone());
        }
        let res = state.outbound.send(rb).await?;
        let status = res.status();
        if status.is_redirection() {
            if let Some(next) =
                res.headers().get("location").and_then(|l| l.to_str().ok()).and_then(|l| current.join(l).ok())
            {
                if origin(&next) == origin(&current) {
                    if status == reqwest::StatusCode::SEE_OTHER {
                        method = reqwest::Method::GET;
                    }
                    current = next;
                    continue;
                }
                // Another origin: do not carry credentials there; hand the redirect back.
            }
        }
        let headers = res
            .headers()
            .iter()
            .filter(|(k, _)| !k.as_str().eq_ignore_ascii_case("set-cookie"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = Outbound::read_body(res, MAX_RESPONSE_BODY).await?;
        return Ok(InvokeResponse {
            status: status.as_u16(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            duration_ms: 0,
        });
    }
    Err(AppError::Upstream("The service redirected too many times.".into()))
}
