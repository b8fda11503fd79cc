//! Property: whatever arguments reach the most used server functions, the answer is a success or
//! a 4xx carrying the shared `AppError` JSON with a message; never a 500, never a panic (the
//! server keeps answering `/healthz`).
//!
//! Leptos 0.8 `#[server]` functions decode their arguments with the default input codec,
//! `PostUrl` (a url-encoded form body, what the WASM client sends); none of these opts into
//! `Json`. A JSON body is still something any client can send, so it is tried too: it must be
//! refused as a bad request, not crash. `PROPTEST_CASES` sets the cases per function (64).

use crate::common;

use common::TestApp;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The ten most used functions (README, `end2end/`, the integration tests) and the argument
/// names each reads, nested names as the client writes them.
const FUNCTIONS: [(&str, &[&str]); 10] = [
    ("login", &["email", "password", "next"]),
    ("current_user", &[]),
    ("app_connections", &["app", "component", "environment"]),
    ("workspace_connections", &[]),
    ("get_connection", &["link_name"]),
    (
        "authorize_connection",
        &[
            "connection_id",
            "account_name",
            "environments[0]",
            "environments[1]",
            "credentials[api_key]",
            "credentials[username]",
            "credentials[password]",
            "replace",
        ],
    ),
    ("complete_authorization", &["flow", "code", "iss", "error", "error_description"]),
    (
        "invoke_url",
        &[
            "request[app]",
            "request[connection]",
            "request[method]",
            "request[url]",
            "request[headers][0][0]",
            "request[headers][0][1]",
            "request[body]",
            "request[environment]",
        ],
    ),
    ("run_component", &["app", "component"]),
    ("rename_account", &["connection_id", "environment", "name"]),
];

/// Values that reach past decoding into the functions (real ids, links, environments), and
/// values that should not decode (out-of-range numbers, wrong types).
const PLAUSIBLE: &[&str] = &[
    "1",
    "2",
    "4",
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "1e3",
    "true",
    "false",
    "Production",
    "Development",
    "Stage",
    "production",
    "sales_hub",
    "field_service",
    "weather",
    "sales_crm",
    "my_crm",
    "deal_intake",
    "site_weather",
    "GET",
    "DELETE",
    "http://127.0.0.1:9/api/weather",
    "user@demo.test",
    "demo-password",
    "/",
    "",
    "[]",
    "{}",
    "null",
];

#[derive(Debug, Clone)]
enum Body {
    /// `application/x-www-form-urlencoded` pairs, encoded as the client encodes them.
    Form(Vec<(String, String)>),
    /// The same pairs as a JSON object (`application/json`).
    Json(serde_json::Value),
    /// Any bytes (not necessarily UTF-8) declared as a form.
    Raw(Vec<u8>),
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(PLAUSIBLE).prop_map(str::to_owned),
        2 => any::<String>(),
        1 => "[a-z_\\[\\]0-9=&%]{0,24}",
    ]
}

fn key(known: &'static [&'static str]) -> BoxedStrategy<String> {
    if known.is_empty() {
        return "[a-z_\\[\\]0-9]{1,16}".boxed();
    }
    prop_oneof![
        4 => proptest::sample::select(known).prop_map(str::to_owned),
        1 => "[a-z_\\[\\]0-9]{1,16}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        value().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        proptest::collection::vec(value().prop_map(Value::String), 0..3).prop_map(Value::Array),
    ]
}

fn body(known: &'static [&'static str]) -> impl Strategy<Value = Body> {
    let pairs = proptest::collection::vec((key(known), value()), 0..8);
    let object = proptest::collection::vec((key(known), json_value()), 0..6)
        .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect()));
    prop_oneof![
        6 => pairs.prop_map(Body::Form),
        3 => object.prop_map(Body::Json),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Body::Raw),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// Sends one body to `/api/<name>` and checks the answer.
async fn check(app: &TestApp, client: &reqwest::Client, name: &str, body: &Body) -> Result<(), String> {
    let rb = client.post(app.url(&format!("/api/{name}")));
    let rb = match body {
        Body::Form(pairs) => rb.form(pairs),
        Body::Json(v) => rb.json(v),
        Body::Raw(bytes) => rb.header("content-type", "application/x-www-form-urlencoded").body(bytes.clone()),
    };
    let res = rb.send().await.map_err(|e| format!("no answer (did the server panic?): {e}"))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| format!("answer cut off: {e}"))?;
    if status.is_success() {
        return Ok(());
    }
    if !status.is_client_error() {
        return Err(format!("{status}: {text}"));
    }
    match serde_json::from_str::<app::error::AppError>(&text) {
        Ok(e) if !e.to_string().trim().is_empty() => Ok(()),
        _ => Err(format!("{status} without an AppError message: {text}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_function_arguments_never_answer_500() {
    let app = common::spawn().await;
    let sessions = [app.signed_in("admin@demo.test").await, app.signed_in("user@demo.test").await];
    let handle = tokio::runtime::Handle::current();
    for (name, known) in FUNCTIONS {
        // Fixed edge cases first: a NUL character in every argument (PostgreSQL refuses it in
        // text), a non-UTF-8 body, and JSON that is not an object.
        let nul: Vec<(String, String)> = known.iter().map(|k| (k.to_string(), "a\u{0}b".to_string())).collect();
        for (i, body) in
            [Body::Form(nul), Body::Raw(vec![0xff, 0xfe, b'=', 0x80]), Body::Json(serde_json::json!(["x", 1]))]
                .iter()
                .enumerate()
        {
            for client in &sessions {
                if let Err(e) = check(&app, client, name, body).await {
                    panic!("{name}, edge case {i}: {e}");
                }
            }
        }
        let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let result = tokio::task::block_in_place(|| {
            runner.run(&(body(known), any::<bool>()), |(body, as_user)| {
                let client = &sessions[usize::from(as_user)];
                handle.block_on(check(&app, client, name, &body)).map_err(TestCaseError::fail)
            })
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        let health = sessions[0].get(app.url("/healthz")).send().await.expect("healthz answers");
        assert_eq!(health.status(), 200, "after {name}");
    }
}
