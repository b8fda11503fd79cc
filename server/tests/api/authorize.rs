//! Creating and authorizing connections against the sandbox provider (R5.2, R7.1, R8.1), and every
//! security rule of the OAuth2 flow: PKCE S256, state, the 90-second window, replay, iss,
//! another user's session, no redirects on the token exchange; credentials encrypted at rest.

use crate::common;

use app::authorizations::{AuthorizeOutcome, FlowStatus};
use app::error::AppError;
use common::fixtures::{api_key_auth, basic_auth, Authorization};
use common::sandbox::{authorize_in_browser, Sandbox};
use common::{spawn_with, spawn_with_sandbox, TestApp};
use serde_json::Value;

/// Creates a connection from a built-in connector as the admin.
async fn create(
    app: &TestApp,
    admin: &reqwest::Client,
    connector: &str,
    name: &str,
    scopes: &[&str],
    same: bool,
) -> Value {
    let id = app.connector_id(admin, connector).await.to_string();
    let mut args = vec![
        ("input[connector_id]".to_string(), id),
        ("input[display_name]".to_string(), name.to_string()),
        ("input[same_for_all_envs]".to_string(), same.to_string()),
        ("input[conn_type]".to_string(), "admin".to_string()),
    ];
    for (i, s) in scopes.iter().enumerate() {
        args.push((format!("input[scopes][{i}]"), s.to_string()));
    }
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.json(admin, "create_connection", &args).await
}

pub(crate) async fn start(
    app: &TestApp,
    client: &reqwest::Client,
    connection_id: i64,
    account: &str,
    envs: &[&str],
) -> (String, String) {
    let id = connection_id.to_string();
    let mut args = vec![("connection_id".to_string(), id), ("account_name".to_string(), account.to_string())];
    for (i, e) in envs.iter().enumerate() {
        args.push((format!("environments[{i}]"), e.to_string()));
    }
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match app.json::<AuthorizeOutcome>(client, "authorize_connection", &args).await {
        AuthorizeOutcome::Redirect { flow, authorize_url, window_secs } => {
            assert_eq!(window_secs, app.settings.oauth_window_secs);
            (flow, authorize_url)
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

pub(crate) async fn status(app: &TestApp, client: &reqwest::Client, flow: &str) -> FlowStatus {
    app.json(client, "authorization_status", &[("flow", flow)]).await
}

/// Follows the provider's redirect back to the app in the user's browser; returns the page.
pub(crate) async fn land(client: &reqwest::Client, callback: &reqwest::Url) -> String {
    let res = client.get(callback.clone()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The arguments the authorization dialog sends when the popup hands the answer over.
fn handoff_args(flow: &str, consent: &common::sandbox::Consent) -> Vec<(&'static str, String)> {
    let mut args = vec![("flow", flow.to_string())];
    for key in ["code", "iss", "error", "error_description"] {
        if let Some(v) = consent.param(key) {
            args.push((key, v));
        }
    }
    args
}

/// The panel embedded on another site has its session in its frame; the provider's popup is a
/// top-level window without it. The popup hands the answer to the dialog, which finishes the
/// flow with the frame's session.
#[tokio::test]
async fn a_popup_without_the_session_hands_the_answer_to_the_window_that_started_it() {
    let sandbox = Sandbox::start(&[]).await;
    let app = spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let conn = create(&app, &admin, "sandbox_crm", "Embedded CRM", &[], true).await;
    let id = conn["id"].as_i64().unwrap();
    let (flow, url) = start(&app, &admin, id, "Alice embedded", &[]).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;

    let popup = app.client(); // no session at all
    let page = land(&popup, &consent.callback_url).await;
    assert!(page.contains("data-outcome=\"handoff\""), "{page}");
    assert!(page.contains("window.opener.postMessage(m,location.origin)"), "addressed to this origin only: {page}");
    assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Pending { .. }));
    assert_eq!(accounts(&app).await, 0);

    // Without a session, the hand-over cannot be used.
    assert_eq!(app.fails(&popup, "complete_authorization", &[("flow", &flow)]).await.0, 401);
    let args = handoff_args(&flow, &consent);
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let finished: FlowStatus = app.json(&admin, "complete_authorization", &args).await;
    assert_eq!(finished, FlowStatus::Connected { account_name: "Alice embedded".into() });
    assert_eq!(status(&app, &admin, &flow).await, finished);
    assert_eq!(accounts(&app).await, 1);
    // Spent: neither the popup nor a replay of the hand-over can use it again.
    assert!(land(&popup, &consent.callback_url).await.contains("already used"));
    let again: FlowStatus = app.json(&admin, "complete_authorization", &args).await;
    assert!(matches!(again, FlowStatus::Failed { .. }), "{again:?}");
}

async fn accounts(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM authorized_accounts").await
}

#[tokio::test]
async fn oauth2_flow_connects_with_pkce_state_and_iss() {
    let sandbox = Sandbox::start(&[]).await;
    let app = spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let conn = create(&app, &admin, "sandbox_crm", "Deals feed", &["crm.contacts.read"], true).await;
    assert_eq!(conn["link_name"], "deals_feed", "link name derived from the name");
    let scopes: Vec<String> = serde_json::from_value(conn["scopes"].clone()).unwrap();
    assert!(scopes.contains(&"crm.deals.read".to_string()), "the required scope is always included: {scopes:?}");
    let id = conn["id"].as_i64().unwrap();

    let (flow, url) = start(&app, &admin, id, "Alice at Sandbox", &[]).await;
    let parsed = reqwest::Url::parse(&url).unwrap();
    let q = |k: &str| parsed.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert!(q("code_challenge").is_some_and(|c| c.len() >= 43));
    assert_eq!(q("state").as_deref(), Some(flow.as_str()));
    assert_eq!(q("redirect_uri"), Some(app.url("/oauth/callback")));
    assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Pending { seconds_left } if seconds_left > 80));

    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    assert_eq!(consent.param("iss").as_deref(), Some(sandbox.url.as_str()));
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("Connected as Alice at Sandbox."), "{page}");
    assert_eq!(status(&app, &admin, &flow).await, FlowStatus::Connected { account_name: "Alice at Sandbox".into() });

    // Every environment is authorized (same authorization everywhere), by the admin.
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "deals_feed")]).await;
    for env in details["environments"].as_array().unwrap() {
        assert_eq!(env["status"], "Connected", "{env}");
        assert_eq!(env["account_name"], "Alice at Sandbox");
        assert_eq!(env["authorized_by"], "Ada Admin");
    }

    // The tokens work against the provider's API and are encrypted at rest.
    let (access_token, refresh_token) = app.oauth_tokens("deals_feed").await;
    let account_id: i64 = sqlx::query_scalar("SELECT id FROM authorized_accounts WHERE name = 'Alice at Sandbox'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(refresh_token.is_some());
    let api = common::http()
        .get(sandbox.endpoint("/api/crm/Deals?per_page=3"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let blob: Vec<u8> = sqlx::query_scalar("SELECT credentials_ct FROM authorized_accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(!blob.windows(access_token.len()).any(|w| w == access_token.as_bytes()), "no plaintext token at rest");
    assert!(!page.contains(&access_token) && !details.to_string().contains(&access_token));

    // Replay: the same answer again is refused and changes nothing.
    let before = accounts(&app).await;
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("not valid or was already used"), "{page}");
    assert_eq!(accounts(&app).await, before);
}

#[tokio::test]
async fn denied_forged_wrong_issuer_and_foreign_session_are_refused() {
    let sandbox = Sandbox::start(&[]).await;
    let app = spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let id = app.connection_id("sales_crm").await;

    // The user clicks Deny on the provider's page.
    let (flow, url) = start(&app, &admin, id, "Denied", &[]).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", false).await;
    assert_eq!(consent.param("error").as_deref(), Some("access_denied"));
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("Access was denied"), "{page}");
    assert_eq!(status(&app, &admin, &flow).await, FlowStatus::Denied);

    // A forged callback with a state nobody issued.
    let page = land(&admin, &reqwest::Url::parse(&app.url("/oauth/callback?state=forged&code=abc")).unwrap()).await;
    assert!(page.contains("not valid or was already used"), "{page}");
    let page = land(&admin, &reqwest::Url::parse(&app.url("/oauth/callback?code=abc")).unwrap()).await;
    assert!(page.contains("no valid state"), "{page}");

    // A wrong issuer, then a missing one (the sandbox advertises iss).
    for (tamper, expected) in [(Some("http://evil.example"), "issuer mismatch"), (None, "missing iss")] {
        let (flow, url) = start(&app, &admin, id, "Tampered", &[]).await;
        let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
        let cb = consent.with_iss(tamper);
        let page = land(&admin, &cb).await;
        assert!(page.contains(expected), "{page}");
        assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Failed { .. }));
    }

    // The answer arrives in another user's session: that window only hands it to the window
    // that opened it (nothing is finished or spent there); finishing it with that session is
    // refused, and the flow is spent.
    let (flow, url) = start(&app, &admin, id, "Hijacked", &[]).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    let other = app.signed_in("superadmin@demo.test").await;
    let page = land(&other, &consent.callback_url).await;
    assert!(page.contains("data-outcome=\"handoff\""), "{page}");
    assert!(!page.contains(consent.param("code").unwrap().as_str()), "the code is not written into the page");
    assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Pending { .. }));
    let args = handoff_args(&flow, &consent);
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let finished: FlowStatus = app.json(&other, "complete_authorization", &args).await;
    assert!(
        matches!(&finished, FlowStatus::Failed { message } if message.contains("started by someone else")),
        "{finished:?}"
    );
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("already used"), "{page}");
    assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Failed { .. }));
    assert_eq!(accounts(&app).await, 0, "nothing was stored by any refused answer");
    // A flow belongs to whoever started it.
    assert_eq!(app.fails(&other, "authorization_status", &[("flow", &flow)]).await.0, 404);
}

#[tokio::test]
async fn the_authorization_window_expires() {
    let sandbox = Sandbox::start(&[]).await;
    let (mut settings, dir) = common::settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.oauth_window_secs = 1;
    let app = spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    let id = app.connection_id("sales_crm").await;

    // Answer arrives after the window: refused.
    let (flow, url) = start(&app, &admin, id, "Too slow", &[]).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("window expired"), "{page}");
    assert_eq!(status(&app, &admin, &flow).await, FlowStatus::Expired);

    // Nobody answers at all: the status turns Expired, and a late answer is refused.
    let (flow, url) = start(&app, &admin, id, "Never", &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(status(&app, &admin, &flow).await, FlowStatus::Expired);
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("already used"), "{page}");
    assert_eq!(accounts(&app).await, 0);
}

#[tokio::test]
async fn the_token_exchange_follows_no_redirects() {
    let sandbox = Sandbox::start(&[]).await;
    // A token endpoint that redirects to the real one.
    let target = sandbox.endpoint("/token");
    let redirector = axum::Router::new().route(
        "/token",
        axum::routing::post(move || {
            let target = target.clone();
            async move { axum::response::Redirect::temporary(&target) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await });

    let app = common::spawn_with_sandbox_allowing(&sandbox, &[redirect_addr]).await;
    let admin = app.signed_in("admin@demo.test").await;
    let custom = [
        ("input[name]", "Redirecting CRM"),
        ("input[auth_type]", "oauth2"),
        ("input[client_id]", "crm-connector"),
        ("input[client_secret]", "crm-connector-secret"),
        ("input[authorize_url]", &format!("{}/auth", sandbox.url)),
        ("input[token_url]", &format!("http://{redirect_addr}/token")),
        ("input[scopes]", "crm.deals.read"),
        ("input[api_base]", &sandbox.url),
    ];
    let connector: Value = app.json(&admin, "create_custom_connector", &custom).await;
    let cid = connector["id"].as_i64().unwrap().to_string();
    let conn: Value = app
        .json(
            &admin,
            "create_connection",
            &[
                ("input[connector_id]", cid.as_str()),
                ("input[display_name]", "Redirected"),
                ("input[same_for_all_envs]", "true"),
                ("input[conn_type]", "admin"),
                ("input[scopes][0]", "crm.deals.read"),
            ],
        )
        .await;
    sandbox.reset_stats().await;
    let (flow, url) = start(&app, &admin, conn["id"].as_i64().unwrap(), "Redirected", &[]).await;
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    let page = land(&admin, &consent.callback_url).await;
    assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Failed { .. }), "{page}");
    let stats = sandbox.stats().await;
    assert_eq!(stats["token_requests"]["authorization_code"], 0, "the redirect was not followed: {stats}");
    assert_eq!(accounts(&app).await, 0);
}

#[tokio::test]
async fn api_key_basic_environments_reuse_and_reauthorize() {
    let sandbox = Sandbox::start(&[("SANDBOX_ATLASSIAN_TOKENS", "atlassian-api-token-2")]).await;
    let app = spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;

    // API key (same authorization everywhere).
    let out = app.authorize(&admin, "weather", &api_key_auth("Ops key", "sandbox-weather-key")).await;
    assert_eq!(out, AuthorizeOutcome::Authorized { account_name: "Ops key".into(), verified: true });

    // Basic auth, for development only (different authorizations per environment).
    let tracker = app.connection_id("issue_tracker").await.to_string();
    let (s, e) = app.authorize_fails(&admin, "issue_tracker", &basic_auth("Builder", &[], "x", "y")).await;
    assert_eq!((s, e.field()), (400, Some("environments")), "environments must be chosen");
    let (_, e) = app.authorize_fails(&admin, "issue_tracker", &basic_auth("Builder", &["Development"], "", "")).await;
    assert_eq!(e.field(), Some("username"));
    let development = basic_auth("Builder", &["Development"], "builder@sandbox.test", "atlassian-api-token");
    app.authorize(&admin, "issue_tracker", &development).await;
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "issue_tracker")]).await;
    let envs: Vec<(String, String)> = details["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["environment"].as_str().unwrap().to_string(), e["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        envs,
        [
            ("Development".into(), "Connected".into()),
            ("Stage".into(), "NotConnected".into()),
            ("Production".into(), "NotConnected".into())
        ]
    );

    // Stage: reuse the development account from the dropdown.
    let options: Vec<Value> = app.json(&admin, "reusable_accounts", &[("connection_id", &tracker)]).await;
    assert_eq!(options.len(), 1);
    assert_eq!(options[0]["label"], "Builder");
    let account = options[0]["id"].as_i64().unwrap().to_string();
    app.json::<()>(
        &admin,
        "reuse_account",
        &[("connection_id", &tracker), ("account_id", &account), ("environments[0]", "Stage")],
    )
    .await;
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "issue_tracker")]).await;
    assert_eq!(details["environments"][1]["status"], "Connected");
    assert_eq!(details["environments"][1]["account_name"], "Builder");

    // Someone else's account is not offered and cannot be forced.
    let other = app.signed_in("superadmin@demo.test").await;
    let theirs: Vec<Value> = app.json(&other, "reusable_accounts", &[("connection_id", &tracker)]).await;
    assert!(theirs.is_empty());
    let (status, _) = app
        .fails(
            &other,
            "reuse_account",
            &[("connection_id", &tracker), ("account_id", &account), ("environments[0]", "Production")],
        )
        .await;
    assert_eq!(status, 404);

    // Reauthorize development with a new account: the old one stops being used at once.
    let replacement = basic_auth("Builder two", &["Development"], "builder@sandbox.test", "atlassian-api-token-2");
    app.authorize(&admin, "issue_tracker", &Authorization { replace: true, ..replacement }).await;
    let details: Value = app.json(&admin, "get_connection", &[("link_name", "issue_tracker")]).await;
    assert_eq!(details["environments"][0]["account_name"], "Builder two");
    assert_eq!(details["environments"][1]["account_name"], "Builder", "stage keeps its own authorization");
}

#[tokio::test]
async fn accounts_from_before_names_existed_must_be_named_when_reused() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let tracker = app.connection_id("issue_tracker").await;
    // An account without a name, linked to the connection (as data from before the feature).
    let conn = app::connections::ssr::load(&app.state, 1, tracker).await.unwrap();
    let connector = app::connectors::ssr::load(&app.state, 1, conn.connector_id).await.unwrap();
    let user = app::auth::ssr::user_by_id(&app.state, 2).await.unwrap().unwrap();
    let creds = app::authorizations::ssr::Credentials::Basic { username: "old".into(), password: "old".into() };
    let id = app::authorizations::ssr::store_authorization(
        &app.state,
        &user,
        &conn,
        &connector,
        "tmp",
        &creds,
        &[app::domain::Environment::Development],
    )
    .await
    .unwrap();
    sqlx::query("UPDATE authorized_accounts SET name = NULL WHERE id = $1")
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();

    let t = tracker.to_string();
    let options: Vec<Value> = app.json(&admin, "reusable_accounts", &[("connection_id", &t)]).await;
    assert_eq!(options[0]["label"], "Issue Tracker", "listed by connection name");
    assert_eq!(options[0]["needs_name"], true);
    let a = id.to_string();
    let (_, e) = app
        .fails(&admin, "reuse_account", &[("connection_id", &t), ("account_id", &a), ("environments[0]", "Stage")])
        .await;
    assert_eq!(e.field(), Some("account_name"));
    app.json::<()>(
        &admin,
        "reuse_account",
        &[("connection_id", &t), ("account_id", &a), ("environments[0]", "Stage"), ("account_name", "Legacy builder")],
    )
    .await;
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM authorized_accounts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Legacy builder"));
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_half_written() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let long = "n".repeat(500);
    for name in ["", "   ", long.as_str(), "<script>alert(1)</script>"] {
        let (s, e) = app.authorize_fails(&admin, "weather", &api_key_auth(name, "k")).await;
        assert_eq!((s, e.field()), (400, Some("account_name")), "{name:?}");
    }
    let crm = app.connector_id(&admin, "sandbox_crm").await.to_string();
    let base = |name: &'static str| {
        vec![
            ("input[connector_id]", crm.clone()),
            ("input[display_name]", name.to_string()),
            ("input[conn_type]", "admin".to_string()),
        ]
    };
    let call = |args: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.fails(&admin, "create_connection", &a).await
        }
    };
    let (s, e) = call(base("Sales CRM")).await;
    assert_eq!((s, e.field()), (400, Some("link_name")), "duplicate link name: {e}");
    assert!(e.to_string().contains("already exists"));
    let mut unknown = base("Scoped");
    unknown.push(("input[scopes][0]", "crm.everything".into()));
    assert_eq!(call(unknown).await.1.field(), Some("scopes"));
    let mut system = base("Sys");
    system[2].1 = "system".into();
    assert_eq!(call(system).await.1.field(), Some("conn_type"));
    let (_, e) = app
        .fails(
            &admin,
            "create_custom_connector",
            &[
                ("input[name]", "Broken"),
                ("input[auth_type]", "oauth2"),
                ("input[client_id]", "x"),
                ("input[client_secret]", "y"),
                ("input[authorize_url]", "not a url"),
                ("input[token_url]", "https://x.example/token"),
                ("input[api_base]", "https://x.example"),
            ],
        )
        .await;
    assert_eq!(e.field(), Some("authorize_url"));
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 6, "the demo's six, nothing half-written");
    assert_eq!(app.count("SELECT COUNT(*) FROM connectors WHERE kind = 'custom'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0);

    // A plain user may not authorize an admin connection: told to contact the admin.
    let user = app.signed_in("user@demo.test").await;
    let (s, e) = app.authorize_fails(&user, "weather", &api_key_auth("Mine", "k")).await;
    assert_eq!(s, 403);
    assert!(e.to_string().contains("Contact your admin"), "{e}");
    // …nor create connections or connectors.
    assert_eq!(app.fails(&user, "list_connectors", &[]).await.0, 403);
    assert!(matches!(
        app.fails(
            &user,
            "create_connection",
            &[("input[connector_id]", &crm), ("input[display_name]", "X"), ("input[conn_type]", "admin")]
        )
        .await
        .1,
        AppError::Forbidden(_)
    ));
}

#[tokio::test]
async fn ciphertexts_are_bound_to_their_row() {
    // The service checks each key when it is authorized: it knows both.
    let sandbox = Sandbox::start(&[("SANDBOX_API_KEYS", "key-one,key-two")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let weather = app.connection_id("weather").await.to_string();
    for key in ["key-one", "key-two"] {
        app.authorize(&admin, "weather", &api_key_auth(key, key)).await;
    }
    // Move the first account's ciphertext onto the second row: it must not decrypt there.
    sqlx::query(
        "UPDATE authorized_accounts SET credentials_ct = (SELECT credentials_ct FROM authorized_accounts WHERE name = 'key-one')
         WHERE name = 'key-two'",
    )
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let conn = app::connections::ssr::load(&app.state, 1, weather.parse().unwrap()).await.unwrap();
    let user = app::auth::ssr::user_by_id(&app.state, 2).await.unwrap().unwrap();
    let err = app::authorizations::ssr::credentials_for(&app.state, &conn, &user, app::domain::Environment::Production)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Internal { .. }));
}

#[tokio::test]
async fn the_authorized_account_name_can_be_edited_and_is_rendered_escaped() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let weather = app.connection_id("weather").await.to_string();
    app.authorize(&admin, "weather", &api_key_auth("Ops key", "sandbox-weather-key")).await;
    let renamed: String = app
        .json(
            &admin,
            "rename_account",
            &[("connection_id", &weather), ("environment", "Production"), ("name", "Ops & Field")],
        )
        .await;
    assert_eq!(renamed, "Ops & Field");
    let page = admin.get(app.url("/microservices/connections/weather")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Ops &amp; Field"), "rendered escaped in the HTML");
    let long = "n".repeat(51);
    for bad in ["", long.as_str(), "<img src=x onerror=alert(1)>"] {
        let (s, e) = app
            .fails(
                &admin,
                "rename_account",
                &[("connection_id", &weather), ("environment", "Production"), ("name", bad)],
            )
            .await;
        assert_eq!((s, e.field()), (400, Some("account_name")), "{bad:?}");
    }
    // Someone who may not see or authorize it: refused, and nothing changes.
    let user = app.signed_in("user@demo.test").await;
    let (s, _) = app
        .fails(&user, "rename_account", &[("connection_id", &weather), ("environment", "Production"), ("name", "Mine")])
        .await;
    assert_eq!(s, 404);
    let dev = app.signed_in("developer@demo.test").await;
    let (s, _) = app
        .fails(&dev, "rename_account", &[("connection_id", &weather), ("environment", "Production"), ("name", "Mine")])
        .await;
    assert_eq!(s, 403);
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM authorized_accounts").fetch_one(&app.state.db.pool).await.unwrap();
    assert_eq!(name.as_deref(), Some("Ops & Field"));
}
