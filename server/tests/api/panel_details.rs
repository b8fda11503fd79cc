//! The panel's connection details (permissions, references, Switch / Revoke rights) and the
//! component runtime, through the real router: who may see what, per role.

use crate::common;

use common::spawn;
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    v["references"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn panel_details_follow_the_policy() {
    let app = spawn().await;
    let user = app.signed_in("user@demo.test").await;
    let dev = app.signed_in("developer@demo.test").await;
    let admin = app.signed_in("admin@demo.test").await;
    let my_crm = app.connection_id("my_crm").await.to_string();
    let sales_crm = app.connection_id("sales_crm").await.to_string();

    // A plain user: their own logged-in-user connection, referenced by the components they may open.
    let d: Value =
        app.json(&user, "connection_panel_details", &[("app", "sales_hub"), ("connection_id", &my_crm)]).await;
    assert_eq!(names(&d), ["Deal Intake", "Contact Lookup", "Pipeline"]);
    assert_eq!(d["scopes"], serde_json::json!(["crm.deals.read"]));
    assert_eq!((d["may_switch"].as_bool(), d["may_revoke"].as_bool()), (Some(true), Some(true)));
    assert_eq!(d["datasources"], serde_json::json!([]), "datasources are for builders to see");

    // An admin connection is not theirs to see: not found, whatever the application.
    let (status, _) =
        app.fails(&user, "connection_panel_details", &[("app", "sales_hub"), ("connection_id", &sales_crm)]).await;
    assert_eq!(status, 404);
    // A connection no component of that application uses: not found either.
    let (status, _) =
        app.fails(&user, "connection_panel_details", &[("app", "field_service"), ("connection_id", &my_crm)]).await;
    assert_eq!(status, 404);
    // An id from nowhere, and a signed-out caller.
    let (status, _) =
        app.fails(&user, "connection_panel_details", &[("app", "sales_hub"), ("connection_id", "999999")]).await;
    assert_eq!(status, 404);
    let (status, _) =
        app.fails(&app.client(), "connection_panel_details", &[("app", "sales_hub"), ("connection_id", &my_crm)]).await;
    assert_eq!(status, 401);

    // A developer sees the admin connection and its references, but may neither switch nor revoke it.
    let d: Value =
        app.json(&dev, "connection_panel_details", &[("app", "sales_hub"), ("connection_id", &sales_crm)]).await;
    assert_eq!(names(&d), ["Deal Intake", "Load Deals", "Forecast", "Deal Approval", "Nightly Refresh"]);
    assert_eq!((d["may_switch"].as_bool(), d["may_revoke"].as_bool()), (Some(false), Some(false)));
    // An admin may do both; the revoke confirmation names the datasources that sync over it
    // (this application's only).
    let d: Value =
        app.json(&admin, "connection_panel_details", &[("app", "sales_hub"), ("connection_id", &sales_crm)]).await;
    assert_eq!((d["may_switch"].as_bool(), d["may_revoke"].as_bool()), (Some(true), Some(true)));
    assert_eq!(d["datasources"], serde_json::json!(["CRM Contacts", "CRM Deals"]));
}

/// Opens a live-mode component that needs a connection authorized first: the connection, whether
/// the caller is prompted, and the message. That is an expected answer (200, not a failed request
/// the browser would log).
async fn needs_authorizing(app: &common::TestApp, c: &reqwest::Client, component: &str) -> (String, bool, String) {
    let out: Value = app.json(c, "run_component", &[("app", "sales_hub"), ("component", component)]).await;
    assert_eq!(out["outcome"], "AuthorizationRequired", "{component}: {out}");
    assert!(out.get("sections").is_none(), "{out}");
    let text = |k: &str| out[k].as_str().unwrap_or_else(|| panic!("{k}: {out}")).to_string();
    (text("connection"), out["prompt"].as_bool().expect("prompt"), text("message"))
}

/// The live-mode runtime calls the sandbox through the invoke path: the prompt (or "contact the
/// admin") while unauthorized, the records once authorized; components the caller
/// may not open are not found.
#[tokio::test]
async fn components_run_over_their_connections() {
    let sandbox = common::sandbox::Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let user = app.signed_in("user@demo.test").await;
    let dev = app.signed_in("developer@demo.test").await;
    let admin = app.signed_in("admin@demo.test").await;
    let run = |c: &reqwest::Client, component: &str| {
        let (app, c, component) = (&app, c.clone(), component.to_string());
        async move {
            let (connection, prompt, message) = needs_authorizing(app, &c, &component).await;
            ((connection, prompt), message)
        }
    };

    // The form's on-load workflow uses the admin connection: admins are prompted, others must
    // contact the admin.
    assert_eq!(run(&admin, "deal_intake").await.0, ("sales_crm".into(), true));
    for c in [&dev, &user] {
        let (asked, message) = run(c, "deal_intake").await;
        assert_eq!(asked, ("sales_crm".into(), false));
        assert!(message.contains("Contact your admin"), "{message}");
    }
    // The integration report's system connection: developers are prompted, users are not.
    assert_eq!(run(&dev, "crm_deals").await.0, ("crm_system".into(), true));
    assert_eq!(run(&user, "crm_deals").await.0, ("crm_system".into(), false));
    // The page's logged-in-user connection: everyone is prompted for their own account.
    assert_eq!(run(&user, "pipeline").await.0, ("my_crm".into(), true));

    // Not theirs to open: the workflow itself, another application's component, nonsense.
    for (application, component) in
        [("sales_hub", "load_deals"), ("sales_hub", "forecast"), ("field_service", "tickets")]
    {
        let (status, _) = app.fails(&user, "run_component", &[("app", application), ("component", component)]).await;
        assert_eq!(status, 404, "{application}/{component}");
    }
    let (status, _) = app.fails(&admin, "run_component", &[("app", "sales_hub"), ("component", "forecast")]).await;
    assert_eq!(status, 400);
    let (status, _) =
        app.fails(&app.client(), "run_component", &[("app", "sales_hub"), ("component", "deal_intake")]).await;
    assert_eq!(status, 401);

    // Once the admin authorized it, the form loads the sandbox's deals for everyone who may open it.
    app.connect_oauth(&admin, "sales_crm").await;
    for c in [&admin, &user] {
        let out: Value = app.json(c, "run_component", &[("app", "sales_hub"), ("component", "deal_intake")]).await;
        assert_eq!(out["outcome"], "Ready", "{out}");
        let section = &out["sections"][0];
        assert_eq!(section["title"], "Open deals");
        assert_eq!(section["rows"].as_array().map(Vec::len), Some(5), "{out}");
        assert!(section["columns"].as_array().unwrap().iter().any(|c| c == "id"), "{out}");
    }
    // No credential in the answer.
    let (access, _) = app.oauth_tokens("sales_crm").await;
    let raw = app.call(&user, "run_component", &[("app", "sales_hub"), ("component", "deal_intake")]).await;
    assert!(!raw.text().await.unwrap().contains(&access));

    // Revoked: the prompt again.
    let id = app.connection_id("sales_crm").await.to_string();
    app.json::<()>(&admin, "revoke_authorization", &[("connection_id", &id)]).await;
    assert_eq!(run(&admin, "deal_intake").await.0, ("sales_crm".into(), true));
}

/// R3.5: a logged-in-user connection used in a schedule without the admin's primary
/// account cannot be authorized by users; the panel says so and components do not prompt them.
#[tokio::test]
async fn logged_in_user_connection_in_a_schedule_waits_for_the_admin() {
    let app = spawn().await;
    let user = app.signed_in("user@demo.test").await;
    sqlx::query(
        "INSERT INTO component_connections (component_id, connection_id)
         SELECT s.id, c.id FROM components s, connections c WHERE s.link_name = 'nightly_refresh' AND c.link_name = 'my_crm'",
    )
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let list: Vec<Value> =
        app.json(&user, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
    let my_crm = list.iter().find(|e| e["link_name"] == "my_crm").expect("my_crm listed");
    assert_eq!(my_crm["authorize"], serde_json::json!({"ContactAdmin": "Admin"}));
    let (connection, prompt, _) = needs_authorizing(&app, &user, "pipeline").await;
    assert_eq!((connection.as_str(), prompt), ("my_crm", false));
    let (status, _) = app.authorize_fails(&user, "my_crm", &common::fixtures::oauth("Uma")).await;
    assert_eq!(status, 403);
}
