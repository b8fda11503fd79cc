//! System connections: created by the platform when an integration needs one, with access to
//! all of the service's modules; an existing system connection for the same service is reused.

use crate::common;

use serde_json::Value;

#[tokio::test]
async fn integration_reports_use_or_create_the_system_connection() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let before = app.count("SELECT COUNT(*) FROM connections").await;

    // The workspace already has a system connection for the sandbox CRM: it is referenced.
    let added: Value = app
        .json(
            &admin,
            "add_integration_report",
            &[("app", "field_service"), ("name", "Field Deals"), ("connector", "sandbox_crm"), ("module", "Deals")],
        )
        .await;
    assert_eq!(added["connection_link_name"], "crm_system");
    assert_eq!(added["created_connection"], false);
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, before, "no duplicate");

    // No system connection for Zoho CRM yet: one is created with every module's scope.
    let added: Value = app
        .json(
            &admin,
            "add_integration_report",
            &[("app", "sales_hub"), ("name", "Zoho Leads"), ("connector", "zoho_crm"), ("module", "Leads")],
        )
        .await;
    assert_eq!(added["created_connection"], true);
    let link = added["connection_link_name"].as_str().unwrap().to_string();
    let details: Value = app.json(&admin, "get_connection", &[("link_name", &link)]).await;
    assert_eq!(details["conn_type"], "System");
    assert_eq!(details["scopes"].as_array().unwrap().len(), 3, "access to all modules: {details}");
    let access = details["access"].as_array().unwrap();
    assert!(access.iter().any(|a| a["name"] == "Sales Hub" && a["enabled"] == true));
    // A second report on the same service reuses it.
    let again: Value = app
        .json(
            &admin,
            "add_integration_report",
            &[("app", "sales_hub"), ("name", "Zoho Deals"), ("connector", "zoho_crm"), ("module", "Deals")],
        )
        .await;
    assert_eq!(
        (again["connection_link_name"].as_str(), again["created_connection"].as_bool()),
        (Some(link.as_str()), Some(false))
    );

    // The report's connection shows in the builder's tab for that component; plain users never
    // see system connections.
    let tab: Vec<Value> = app
        .json(
            &admin,
            "app_connections",
            &[("app", "sales_hub"), ("component", "zoho_leads"), ("environment", "Development")],
        )
        .await;
    assert_eq!(tab.len(), 1);
    let user = app.signed_in("user@demo.test").await;
    assert_eq!(app.fails(&user, "get_connection", &[("link_name", &link)]).await.0, 404);
    assert_eq!(
        app.fails(
            &user,
            "add_integration_report",
            &[("app", "sales_hub"), ("name", "X"), ("connector", "zoho_crm"), ("module", "Leads")]
        )
        .await
        .0,
        403
    );

    // Bad input.
    let (_, e) = app
        .fails(
            &admin,
            "add_integration_report",
            &[("app", "sales_hub"), ("name", "Bad"), ("connector", "zoho_crm"), ("module", "Nope")],
        )
        .await;
    assert_eq!(e.field(), Some("module"));
    let (s, _) = app
        .fails(
            &admin,
            "add_integration_report",
            &[("app", "sales_hub"), ("name", "Bad"), ("connector", "nope"), ("module", "Leads")],
        )
        .await;
    assert_eq!(s, 404);
    let (_, e) = app
        .fails(
            &admin,
            "add_integration_report",
            &[("app", "sales_hub"), ("name", "Zoho Leads"), ("connector", "zoho_crm"), ("module", "Leads")],
        )
        .await;
    assert_eq!(e.field(), Some("name"), "duplicate component");
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, before + 1);
}
