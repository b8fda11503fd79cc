//! The sandbox third-party service (`end2end/sandbox/server.mjs`, see `end2end/sandbox/README.md`)
//! for integration tests: an OAuth 2.0 / OIDC provider with HTML login and consent pages, a CRM,
//! weather and "Atlassian" API, and test hooks under `/_sandbox/`.
//!
//! [`Sandbox::start`] runs it with Node on a free port (killed when the value is dropped);
//! [`authorize_in_browser`] plays the user in a browser through the login and consent forms,
//! the way `end2end/sandbox/selftest.mjs` does, and returns where the provider sent the browser.
#![allow(dead_code)]

use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode, Url};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const READY_PREFIX: &str = "SANDBOX_READY ";
/// A start takes a second or two; a machine busy with compiles once made one take over 20 s.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Starts that stall are tried again this many times in all (see [`Sandbox::start`]).
const START_ATTEMPTS: u32 = 2;
/// Sandboxes starting at once. A test file's tests run in parallel and each starts its own
/// sandbox; loading oidc-provider is CPU-bound, so on a 2-core machine with a cold cache ten
/// simultaneous starts could each take longer than [`START_TIMEOUT`] (seen on a fresh clone).
/// Starts wait their turn; the timeout counts from a start's own turn.
static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
const STDERR_LINES_KEPT: usize = 50;
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_REDIRECTS: usize = 15;

type StderrTail = Arc<Mutex<VecDeque<String>>>;

/// A running sandbox process. Dropping it kills the process.
pub struct Sandbox {
    /// The issuer, e.g. `http://127.0.0.1:PORT` (no trailing slash); every endpoint is under it.
    pub url: String,
    pub port: u16,
    child: Child,
    stderr: StderrTail,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts `node sandbox/server.mjs` in `<workspace>/end2end` on a free port (`SANDBOX_PORT=0`)
    /// with `extra_env` on top (later entries win, so they may override `SANDBOX_PORT` too) and
    /// waits up to 60 s for its `SANDBOX_READY {json}` line (and starts it once more if it
    /// stalls). `SANDBOX_*` variables of the test process are not passed on, so only
    /// `extra_env` configures it.
    ///
    /// Panics, with the tail of the sandbox's stderr, if it cannot be started.
    pub async fn start(extra_env: &[(&str, &str)]) -> Sandbox {
        let dir = end2end_dir();
        let script = dir.join("sandbox").join("server.mjs");
        assert!(script.is_file(), "sandbox script not found at {}", script.display());
        assert!(
            dir.join("node_modules").join("oidc-provider").is_dir(),
            "{}/node_modules/oidc-provider is missing: run `npm install` (or `npm ci`) in {} first",
            dir.display(),
            dir.display()
        );

        let _turn = STARTING.acquire().await.expect("the semaphore is never closed");
        let mut attempt = 1;
        let (child, stderr, ready) = loop {
            match spawn_until_ready(&dir, extra_env).await {
                Ok(started) => break started,
                // A start that stalls is tried once more: one on a CI machine printed nothing
                // after oidc-provider's first warning for a whole minute, where a start takes
                // half a second. Its stderr now names each start step, to tell where next time.
                Err(Stalled(tail)) if attempt < START_ATTEMPTS => {
                    eprintln!(
                        "sandbox printed no `SANDBOX_READY` line within {START_TIMEOUT:?} (attempt {attempt}); \
                         starting it again. Its stderr:\n{tail}"
                    );
                    attempt += 1;
                }
                Err(Stalled(tail)) => panic!(
                    "sandbox printed no `SANDBOX_READY` line within {START_TIMEOUT:?}, {attempt} times; \
                     its last stderr:\n{tail}"
                ),
            }
        };

        let info: serde_json::Value = serde_json::from_str(&ready)
            .unwrap_or_else(|e| panic!("bad SANDBOX_READY line {ready:?}: {e}\nstderr:\n{}", tail_of(&stderr)));
        let url = info["issuer"]
            .as_str()
            .unwrap_or_else(|| panic!("SANDBOX_READY line without an issuer: {ready}"))
            .trim_end_matches('/')
            .to_string();
        let port = info["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("SANDBOX_READY line without a valid port: {ready}"));

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("build the sandbox hooks HTTP client");
        Sandbox { url, port, child, stderr, http }
    }

    /// `self.url` + `path` (which starts with `/`), e.g. `sandbox.endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The last lines (up to 50) the sandbox wrote to stderr, for assertion messages.
    pub fn stderr_tail(&self) -> String {
        tail_of(&self.stderr)
    }

    /// `GET /_sandbox/stats`: `token_requests`, `token_errors` (by grant type), `revocations`,
    /// `api_calls` and `failure_mode`.
    pub async fn stats(&self) -> serde_json::Value {
        let body = self.hook(Method::GET, "/_sandbox/stats", &[]).await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("sandbox stats are not JSON ({e}): {body}"))
    }

    /// `POST /_sandbox/reset-stats`: zeroes the counters (the failure mode is kept).
    pub async fn reset_stats(&self) {
        self.hook(Method::POST, "/_sandbox/reset-stats", &[]).await;
    }

    /// `POST /_sandbox/fail?mode=...`: how the CRM list endpoints (`/api/crm/Deals`,
    /// `/api/crm/Contacts`) answer from now on: `"500"`, `"garbage"` (200 with a non-JSON body),
    /// `"slow"` (hang 30 s) or `"off"` (normal).
    pub async fn fail(&self, mode: &str) {
        self.fail_with(mode, &[]).await;
    }

    /// [`Sandbox::fail`] with the hook's optional parameters, e.g. `[("times", "1")]` (revert to
    /// `off` after that many failed responses) or `[("delay_ms", "400")]` (the slow delay).
    pub async fn fail_with(&self, mode: &str, params: &[(&str, &str)]) {
        let mut query = vec![("mode", mode)];
        query.extend_from_slice(params);
        self.hook(Method::POST, "/_sandbox/fail", &query).await;
    }

    /// Paging drift in the CRM lists: each page after the first repeats the record that ended the
    /// page before, marked `"moved": true`.
    pub async fn drift(&self, on: bool) {
        self.hook(Method::POST, "/_sandbox/crm-drift", &[("on", if on { "1" } else { "0" })]).await;
    }

    /// Calls a test hook, panics unless it answers 200; returns the body.
    async fn hook(&self, method: Method, path: &str, query: &[(&str, &str)]) -> String {
        let res =
            self.http.request(method.clone(), self.endpoint(path)).query(query).send().await.unwrap_or_else(|e| {
                panic!("{method} {path} {query:?} on the sandbox: {e}\nstderr:\n{}", self.stderr_tail())
            });
        let status = res.status();
        let body = res.text().await.unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        assert_eq!(status, StatusCode::OK, "{method} {path} {query:?} on the sandbox: {body}");
        body
    }
}

/// Where the provider sent the browser at the end of the authorization: the client's
/// `redirect_uri` with `code`, `state` and `iss`, or `error` (+ `error_description`), `state`, `iss`.
#[derive(Debug, Clone)]
pub struct Consent {
    pub callback_url: Url,
}

impl Consent {
    /// The first query parameter `name` of the callback URL, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.callback_url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The callback URL with its `iss` replaced by `iss`, or removed (`None`): a mix-up attack.
    pub fn with_iss(&self, iss: Option<&str>) -> Url {
        let mut cb = self.callback_url.clone();
        let pairs: Vec<(String, String)> =
            cb.query_pairs().filter(|(k, _)| k != "iss").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        cb.query_pairs_mut().clear().extend_pairs(&pairs);
        if let Some(iss) = iss {
            cb.query_pairs_mut().append_pair("iss", iss);
        }
        cb
    }
}

/// Plays the user in a fresh browser (empty cookie jar): opens `authorize_url` (the full URL the
/// app would open in a popup), follows the provider's redirects, signs in with `username` /
/// `password`, then clicks "Allow" (`allow`) or "Deny" on the consent page. Stops at the first
/// redirect whose `Location` is not on the sandbox's origin (the origin of `authorize_url`) —
/// without requesting it — and returns that URL.
///
/// A redirect that leaves the sandbox earlier is returned too (e.g. `error=invalid_request` for
/// a request without PKCE). Panics with the page text if a page has neither the login nor the
/// consent form (e.g. the 400 page for an unacceptable `redirect_uri`) or if the credentials are
/// refused.
pub async fn authorize_in_browser(authorize_url: &str, username: &str, password: &str, allow: bool) -> Consent {
    let start = Url::parse(authorize_url).unwrap_or_else(|e| panic!("bad authorize URL {authorize_url:?}: {e}"));
    let browser = Browser::new(&start);
    let decision = if allow { "Allow" } else { "Deny" };

    let mut step = browser.walk(Method::GET, start, &[]).await;
    let mut signed_in = false;
    let mut decided = false;
    loop {
        let page = match step {
            Step::Left(callback_url) => return Consent { callback_url },
            Step::Page(page) => page,
        };
        if let Some(form) = find_form(&page.html, "Sign in") {
            if signed_in {
                panic!(
                    "the sandbox refused the credentials of {username:?} (HTTP {} at {}): {}",
                    page.status,
                    page.url,
                    page.text()
                );
            }
            signed_in = true;
            let mut fields = form.hidden;
            fields.push(("username".into(), username.into()));
            fields.push(("password".into(), password.into()));
            step = browser.submit(&page, &form.method, &form.action, &fields).await;
        } else if let Some(form) = find_form(&page.html, decision) {
            if decided {
                panic!("the consent page came back after clicking {decision:?} (at {}): {}", page.url, page.text());
            }
            decided = true;
            step = browser.submit(&page, &form.method, &form.action, &form.hidden).await;
        } else {
            panic!(
                "no login form and no {decision:?} button on the sandbox page {} (HTTP {}): {}",
                page.url,
                page.status,
                page.text()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Browser: a cookie-keeping client that follows redirects by hand.
// ---------------------------------------------------------------------------------------------

struct Browser {
    client: reqwest::Client,
    /// The sandbox's origin, serialized (`http://127.0.0.1:PORT`).
    origin: String,
}

enum Step {
    /// An HTML page on the sandbox.
    Page(Page),
    /// A redirect off the sandbox's origin (not requested).
    Left(Url),
}

struct Page {
    url: Url,
    status: StatusCode,
    html: String,
}

impl Page {
    /// The page as readable text (tags, styles and scripts removed), for panic messages.
    fn text(&self) -> String {
        let text = html_to_text(&self.html);
        if text.chars().count() > 2000 {
            format!("{}…", text.chars().take(2000).collect::<String>())
        } else {
            text
        }
    }
}

impl Browser {
    fn new(start: &Url) -> Browser {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .cookie_store(true)
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("build the browser HTTP client");
        Browser { client, origin: start.origin().ascii_serialization() }
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.origin().ascii_serialization() == self.origin
    }

    /// Submits a form found on `page` (action resolved against the page URL).
    async fn submit(&self, page: &Page, method: &str, action: &str, fields: &[(String, String)]) -> Step {
        let target =
            page.url.join(action).unwrap_or_else(|e| panic!("bad form action {action:?} on {}: {e}", page.url));
        let method = if method.eq_ignore_ascii_case("get") { Method::GET } else { Method::POST };
        self.walk(method, target, fields).await
    }

    /// Sends one request, then follows same-origin redirects (as GETs without the form fields)
    /// until a page is returned or a redirect leaves the origin.
    async fn walk(&self, method: Method, url: Url, fields: &[(String, String)]) -> Step {
        let (mut method, mut url, mut fields) = (method, url, fields);
        for _ in 0..MAX_REDIRECTS {
            if !self.same_origin(&url) {
                return Step::Left(url);
            }
            let mut req = self.client.request(method.clone(), url.clone());
            if method == Method::POST {
                req = req.form(fields);
            } else if !fields.is_empty() {
                req = req.query(fields);
            }
            let res = req.send().await.unwrap_or_else(|e| panic!("browser {method} {url}: {e}"));
            let status = res.status();
            if !status.is_redirection() {
                let html = res.text().await.unwrap_or_else(|e| panic!("browser {method} {url}: reading the page: {e}"));
                return Step::Page(Page { url, status, html });
            }
            let location = res
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("browser {method} {url}: HTTP {status} without a usable Location"))
                .to_string();
            let _ = res.bytes().await;
            url = url.join(&location).unwrap_or_else(|e| panic!("bad Location {location:?} from {url}: {e}"));
            method = Method::GET;
            fields = &[];
        }
        panic!("too many redirects (last: {url})");
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal HTML handling, enough for the sandbox's own pages.
// ---------------------------------------------------------------------------------------------

struct Form {
    method: String,
    action: String,
    /// `<input type="hidden">` name/value pairs.
    hidden: Vec<(String, String)>,
}

/// The first `<form>` holding a `<button>` (or `<input type="submit">`) labelled `button`.
fn find_form(html: &str, button: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(open) = lower[from..].find("<form").map(|i| i + from) {
        let tag_end = lower[open..].find('>').map(|i| i + open)?;
        let close = lower[tag_end..].find("</form").map(|i| i + tag_end).unwrap_or(lower.len());
        let (tag, body) = (&html[open..=tag_end], &html[tag_end + 1..close]);
        from = close;
        if !has_button(body, button) {
            continue;
        }
        let hidden = tags(body, "input")
            .into_iter()
            .filter(|t| attr(t, "type").is_some_and(|v| v.eq_ignore_ascii_case("hidden")))
            .filter_map(|t| Some((attr(t, "name")?, attr(t, "value").unwrap_or_default())))
            .collect();
        return Some(Form {
            method: attr(tag, "method").unwrap_or_else(|| "get".into()),
            action: attr(tag, "action").unwrap_or_default(),
            hidden,
        });
    }
    None
}

fn has_button(form_body: &str, label: &str) -> bool {
    let lower = form_body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(open) = lower[from..].find("<button").map(|i| i + from) {
        let Some(tag_end) = lower[open..].find('>').map(|i| i + open) else { break };
        let close = lower[tag_end..].find("</button").map(|i| i + tag_end).unwrap_or(lower.len());
        if html_to_text(&form_body[tag_end + 1..close]) == label {
            return true;
        }
        from = close;
    }
    tags(form_body, "input").into_iter().any(|t| {
        attr(t, "type").is_some_and(|v| v.eq_ignore_ascii_case("submit")) && attr(t, "value").as_deref() == Some(label)
    })
}

/// The opening tags `<name ...>` in `html`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let lower = html.to_ascii_lowercase();
    let needle = format!("<{name}");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = lower[from..].find(&needle).map(|i| i + from) {
        let after = lower.as_bytes().get(open + needle.len()).copied();
        let Some(end) = lower[open..].find('>').map(|i| i + open) else { break };
        if matches!(after, Some(b) if b.is_ascii_whitespace() || b == b'>' || b == b'/') {
            found.push(&html[open..=end]);
        }
        from = end + 1;
    }
    found
}

/// An attribute of an opening tag, entity-decoded (quoted or bare values).
fn attr(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name).map(|i| i + from) {
        from = pos + name.len();
        let boundary_before = pos > 0 && bytes[pos - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !boundary_before || !rest.starts_with('=') {
            continue;
        }
        let value = rest[1..].trim_start();
        let raw = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value.split(|c: char| c.is_ascii_whitespace() || c == '>').next().unwrap_or(""),
        };
        return Some(decode_entities(raw));
    }
    None
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// Text content: `<style>`/`<script>` dropped, tags removed, entities decoded, whitespace collapsed.
fn html_to_text(html: &str) -> String {
    let mut html = html.to_string();
    for element in ["style", "script"] {
        loop {
            let lower = html.to_ascii_lowercase();
            let Some(open) = lower.find(&format!("<{element}")) else { break };
            let close_tag = format!("</{element}>");
            let end = lower[open..].find(&close_tag).map(|i| open + i + close_tag.len()).unwrap_or(html.len());
            html.replace_range(open..end, " ");
        }
    }
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    decode_entities(&text).split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Process plumbing
// ---------------------------------------------------------------------------------------------

/// A start that printed no ready line in time; the process is killed. Holds its stderr tail.
struct Stalled(String);

/// Starts `node sandbox/server.mjs` once and waits up to [`START_TIMEOUT`] for its ready line.
/// Panics if the process exits before it is ready (a configuration error, not worth a retry).
async fn spawn_until_ready(
    dir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> Result<(Child, StderrTail, String), Stalled> {
    let mut cmd = Command::new("node");
    cmd.arg("sandbox/server.mjs")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SANDBOX_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("SANDBOX_PORT", "0");
    for (name, value) in extra_env {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("could not start `node sandbox/server.mjs` in {} (is Node.js on PATH?): {e}", dir.display())
    });

    // Drain both pipes for the whole life of the process so it never blocks on a full pipe.
    let stderr: StderrTail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_task = {
        let tail = stderr.clone();
        let pipe = child.stderr.take().expect("piped stderr");
        tokio::spawn(read_lines(pipe, move |line| {
            let mut tail = tail.lock().unwrap();
            if tail.len() == STDERR_LINES_KEPT {
                tail.pop_front();
            }
            tail.push_back(line);
        }))
    };
    let (ready_tx, ready_rx) = oneshot::channel::<String>();
    {
        let pipe = child.stdout.take().expect("piped stdout");
        let mut ready_tx = Some(ready_tx);
        tokio::spawn(read_lines(pipe, move |line| {
            if let Some(rest) = line.strip_prefix(READY_PREFIX) {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(rest.to_string());
                }
            }
        }));
    }

    match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
        Ok(Ok(json)) => Ok((child, stderr, json)),
        Ok(Err(_)) => {
            // stdout closed without the ready line: the process is exiting.
            let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                Ok(Err(e)) => format!("unknown status ({e})"),
                Err(_) => "still running, stdout closed".to_string(),
            };
            let _ = child.start_kill();
            let tail = finished_stderr(stderr_task, &stderr).await;
            panic!("sandbox exited before it was ready ({status}); its stderr:\n{tail}");
        }
        Err(_) => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            Err(Stalled(finished_stderr(stderr_task, &stderr).await))
        }
    }
}

fn end2end_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("end2end");
    dir.canonicalize().unwrap_or(dir)
}

/// Reads `pipe` line by line (lossy UTF-8, without the line ending) until EOF.
async fn read_lines(pipe: impl AsyncRead + Unpin, mut on_line: impl FnMut(String)) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                on_line(line.trim_end_matches(['\n', '\r']).to_string());
            }
        }
    }
}

fn tail_of(stderr: &StderrTail) -> String {
    let lines = stderr.lock().unwrap();
    if lines.is_empty() {
        "(nothing on stderr)".to_string()
    } else {
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// The stderr tail once the (exiting) process has closed its stderr, or after 2 s.
async fn finished_stderr(task: JoinHandle<()>, stderr: &StderrTail) -> String {
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    tail_of(stderr)
}
