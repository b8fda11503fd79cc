//! Canary secrets: credentials typed by people (API key, password, client secret) and tokens
//! issued by the provider never appear in any server-function response, HTML page or log line.

use crate::common;

use app::authorizations::AuthorizeOutcome;
use common::sandbox::{authorize_in_browser, Sandbox};

const CANARY_KEY: &str = "CANARY-apikey-7f3a91";
const CANARY_PASSWORD: &str = "CANARY-password-52c0de";
const CANARY_CLIENT_SECRET: &str = "CANARY-clientsecret-e19b44";

#[tokio::test]
async fn canary_secrets_never_leave_the_server() {
    common::capture_logs();
    let sandbox =
        Sandbox::start(&[("SANDBOX_API_KEYS", CANARY_KEY), ("SANDBOX_ATLASSIAN_TOKENS", CANARY_PASSWORD)]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let user = app.signed_in("user@demo.test").await;
    let mut seen = String::new();

    // An API key, a basic-auth password, a custom connector's client secret.
    let weather = app.connection_id("weather").await.to_string();
    let tracker = app.connection_id("issue_tracker").await.to_string();
    for args in [
        vec![("connection_id", weather.as_str()), ("account_name", "Key"), ("credentials[api_key]", CANARY_KEY)],
        vec![
            ("connection_id", tracker.as_str()),
            ("account_name", "Basic"),
            ("environments[0]", "Production"),
            ("credentials[username]", "builder@sandbox.test"),
            ("credentials[password]", CANARY_PASSWORD),
        ],
    ] {
        let out: AuthorizeOutcome = app.json(&admin, "authorize_connection", &args).await;
        seen.push_str(&format!("{out:?}"));
    }
    let token_url = sandbox.endpoint("/token");
    let auth_url = sandbox.endpoint("/auth");
    let connector = app
        .call(
            &admin,
            "create_custom_connector",
            &[
                ("input[name]", "Canary CRM"),
                ("input[auth_type]", "oauth2"),
                ("input[client_id]", "crm-connector"),
                ("input[client_secret]", CANARY_CLIENT_SECRET),
                ("input[authorize_url]", &auth_url),
                ("input[token_url]", &token_url),
                ("input[scopes]", "crm.deals.read"),
                ("input[api_base]", &sandbox.url),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    seen.push_str(&connector);

    // A real OAuth2 flow: its code and tokens are secrets too.
    let sales = app.connection_id("sales_crm").await.to_string();
    let out: AuthorizeOutcome =
        app.json(&admin, "authorize_connection", &[("connection_id", &sales), ("account_name", "Alice")]).await;
    let AuthorizeOutcome::Redirect { authorize_url, .. } = out else { panic!("{out:?}") };
    let consent = authorize_in_browser(&authorize_url, "alice", "alice-password", true).await;
    let code = consent.param("code").expect("code");
    seen.push_str(&admin.get(consent.callback_url.clone()).send().await.unwrap().text().await.unwrap());
    let creds = app.stored_credentials("sales_crm").await;
    let (access_token, refresh_token) = app.oauth_tokens("sales_crm").await;
    assert!(!format!("{creds:?}").contains(&access_token), "Debug of credentials is redacted");

    // Everything a browser can read.
    for (client, name, args) in [
        (&admin, "list_connectors", vec![]),
        (&admin, "workspace_connections", vec![]),
        (&admin, "connections_page", vec![]),
        (&admin, "list_operations", vec![]),
        (&admin, "app_connections", vec![("app", "sales_hub"), ("environment", "Production")]),
        (&admin, "app_connections", vec![("app", "field_service"), ("environment", "Production")]),
        (&user, "app_connections", vec![("app", "sales_hub"), ("environment", "Production")]),
        (&admin, "get_connection", vec![("link_name", "weather")]),
        (&admin, "get_connection", vec![("link_name", "issue_tracker")]),
        (&admin, "get_connection", vec![("link_name", "sales_crm")]),
        (&admin, "reusable_accounts", vec![("connection_id", weather.as_str())]),
        (&admin, "reusable_accounts", vec![("connection_id", sales.as_str())]),
    ] {
        seen.push_str(&app.call(client, name, &args).await.text().await.unwrap());
    }
    for path in [
        "/microservices",
        "/microservices/connections/weather",
        "/microservices/connections/sales_crm",
        "/app/sales_hub",
        "/operations",
    ] {
        seen.push_str(&admin.get(app.url(path)).send().await.unwrap().text().await.unwrap());
    }
    seen.push_str(&format!("{:?} {:?}", app.settings, app.state));

    let logged = common::captured_logs();
    assert!(logged.contains("oauth flow started"), "logs were captured");
    let mut secrets = vec![CANARY_KEY, CANARY_PASSWORD, CANARY_CLIENT_SECRET, access_token.as_str(), code.as_str()];
    if let Some(r) = refresh_token.as_deref() {
        secrets.push(r);
    }
    for secret in secrets {
        assert!(!seen.contains(secret), "a secret reached a response: {secret}");
        assert!(!logged.contains(secret), "a secret reached the logs: {secret}");
    }
}
