//! The panel's connection details (permissions, references, Switch / Revoke rights) and the
//! component runtime, through the real router: who may see what, per role.

mod common;

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
    // An admin may do both.
    let d: Value =
        app.json(&admin, "connection_panel_details", &[("app", "sales_hub"), ("connection_id", &sales_crm)]).await;
    assert_eq!((d["may_switch"].as_bool(), d["may_revoke"].as_bool()), (Some(true), Some(true)));
}
