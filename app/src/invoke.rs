//! The invoke-URL task (Deluge `invokeurl`): a server-side HTTP call over a connection. The
//! connection's credentials are injected only toward the connector's own origin; loopback,
//! private and link-local destinations are refused unless allowlisted; redirects are re-checked
//! hop by hop; an OAuth2 401 triggers one refresh and one retry.

use crate::domain::Environment;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct InvokeRequest {
    /// The application making the call (its connection access is checked).
    pub app: String,
    /// The connection's link name.
    pub connection: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub environment: Option<Environment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub duration_ms: i64,
}

#[server(prefix = "/api", endpoint = "invoke_url")]
pub async fn invoke_url(request: InvokeRequest) -> Result<InvokeResponse, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::invoke(&state, &user, request).await
}

/// Whether an address may never be reached from the server (unless allowlisted).
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::authorizations::ssr::{refresh_account, unusable_status, usable_credentials, Credentials};
    use crate::connections::Status;
    use crate::connectors::{ensure_usable, Usage};
    use crate::domain::ConnectionType;
    use crate::error::AppResult;
    use crate::operations::ssr::{record, Level};
    use crate::policy::{decide, Action, Context, Decision};
    use crate::ssr::ids::now_ms;
    use crate::ssr::AppState;
    use std::net::SocketAddr;
    use std::time::Instant;

    const MAX_REQUEST_BODY: usize = 256 * 1024;
    const MAX_RESPONSE_BODY: usize = 4 * 1024 * 1024;
    const MAX_HOPS: usize = 5;

    /// The `scheme://host:port` of a URL.
    fn origin(u: &url::Url) -> String {
        format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default()
        )
    }

    /// Resolves `url`'s host and refuses internal destinations unless `host:port` is allowlisted.
    /// Returns the address to connect to (the one that was checked).
    pub async fn check_destination(allowlist: &[String], url: &url::Url) -> AppResult<SocketAddr> {
        let host = url.host_str().ok_or_else(|| AppError::invalid("url", "The URL needs a host."))?;
        let port = url.port_or_known_default().ok_or_else(|| AppError::invalid("url", "The URL needs a port."))?;
        let host_port = format!("{}:{port}", host.trim_start_matches('[').trim_end_matches(']'));
        let allowed = allowlist
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&host_port) || a.eq_ignore_ascii_case(&format!("{host}:{port}")));
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            _ => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| AppError::Upstream(format!("The host {host} could not be found.")))?
                .collect(),
        };
        let first = *addrs.first().ok_or_else(|| AppError::Upstream(format!("The host {host} has no address.")))?;
        if !allowed && addrs.iter().any(|a| is_internal(a.ip())) {
            return Err(AppError::forbidden(format!(
                "Calls to internal addresses ({host}) are not allowed. An admin can allowlist a service in the server settings."
            )));
        }
        Ok(first)
    }

    fn redact_url(u: &url::Url) -> String {
        let mut shown = u.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        shown.to_string()
    }

    /// Why a call over a connection is made; decides which policy action it needs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Purpose {
        /// Method, URL, headers and body chosen by the caller (the raw `invoke_url`).
        Raw,
        /// A step of a component a builder wrote, run for the caller (`run_component`).
        Component,
    }

    impl Purpose {
        fn action(self) -> Action {
            match self {
                Purpose::Raw => Action::InvokeRaw,
                Purpose::Component => Action::UseInComponent,
            }
        }

        fn describe(self) -> &'static str {
            match self {
                Purpose::Raw => "make a raw call",
                Purpose::Component => "use a connection through a component",
            }
        }
    }

    /// The raw call (the `invoke_url` server function, and the sync on behalf of the builder who
    /// started it): refused with 403 before anything is loaded or sent unless the caller's role
    /// may make raw calls over some connection type; the exact type is checked in [`call`].
    pub async fn invoke(state: &AppState, user: &SessionUser, req: InvokeRequest) -> AppResult<InvokeResponse> {
        let anywhere = ConnectionType::ALL
            .into_iter()
            .any(|kind| decide(user.role, kind, Action::InvokeRaw, Context::default()).is_allowed());
        if !anywhere {
            return Err(refuse(state, user, None, Purpose::Raw, &req).await);
        }
        call(state, user, Purpose::Raw, req).await
    }

    /// Writes a refused call to Operations (who, which connection, the method and the URL
    /// without its query string; never a credential) and returns the 403 the caller sees.
    pub async fn refuse(
        state: &AppState,
        user: &SessionUser,
        connection_id: Option<i64>,
        purpose: Purpose,
        req: &InvokeRequest,
    ) -> AppError {
        let target =
            url::Url::parse(req.url.trim()).map(|u| redact_url(&u)).unwrap_or_else(|_| "an invalid URL".into());
        let method: String = req.method.chars().filter(char::is_ascii_alphabetic).take(10).collect();
        tracing::warn!(user_id = user.id, role = user.role.as_str(), ?purpose, connection = %req.connection, "call refused");
        record(
            &state.db,
            Some(user.workspace_id),
            Level::Warn,
            "access_denied",
            Some(user.id),
            connection_id,
            None,
            &format!(
                "{} tried to {} over {} ({} {target})",
                user.email,
                purpose.describe(),
                req.connection.chars().take(100).collect::<String>(),
                method.to_uppercase()
            ),
        )
        .await;
        match purpose {
            Purpose::Raw => AppError::forbidden(
                "Only super admins, admins and developers can call a service directly. \
                 Use the application's forms and pages to work with this connection.",
            ),
            Purpose::Component => AppError::forbidden("You cannot use this connection. Contact your admin."),
        }
    }

    /// One call over a connection for `purpose`, which the caller has established: checks the
    /// policy for the connection's type, the application's access, the destination, and
    /// attaches the credentials of the environment the caller's role may use.
    #[tracing::instrument(skip_all, fields(connection = %req.connection, user_id = user.id, ?purpose))]
    pub async fn call(
        state: &AppState,
        user: &SessionUser,
        purpose: Purpose,
        req: InvokeRequest,
    ) -> AppResult<InvokeResponse> {
        let app = crate::applications::ssr::find(state, user, &req.app).await?;
        let conn_id = crate::connections::ssr::find_by_link(state, user, &req.connection).await?;
        let conn = crate::connections::ssr::load(state, user.workspace_id, conn_id).await?;
        if !decide(user.role, conn.conn_type, purpose.action(), conn.policy_context()).is_allowed() {
            return Err(refuse(state, user, Some(conn.id), purpose, &req).await);
        }
        crate::connections::ssr::ensure_app_access(state, conn.id, app.id).await?;
        let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
        ensure_usable(connector.kind, Usage::InvokeUrl)?;
        if !conn.enabled {
            return Err(AppError::forbidden("This connection is disabled."));
        }
        let method = reqwest::Method::from_bytes(req.method.to_uppercase().as_bytes())
            .ok()
            .filter(|m| ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.as_str()))
            .ok_or_else(|| AppError::invalid("method", "Use GET, POST, PUT, PATCH, DELETE or HEAD."))?;
        if req.body.as_ref().is_some_and(|b| b.len() > MAX_REQUEST_BODY) {
            return Err(AppError::invalid("body", format!("The body is larger than {} KiB.", MAX_REQUEST_BODY / 1024)));
        }
        let url = url::Url::parse(req.url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| AppError::invalid("url", "Enter a full http(s) URL."))?;
        let base = connector
            .config
            .api_base
            .as_deref()
            .and_then(|b| url::Url::parse(b).ok())
            .ok_or_else(|| AppError::Upstream("This connector has no API address configured.".into()))?;
        if origin(&url) != origin(&base) {
            return Err(AppError::invalid(
                "url",
                format!("This connection's credentials are only sent to {}. Use a URL there.", origin(&base)),
            ));
        }
        for (name, _) in &req.headers {
            if name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("host")
                || name.eq_ignore_ascii_case("cookie")
            {
                return Err(AppError::invalid("headers", format!("The {name} header is set by the connection.")));
            }
        }
        let env = crate::policy::environment(user.role, req.environment);
        let Some((account_id, mut creds, refresh_first)) = usable_credentials(state, &conn, user, env).await? else {
            let decision = decide(user.role, conn.conn_type, Action::UseUnauthorized, conn.policy_context());
            let (prompt, message) = match decision {
                Decision::ContactAdmin(who) => (false, who.message().to_string()),
                _ => (
                    true,
                    match unusable_status(state, &conn, user, env).await? {
                        Some(Status::Revoked) => {
                            format!(
                                "{}'s authorization was revoked. Authorize it again to continue.",
                                conn.display_name
                            )
                        }
                        Some(Status::NeedsReauthorization) => format!(
                            "{}'s authorization stopped working. Authorize it again to continue.",
                            conn.display_name
                        ),
                        _ if conn.conn_type == ConnectionType::LoggedInUser => {
                            format!("Authorize {} with your account to continue.", conn.display_name)
                        }
                        _ => format!("{} is not authorized yet. Authorize it to continue.", conn.display_name),
                    },
                ),
            };
            return Err(AppError::AuthorizationRequired { connection: conn.link_name.clone(), prompt, message });
        };
        if refresh_first || creds.expiring(now_ms()) {
            let used = creds.access_token().unwrap_or_default().to_owned();
            creds =
                refresh_account(state, &connector, account_id, &used).await.map_err(|e| for_connection(e, &conn))?;
        }
        let start = Instant::now();
        let mut response = send(state, &connector, &creds, &method, &url, &req).await?;
        if response.status == 401 && matches!(creds, Credentials::OAuth2 { .. }) {
            let used = creds.access_token().unwrap_or_default().to_owned();
            creds =
                refresh_account(state, &connector, account_id, &used).await.map_err(|e| for_connection(e, &conn))?;
            response = send(state, &connector, &creds, &method, &url, &req).await?;
        }
        response.duration_ms = start.elapsed().as_millis() as i64;
        let level = if response.status >= 400 { Level::Warn } else { Level::Info };
        record(
            &state.db,
            Some(user.workspace_id),
            level,
            "invoke_url",
            Some(user.id),
            Some(conn.id),
            Some(env.as_str()),
            &format!("{method} {} → {} in {} ms", redact_url(&url), response.status, response.duration_ms),
        )
        .await;
        Ok(response)
    }

    fn for_connection(e: AppError, conn: &crate::connections::ssr::Connection) -> AppError {
        match e {
            AppError::AuthorizationRequired { prompt, message, .. } => {
                AppError::AuthorizationRequired { connection: conn.link_name.clone(), prompt, message }
            }
            other => other,
        }
    }

    /// Sends one request with the credentials, following same-origin redirects hop by hop.
    async fn send(
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
            let addr = check_destination(&state.settings.outbound_allowlist, &current).await?;
            let host = current.host_str().unwrap_or_default().to_string();
            // Connect to exactly the address that was checked.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve(&host, addr)
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .map_err(|e| AppError::internal("http client", e))?;
            let mut target = current.clone();
            if let (Credentials::ApiKey { key }, "query") = (creds, connector.config.placement.as_str()) {
                let name = connector.config.key_name.clone().unwrap_or_else(|| "api_key".into());
                target.query_pairs_mut().append_pair(&name, key);
            }
            let mut rb = client.request(method.clone(), target);
            for (k, v) in &req.headers {
                rb = rb.header(k.as_str(), v.as_str());
            }
            rb = match creds {
                Credentials::OAuth2 { access_token, .. } => rb.bearer_auth(access_token),
                Credentials::Basic { username, password } => rb.basic_auth(username, Some(password)),
                Credentials::ApiKey { key } if connector.config.placement != "query" => {
                    let name = connector.config.key_name.clone().unwrap_or_else(|| "X-Api-Key".into());
                    let prefix = connector.config.key_prefix.clone().unwrap_or_default();
                    rb.header(name.as_str(), format!("{prefix}{key}"))
                }
                Credentials::ApiKey { .. } => rb,
            };
            if let Some(body) = &req.body {
                rb = rb.body(body.clone());
            }
            let res = rb.send().await.map_err(|e| {
                let timeout = e.is_timeout();
                tracing::warn!(error = %e.without_url(), "invoke url failed");
                if timeout {
                    AppError::Upstream("The service did not answer in time.".into())
                } else {
                    AppError::Upstream("The service could not be reached.".into())
                }
            })?;
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
            let mut body = Vec::new();
            let mut stream = res;
            while let Some(chunk) =
                stream.chunk().await.map_err(|_| AppError::Upstream("The service's answer was cut off.".into()))?
            {
                if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                    return Err(AppError::Upstream("The service's answer is larger than 4 MiB.".into()));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(InvokeResponse {
                status: status.as_u16(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                duration_ms: 0,
            });
        }
        Err(AppError::Upstream("The service redirected too many times.".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::is_internal;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    /// The metadata address written in decimal, octal and hex is the same host after parsing.
    #[test]
    fn alternate_ipv4_notations_normalize() {
        for u in
            ["http://2852039166/", "http://0251.0376.0251.0376/", "http://0xa9.0xfe.0xa9.0xfe/", "http://0xA9FEA9FE/"]
        {
            let parsed = url::Url::parse(u).unwrap();
            assert_eq!(parsed.host(), Some(url::Host::Ipv4("169.254.169.254".parse().unwrap())), "{u}");
        }
    }
}
