//! The demo workspace: one user per role, two applications with every kind of component, the
//! sandbox service's connectors and connections of each type.

use super::db::Db;
use super::ids::now_ms;
use crate::auth::ssr::hash_password;
use crate::error::AppResult;
use serde_json::json;

/// The demo sign-ins, printed by the run command.
pub const DEMO_USERS: [(&str, &str, &str); 4] = [
    ("superadmin@demo.test", "Sam Super", "super_admin"),
    ("admin@demo.test", "Ada Admin", "admin"),
    ("developer@demo.test", "Dev Developer", "developer"),
    ("user@demo.test", "Uma User", "user"),
];
pub const DEMO_PASSWORD: &str = "demo-password";

/// Seeds the demo workspace unless the database already has one. Returns whether it seeded.
/// The built-in connectors must already be in the database (`connectors::ssr::sync_catalog`).
pub async fn seed_demo(db: &Db) -> AppResult<bool> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces").fetch_one(&db.pool).await?;
    if existing > 0 {
        return Ok(false);
    }
    let now = now_ms();
    let ws: i64 =
        sqlx::query_scalar("INSERT INTO workspaces (name, data_center, created_at) VALUES ($1, 'us', $2) RETURNING id")
            .bind("Demo Workspace")
            .bind(now)
            .fetch_one(&db.pool)
            .await?;
    let hash = hash_password(DEMO_PASSWORD).await?;
    let mut users = Vec::new();
    for (email, name, role) in DEMO_USERS {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (workspace_id, email, display_name, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(ws)
        .bind(email)
        .bind(name)
        .bind(role)
        .bind(&hash)
        .bind(now)
        .fetch_one(&db.pool)
        .await?;
        users.push(id);
    }
    let admin = users[1];
    let plain_user = users[3];

    let connector = |link: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT id FROM connectors WHERE workspace_id IS NULL AND link_name = $1")
            .bind(link)
            .fetch_one(&db.pool)
            .await
    };
    let crm = connector("sandbox_crm").await?;
    let weather = connector("sandbox_weather").await?;
    let atlassian = connector("sandbox_atlassian").await?;
    let payments = connector("sandbox_payments").await?;

    let app = |name: &'static str, link: &'static str, theme: &'static str, installed: Option<&'static str>| async move {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO applications (workspace_id, name, link_name, theme, installed_from, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(ws)
        .bind(name)
        .bind(link)
        .bind(theme)
        .bind(installed)
        .bind(now)
        .fetch_one(&db.pool)
        .await
    };
    let sales = app("Sales Hub", "sales_hub", "classic", None).await?;
    let field = app("Field Service", "field_service", "modern", Some("Marketplace: Field Service Kit")).await?;

    let conn = |display: &'static str,
                link: &'static str,
                connector: i64,
                kind: &'static str,
                scopes: &'static str,
                same: bool| async move {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, scopes,
                                      same_for_all_envs, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(ws)
        .bind(connector)
        .bind(display)
        .bind(link)
        .bind(kind)
        .bind(scopes)
        .bind(same as i64)
        .bind(admin)
        .bind(now)
        .fetch_one(&db.pool)
        .await
    };
    let crm_admin = conn("Sales CRM", "sales_crm", crm, "admin", "crm.deals.read crm.contacts.read", true).await?;
    let crm_user = conn("My CRM", "my_crm", crm, "user", "crm.deals.read", true).await?;
    let crm_system = conn("CRM System", "crm_system", crm, "system", "crm.deals.read crm.contacts.read", false).await?;
    let weather_conn = conn("Weather", "weather", weather, "admin", "", true).await?;
    let jira = conn("Issue Tracker", "issue_tracker", atlassian, "admin", "", false).await?;
    let checkout = conn("Checkout", "checkout", payments, "admin", "", true).await?;

    let component = |app: i64,
                     kind: &'static str,
                     name: &'static str,
                     link: &'static str,
                     definition: serde_json::Value| async move {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO components (application_id, kind, name, link_name, definition) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(app)
        .bind(kind)
        .bind(name)
        .bind(link)
        .bind(definition.to_string())
        .fetch_one(&db.pool)
        .await
    };
    let deal_form = component(sales, "form", "Deal Intake", "deal_intake", json!({"on_load": "load_deals"})).await?;
    let contact_form = component(sales, "form", "Contact Lookup", "contact_lookup", json!({})).await?;
    // Live-mode runtime (`runtime.rs`): each calls the sandbox over its connection via invoke URL.
    let deals = |connection: &str, title: &str, n: u32| json!({"title": title, "invoke": {"connection": connection, "url": format!("{{api_base}}/api/crm/Deals?per_page={n}")}});
    let pipeline =
        component(sales, "page", "Pipeline", "pipeline", json!({"panels": [deals("my_crm", "My deals", 5)]})).await?;
    let mut report_def = deals("crm_system", "Deals", 10);
    report_def["module"] = json!("Deals");
    let deals_report = component(sales, "integration_report", "CRM Deals", "crm_deals", report_def).await?;
    let load_deals = component(
        sales,
        "workflow",
        "Load Deals",
        "load_deals",
        json!({"steps": [deals("sales_crm", "Open deals", 5)]}),
    )
    .await?;
    let forecast = component(
        sales,
        "function",
        "Forecast",
        "forecast",
        json!({"steps": [deals("sales_crm", "Deals to forecast", 20)]}),
    )
    .await?;
    let approval = component(sales, "blueprint", "Deal Approval", "deal_approval", json!({})).await?;
    let nightly = component(sales, "schedule", "Nightly Refresh", "nightly_refresh", json!({})).await?;
    let weather_page = component(field, "page", "Site Weather", "site_weather", json!({})).await?;
    let tickets = component(field, "report", "Tickets", "tickets", json!({})).await?;
    // A payment gateway (R1.2, R4.2: listed with the connections, under "Payment gateways").
    let charges = json!({"title": "Recent charges", "invoke": {"connection": "checkout", "url": "{api_base}/api/payments/charges?limit=3"}});
    let payment_form =
        component(field, "form", "Service Payment", "service_payment", json!({"on_load": "recent_charges"})).await?;
    let recent_charges =
        component(field, "workflow", "Recent Charges", "recent_charges", json!({"steps": [charges]})).await?;

    for (c, k) in [
        (deal_form, crm_admin),
        (deal_form, crm_user),
        (contact_form, crm_user),
        (pipeline, crm_user),
        (deals_report, crm_system),
        (load_deals, crm_admin),
        (forecast, crm_admin),
        (approval, crm_admin),
        (nightly, crm_admin),
        (weather_page, weather_conn),
        (tickets, jira),
        (weather_page, crm_system),
        (payment_form, checkout),
        (recent_charges, checkout),
    ] {
        sqlx::query("INSERT INTO component_connections (component_id, connection_id) VALUES ($1, $2)")
            .bind(c)
            .bind(k)
            .execute(&db.pool)
            .await?;
    }
    for c in [deal_form, contact_form, pipeline, deals_report, weather_page] {
        sqlx::query("INSERT INTO component_permissions (component_id, user_id) VALUES ($1, $2)")
            .bind(c)
            .bind(plain_user)
            .execute(&db.pool)
            .await?;
    }
    for (k, a) in [
        (crm_admin, sales),
        (crm_user, sales),
        (crm_system, sales),
        (crm_system, field),
        (weather_conn, field),
        (jira, field),
        (checkout, field),
    ] {
        sqlx::query("INSERT INTO connection_access (connection_id, application_id, enabled) VALUES ($1, $2, 1)")
            .bind(k)
            .bind(a)
            .execute(&db.pool)
            .await?;
    }
    // Associated datasources (R11.1): two modules of the CRM over the admin connection,
    // integration fields on two forms, and form records whose values a sync brings up to date.
    let stages = json!([{
        "name": "stage", "label": "Pipeline stage", "kind": "select", "required": true, "param": "stage",
        "options": ["All", "Qualification", "Needs Analysis", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
    }]);
    let datasource = |name: &'static str, module: &'static str, fields: serde_json::Value| async move {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO datasources (application_id, connection_id, name, module, config_fields)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(sales)
        .bind(crm_admin)
        .bind(name)
        .bind(module)
        .bind(fields.to_string())
        .fetch_one(&db.pool)
        .await
    };
    let deals_ds = datasource("CRM Deals", "Deals", stages).await?;
    let contacts_ds = datasource("CRM Contacts", "Contacts", json!([])).await?;
    for (component, ds, field, display) in
        [(deal_form, deals_ds, "deal", "name"), (contact_form, contacts_ds, "contact", "email")]
    {
        sqlx::query(
            "INSERT INTO integration_fields (component_id, datasource_id, field_name, display_field) VALUES ($1, $2, $3, $4)",
        )
        .bind(component)
        .bind(ds)
        .bind(field)
        .bind(display)
        .execute(&db.pool)
        .await?;
    }
    let mut records = Vec::new();
    for (i, title) in
        ["Kick-off call", "Pricing review", "Contract draft", "Renewal", "Lost deal debrief"].into_iter().enumerate()
    {
        let id = format!("D-{:04}", i + 1);
        records.push((
            deal_form,
            json!({"title": title, "deal": {"id": id, "value": format!("Deal {} (old name)", i + 1)}}),
        ));
    }
    for (i, note) in ["Met at the fair", "Asked for a demo", "Newsletter"].into_iter().enumerate() {
        let id = format!("C-{:04}", i + 1);
        records.push((contact_form, json!({"note": note, "contact": {"id": id, "value": "unknown@old.example"}})));
    }
    for (component, data) in records {
        sqlx::query("INSERT INTO form_records (component_id, data, updated_at) VALUES ($1, $2, $3)")
            .bind(component)
            .bind(data.to_string())
            .bind(now)
            .execute(&db.pool)
            .await?;
    }
    tracing::info!(workspace_id = ws, "seeded the demo workspace");
    Ok(true)
}
