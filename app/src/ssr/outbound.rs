//! The one guarded outbound HTTP client. Every call to a third party goes through it: invoke URL
//! and sync pages, token exchange, client credentials, refresh, revocation and discovery.
//!
//! - One pooled `reqwest::Client`, built at start-up (keep-alive connections are reused), with no
//!   proxies taken from the environment and no automatic redirects (callers that follow
//!   redirects re-check every hop).
//! - Its DNS resolver drops internal addresses — loopback, private, link-local, CGNAT,
//!   multicast, documentation and reserved ranges, also when embedded in IPv4-mapped,
//!   IPv4-compatible, NAT64, 6to4 or Teredo IPv6 addresses — unless the host is on
//!   `--outbound-allowlist`, so the address that was checked is the address connected to (no
//!   window for DNS rebinding between a check and the connection).
//! - IP literals never reach a resolver: [`Outbound::check`] applies the same rule to them
//!   before anything is sent, and holds allowlisted hosts to the allowlisted port.

use crate::error::AppError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Largest answer read from a token, revocation or discovery endpoint.
const MAX_OAUTH_BODY: usize = 1024 * 1024;

/// Why an outbound call did not happen or did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The destination is internal and not allowlisted (or not allowed for this use).
    #[error("{0}")]
    Refused(String),
    #[error("the service did not answer in time")]
    Timeout,
    #[error("the service could not be reached")]
    Unreachable,
    #[error("the service's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request could not be made: {0}")]
    Invalid(String),
}

impl From<OutboundError> for AppError {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::Refused(why) => AppError::forbidden(why),
            OutboundError::Timeout => AppError::Upstream("The service did not answer in time.".into()),
            OutboundError::Unreachable => AppError::Upstream("The service could not be reached.".into()),
            OutboundError::TooLarge(n) => {
                AppError::Upstream(format!("The service's answer is larger than {} KiB.", n / 1024))
            }
            OutboundError::Invalid(why) => AppError::invalid("url", why),
        }
    }
}

/// `host:port` pairs outbound calls may reach although they resolve to internal addresses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Allowlist(Vec<(String, u16)>);

/// Lower case, without IPv6 brackets or a trailing dot: the form hosts are compared in.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

impl Allowlist {
    /// Parses `host:port` entries (`[::1]:8080` for IPv6). An entry without a port is refused:
    /// allowlisting a whole host would open every service on it.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = Vec::new();
        for raw in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (host, port) = raw
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| format!("outbound allowlist entry '{raw}' is not host:port"))?;
            list.push((normalize_host(host), port));
        }
        Ok(Allowlist(list))
    }

    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = normalize_host(host);
        self.0.iter().any(|(h, p)| *h == host && *p == port)
    }

    fn lists_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.0.iter().any(|(h, _)| *h == host)
    }
}

/// The guarded client. Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow: Arc<Allowlist>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").field("allowlist", &self.allow).finish_non_exhaustive()
    }
}

/// Resolves names with the system resolver, then keeps only addresses outbound calls may reach.
struct GuardedResolver {
    allow: Arc<Allowlist>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow = self.allow.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            // An allowlisted host keeps its internal addresses; `check` already held it to the
            // allowlisted port before the request was sent.
            let usable: Vec<SocketAddr> = if allow.lists_host(&host) {
                found
            } else {
                found.into_iter().filter(|a| !is_internal(a.ip())).collect()
            };
            if usable.is_empty() {
                return Err(Box::new(OutboundError::Refused(refused_message(&host))) as Box<_>);
            }
            let addrs: Addrs = Box::new(usable.into_iter());
            Ok(addrs)
        })
    }
}

fn refused_message(host: &str) -> String {
    format!(
        "Calls to internal addresses ({host}) are not allowed. An admin can allowlist a service in the server settings."
    )
}

impl Outbound {
    /// Builds the client once at start-up.
    pub fn new(allowlist: Allowlist) -> Result<Self, reqwest::Error> {
        let allow = Arc::new(allowlist);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow: allow.clone() }))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("connections-manager/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbound { client, allow })
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allow
    }

    /// Whether `url` may be called: http(s) with a host; an IP literal only when it is public or
    /// allowlisted; an allowlisted host only on its allowlisted port. Names are checked again
    /// when they are resolved, on the address actually used.
    pub fn check(&self, url: &url::Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Invalid("Use an http(s) URL.".into()));
        }
        let host = url.host_str().ok_or_else(|| OutboundError::Invalid("The URL needs a host.".into()))?;
        let port = url.port_or_known_default().ok_or_else(|| OutboundError::Invalid("The URL needs a port.".into()))?;
        if self.allow.allows(host, port) {
            return Ok(());
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(is_internal) || self.allow.lists_host(host) {
            return Err(OutboundError::Refused(refused_message(host)));
        }
        Ok(())
    }

    /// Where a server-to-server OAuth2 endpoint (token, refresh, revocation, discovery) may be:
    /// `https://`, or an allowlisted `host:port` (the sandbox and test services).
    pub fn check_oauth_endpoint(&self, url: &url::Url) -> Result<(), OutboundError> {
        let allowlisted = url.host_str().zip(url.port_or_known_default()).is_some_and(|(h, p)| self.allow.allows(h, p));
        if url.scheme() != "https" && !allowlisted {
            return Err(OutboundError::Refused(format!(
                "{} must be an https:// address (plain http is allowed only for allowlisted services).",
                shown(url)
            )));
        }
        self.check(url)
    }

    /// A request to `url`, after [`Outbound::check`].
    pub fn request(&self, method: reqwest::Method, url: url::Url) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.check(&url)?;
        Ok(self.client.request(method, url))
    }

    /// A request to a server-to-server OAuth2 endpoint, after [`Outbound::check_oauth_endpoint`].
    pub fn oauth_request(
        &self,
        method: reqwest::Method,
        url: url::Url,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.check_oauth_endpoint(&url)?;
        Ok(self.client.request(method, url))
    }

    /// Sends a request built by [`Outbound::request`], naming a refused destination as such.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, OutboundError> {
        request.send().await.map_err(classify)
    }

    /// Reads an answer's body, refusing more than `limit` bytes.
    pub async fn read_body(mut res: reqwest::Response, limit: usize) -> Result<Vec<u8>, OutboundError> {
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(OutboundError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// GETs a JSON document from an OAuth2 server (RFC 8414 metadata), under the endpoint rules.
    #[tracing::instrument(skip(self), fields(url = %shown(url)))]
    pub async fn get_json(&self, url: &url::Url) -> Result<serde_json::Value, OutboundError> {
        let res = self
            .send(self.oauth_request(reqwest::Method::GET, url.clone())?.header("accept", "application/json"))
            .await?;
        if !res.status().is_success() {
            return Err(OutboundError::Invalid(format!("{} answered {}", shown(url), res.status())));
        }
        let body = Self::read_body(res, MAX_OAUTH_BODY).await?;
        serde_json::from_slice(&body).map_err(|_| OutboundError::Invalid(format!("{} did not answer JSON", shown(url))))
    }

    /// One OAuth2 request (token, client credentials, refresh) as the `oauth2` crate builds it.
    async fn oauth_call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, OutboundError> {
        let url = url::Url::parse(&request.uri().to_string()).map_err(|e| OutboundError::Invalid(e.to_string()))?;
        let (parts, body) = request.into_parts();
        let res = self.send(self.oauth_request(parts.method, url)?.headers(parts.headers).body(body)).await?;
        let mut answer = http::Response::builder().status(res.status());
        if let Some(headers) = answer.headers_mut() {
            headers.extend(res.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let body = Self::read_body(res, MAX_OAUTH_BODY).await?;
        answer.body(body).map_err(|e| OutboundError::Invalid(e.to_string()))
    }
}

/// `oauth2` requests go through the guarded client: `.request_async(&state.outbound)`.
impl<'c> oauth2::AsyncHttpClient<'c> for Outbound {
    type Error = OutboundError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.oauth_call(request))
    }
}

/// A URL as logs and messages show it: no query string, no fragment, no user info.
pub fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// A refused destination is said as such; everything else is a timeout or "unreachable" (the
/// details, never with the URL's query, go to the log).
fn classify(e: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<OutboundError>() {
            return refused.clone();
        }
        source = err.source();
    }
    let timeout = e.is_timeout();
    tracing::warn!(error = %e.without_url(), "outbound call failed");
    if timeout {
        OutboundError::Timeout
    } else {
        OutboundError::Unreachable
    }
}

/// Whether an address may never be reached from the server (unless allowlisted).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
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
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        || o[0] >= 240 // reserved
}

fn is_internal_v6(v6: Ipv6Addr) -> bool {
    let seg = v6.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d) and compatible (::a.b.c.d).
    if let Some(v4) = v6.to_ipv4() {
        if !v6.is_loopback() && !v6.is_unspecified() {
            return is_internal_v4(v4);
        }
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if seg[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_internal_v4(embedded(seg[6], seg[7]));
    }
    // 6to4 (2002::/16) carries one in bits 16..48.
    if seg[0] == 0x2002 {
        return is_internal_v4(embedded(seg[1], seg[2]));
    }
    // Teredo (2001::/32): the server in bits 32..64, the client (inverted) in the last 32.
    if seg[0] == 0x2001 && seg[1] == 0 {
        return is_internal_v4(embedded(seg[2], seg[3])) || is_internal_v4(embedded(!seg[6], !seg[7]));
    }
    v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link local
        || (seg[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1) // local-use NAT64 (64:ff9b:1::/48)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || seg[0..4] == [0x100, 0, 0, 0] // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2001:0:7f00:1::1",
            "2001:0:5db8:1:0:0:80ff:fffe", // Teredo whose client is 127.0.0.1
            "2001:db8::1",
            "100::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in
            ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
        {
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

    #[test]
    fn allowlist_entries_name_a_port() {
        let list =
            Allowlist::parse(&["127.0.0.1:4010".into(), "[::1]:8080".into(), "Sandbox.Test.:443".into()]).unwrap();
        assert!(list.allows("127.0.0.1", 4010) && !list.allows("127.0.0.1", 4011));
        assert!(list.allows("[::1]", 8080) && list.allows("::1", 8080));
        assert!(list.allows("sandbox.test", 443));
        assert!(Allowlist::parse(&["127.0.0.1".into()]).is_err());
        assert!(Allowlist::parse(&[":80".into()]).is_err());
    }

    #[test]
    fn checks_before_sending() {
        let out =
            Outbound::new(Allowlist::parse(&["127.0.0.1:4010".into(), "localhost:4010".into()]).unwrap()).unwrap();
        let check = |u: &str| out.check(&url::Url::parse(u).unwrap());
        assert!(check("http://127.0.0.1:4010/x").is_ok());
        assert!(matches!(check("http://127.0.0.1:4011/x"), Err(OutboundError::Refused(_))));
        assert!(matches!(check("http://[::ffff:7f00:1]/x"), Err(OutboundError::Refused(_))));
        assert!(
            matches!(check("http://localhost:22/"), Err(OutboundError::Refused(_))),
            "allowlisted host, other port"
        );
        assert!(check("https://93.184.216.34/").is_ok());
        assert!(matches!(check("ftp://example.com/"), Err(OutboundError::Invalid(_))));
        let oauth = |u: &str| out.check_oauth_endpoint(&url::Url::parse(u).unwrap());
        assert!(oauth("http://127.0.0.1:4010/token").is_ok(), "allowlisted: http allowed");
        assert!(matches!(oauth("http://auth.example.com/token"), Err(OutboundError::Refused(_))));
        assert!(oauth("https://auth.example.com/token").is_ok());
    }

    /// Names are checked where they are resolved: `localhost` is refused without a connection.
    #[tokio::test]
    async fn resolver_drops_internal_addresses() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = Outbound::new(Allowlist::default()).unwrap();
        let url = url::Url::parse(&format!("http://localhost:{port}/")).unwrap();
        let err = out.send(out.request(reqwest::Method::GET, url).unwrap()).await.unwrap_err();
        assert!(matches!(err, OutboundError::Refused(ref m) if m.contains("internal addresses")), "{err:?}");
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err(), "nothing connected");
    }
}
