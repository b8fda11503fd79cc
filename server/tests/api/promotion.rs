//! Environment promotion (issue 13): an application's connections exported as one document and
//! imported into another workspace (or checked against another environment) — created
//! unauthorized, matched by link name the second time, every conflict reported with nothing
//! written, no secret ever in a document, builders only, and the `server export` / `server
//! import` commands.

use crate::common;

use app::promotion::ssr::{export_command, import_command, Import};
use app::promotion::{ImportPlan, PlanAction};
use common::fixtures;
use common::sandbox::Sandbox;
use common::TestApp;
use serde_json::{json, Value};

/// A second workspace with an admin (`admin@<slug>.test`), a plain user and the demo's two
/// applications (by link name, without components or connections); its id and the admin signed in.
async fn second_workspace(app: &TestApp, name: &str, slug: &str) -> (i64, reqwest::Client) {
    let pool = &app.state.db.pool;
    let now = app::ssr::ids::now_ms();
    let ws: i64 =
        sqlx::query_scalar("INSERT INTO workspaces (name, data_center, created_at) VALUES ($1, 'us', $2) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(pool)
            .await
            .expect("workspace");
    let hash = app::auth::ssr::hash_password(app::ssr::seed::DEMO_PASSWORD).await.expect("hash");
    for (who, role) in [("admin", "admin"), ("user", "user")] {
        sqlx::query(
            "INSERT INTO users (workspace_id, email, display_name, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ws)
        .bind(format!("{who}@{slug}.test"))
        .bind(format!("{who} of {name}"))
        .bind(role)
        .bind(&hash)
        .bind(now)
        .execute(pool)
        .await
        .expect("user");
    }
    for (app_name, link) in [("Sales Hub", "sales_hub"), ("Field Service", "field_service")] {
        sqlx::query("INSERT INTO applications (workspace_id, name, link_name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(ws)
            .bind(app_name)
            .bind(link)
            .bind(now)
            .execute(pool)
            .await
            .expect("application");
    }
    (ws, app.signed_in(&format!("admin@{slug}.test")).await)
}

async fn export(app: &TestApp, c: &reqwest::Client, app_link: &str) -> String {
    app.json(c, "export_connections", &[("app", app_link)]).await
}

async fn plan(app: &TestApp, c: &reqwest::Client, app_link: &str, doc: &str, env: Option<&str>) -> ImportPlan {
    let mut args = vec![("app", app_link), ("document", doc)];
    args.extend(env.map(|e| ("environment", e)));
    app.json(c, "plan_import", &args).await
}

async fn apply(app: &TestApp, c: &reqwest::Client, app_link: &str, doc: &str) -> ImportPlan {
    app.json(c, "apply_import", &[("app", app_link), ("document", doc)]).await
}

async fn count_in(app: &TestApp, table: &str, ws: i64) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM {table} WHERE workspace_id = {ws}")).await
}

fn links(plan: &ImportPlan, action: PlanAction) -> Vec<&str> {
    plan.connections.iter().filter(|c| c.action == action).map(|c| c.link_name.as_str()).collect()
}

#[tokio::test]
async fn an_export_round_trips_into_another_workspace_unauthorized_then_matches() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let partner = fixtures::sandbox_crm("Partner CRM", &sandbox);
    let link = app.custom_connection(&admin, &partner, "Partner CRM", &["crm.deals.read"]).await;
    let weather = fixtures::api_key_auth("Weather key", "sandbox-weather-key");
    app.authorize(&admin, "weather", &weather).await;

    let text = export(&app, &admin, "field_service").await;
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!((doc["format"].as_str(), doc["version"].as_u64()), (Some("connections-manager/export"), Some(1)));
    let exported: Vec<&str> =
        doc["connections"].as_array().unwrap().iter().map(|c| c["link_name"].as_str().unwrap()).collect();
    assert_eq!(exported, ["checkout", "crm_system", "issue_tracker", link.as_str(), "weather"]);
    let partner_conn = doc["connections"].as_array().unwrap().iter().find(|c| c["link_name"] == link.as_str()).unwrap();
    assert_eq!(partner_conn["connector"], json!({"kind": "custom", "link_name": "partner_crm"}));
    assert_eq!(partner_conn["application_access"], true);
    assert_eq!(doc["custom_connectors"][0]["token_url"], sandbox.endpoint("/token"));
    assert!(doc["custom_connectors"][0].get("client_secret").is_none(), "{doc}");

    // The same workspace, production: everything matches; only the weather key is authorized.
    let here = plan(&app, &admin, "field_service", &text, Some("Production")).await;
    assert!(here.conflicts.is_empty() && links(&here, PlanAction::Create).is_empty(), "{here:?}");
    let needing: Vec<&str> = here.needing_authorization().map(|c| c.link_name.as_str()).collect();
    assert_eq!(needing, ["checkout", "crm_system", "issue_tracker", link.as_str()]);

    // Another workspace: a dry run writes nothing, then one apply creates it all unauthorized.
    let (ws, admin2) = second_workspace(&app, "Stage Workspace", "stage").await;
    let dry = plan(&app, &admin2, "field_service", &text, None).await;
    assert!(dry.conflicts.is_empty(), "{dry:?}");
    assert_eq!(links(&dry, PlanAction::Create).len(), 5);
    assert_eq!((count_in(&app, "connections", ws).await, count_in(&app, "connectors", ws).await), (0, 0));
    let done = apply(&app, &admin2, "field_service", &text).await;
    assert!(done.applied);
    assert_eq!(done.connections, dry.connections);
    assert!(done.connections.iter().all(|c| c.needs_authorizing.len() == 3 && c.grants_access), "{done:?}");
    let connector = &done.connectors[0];
    assert_eq!((connector.action, connector.needs_client_secret), (PlanAction::Create, true));
    assert_eq!(count_in(&app, "connections", ws).await, 5);
    let unauthorized = app
        .count(&format!(
            "SELECT COUNT(*) FROM connection_authorizations ca JOIN connections c ON c.id = ca.connection_id
             WHERE c.workspace_id = {ws}"
        ))
        .await;
    assert_eq!(unauthorized, 0);
    let secrets =
        app.count(&format!("SELECT COUNT(*) FROM connectors WHERE workspace_id = {ws} AND secret_ct IS NULL")).await;
    assert_eq!(secrets, 1, "the custom connector came without its client secret");
    let d: Value = app.json(&admin2, "get_connection", &[("link_name", &link)]).await;
    assert_eq!((d["display_name"].as_str(), d["conn_type"].as_str()), (Some("Partner CRM"), Some("Admin")));
    assert!(
        d["access"].as_array().unwrap().iter().any(|a| a["name"] == "Field Service" && a["enabled"] == true),
        "{d}"
    );
    let system: Value = app.json(&admin2, "get_connection", &[("link_name", "crm_system")]).await;
    assert_eq!(system["conn_type"], "System");
    assert_eq!(system["scopes"], json!(["crm.deals.read", "crm.contacts.read"]));

    // Nobody can authorize over the imported connector until a builder gives it its secret.
    let id: i64 = sqlx::query_scalar("SELECT id FROM connections WHERE workspace_id = $1 AND link_name = $2")
        .bind(ws)
        .bind(&link)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("imported connection");
    let form = fixtures::oauth("Alice").form(id);
    let (status, e) = app.fails(&admin2, "authorize_connection", &common::pairs(&form)).await;
    assert_eq!(status, 409, "{e}");
    assert!(e.to_string().contains("no client secret"), "{e}");

    // Importing again changes nothing: every connection and the connector match.
    let again = apply(&app, &admin2, "field_service", &text).await;
    assert_eq!(links(&again, PlanAction::Match).len(), 5, "{again:?}");
    assert!(again.connections.iter().all(|c| !c.grants_access));
    assert_eq!((again.connectors[0].action, again.connectors[0].needs_client_secret), (PlanAction::Match, true));
    assert_eq!((count_in(&app, "connections", ws).await, count_in(&app, "connectors", ws).await), (5, 1));
    let imports = app
        .count(&format!("SELECT COUNT(*) FROM operations WHERE workspace_id = {ws} AND kind = 'connections_imported'"))
        .await;
    assert_eq!(imports, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM operations WHERE workspace_id = 1 AND kind = 'connections_exported'").await,
        1
    );
}

#[tokio::test]
async fn no_secret_is_ever_part_of_an_export() {
    const CANARY_KEY: &str = "CANARY-promotion-apikey-5d0c1e";
    const CANARY_SECRET: &str = "CANARY-promotion-clientsecret-a7b3";
    let sandbox = Sandbox::start(&[("SANDBOX_API_KEYS", CANARY_KEY)]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let connector = app::connectors::CustomConnectorInput {
        client_secret: CANARY_SECRET.into(),
        ..fixtures::sandbox_crm("Canary CRM", &sandbox)
    };
    app.custom_connection(&admin, &connector, "Canary CRM", &["crm.deals.read"]).await;
    app.authorize(&admin, "weather", &fixtures::api_key_auth("Canary key", CANARY_KEY)).await;

    let doc = export(&app, &admin, "field_service").await;
    assert!(doc.contains("canary_crm") && doc.contains("\"weather\""), "{doc}");
    let mut seen = doc.clone();
    seen.push_str(&export_command(&app.state, "Demo Workspace", "field_service").await.expect("export"));
    let (_, admin2) = second_workspace(&app, "Canary Copy", "canary").await;
    seen.push_str(&format!("{:?}", apply(&app, &admin2, "field_service", &doc).await));
    for canary in [CANARY_KEY, CANARY_SECRET] {
        assert!(!seen.contains(canary), "{canary} leaked: {seen}");
    }
}

#[tokio::test]
async fn every_conflict_is_reported_and_nothing_is_written() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let mut doc: Value = serde_json::from_str(&export(&app, &admin, "sales_hub").await).expect("JSON");
    let (ws, admin2) = second_workspace(&app, "Other Workspace", "other").await;
    // Here: sales_crm made from another connector, my_crm of another type, a custom connector
    // "acme" with another token URL.
    let acme = app::connectors::CustomConnectorInput {
        name: "Acme".into(),
        auth_type: "oauth2".into(),
        client_id: "acme".into(),
        client_secret: "acme-secret".into(),
        authorize_url: "https://auth.acme.example/authorize".into(),
        token_url: "https://auth.acme.example/token".into(),
        api_base: "https://api.acme.example".into(),
        scopes: "read".into(),
        ..Default::default()
    };
    let acme_id = app.custom_connector(&admin2, &acme).await["id"].as_i64().unwrap();
    let weather = app.connector_id(&admin2, "sandbox_weather").await;
    for (link, connector, kind) in [("sales_crm", weather, "admin"), ("my_crm", acme_id, "admin")] {
        let args = [
            ("input[connector_id]", connector.to_string()),
            ("input[display_name]", link.replace('_', " ")),
            ("input[link_name]", link.to_string()),
            ("input[conn_type]", kind.to_string()),
        ];
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.json::<Value>(&admin2, "create_connection", &args).await;
    }
    let mut acme_def = serde_json::to_value(app::promotion::CustomConnectorDefinition::from_input(
        app::connectors::CustomConnectorInput { link_name: "acme".into(), client_secret: String::new(), ..acme },
        false,
    ))
    .unwrap();
    acme_def["token_url"] = json!("https://other.acme.example/token");
    doc["custom_connectors"] = json!([acme_def]);
    let extra = |link: &str, connector: Value, scopes: Value| {
        json!({"link_name": link, "display_name": "Extra", "type": "admin", "connector": connector,
               "scopes": scopes, "same_for_all_environments": true, "application_access": true})
    };
    let connections = doc["connections"].as_array_mut().unwrap();
    connections.push(extra("acme_api", json!({"kind": "custom", "link_name": "acme"}), json!(["read"])));
    connections.push(extra("nowhere", json!({"kind": "builtin", "link_name": "no_such_service"}), json!([])));
    connections.push(extra("Bad Link", json!({"kind": "builtin", "link_name": "sandbox_weather"}), json!([])));
    connections.push(extra(
        "too_wide",
        json!({"kind": "builtin", "link_name": "sandbox_crm"}),
        json!(["crm.everything"]),
    ));
    let text = doc.to_string();
    let before = (count_in(&app, "connections", ws).await, count_in(&app, "connectors", ws).await);

    let p = plan(&app, &admin2, "sales_hub", &text, None).await;
    let subjects: Vec<&str> = p.conflicts.iter().map(|c| c.subject.as_str()).collect();
    for expected in [
        "custom connector acme",
        "connection sales_crm",
        "connection my_crm",
        "connection acme_api",
        "connection nowhere",
        "connection Bad Link",
        "connection too_wide",
    ] {
        assert!(subjects.contains(&expected), "{expected} missing: {:#?}", p.conflicts);
    }
    let said = |subject: &str| {
        p.conflicts.iter().filter(|c| c.subject == subject).map(|c| c.message.as_str()).collect::<Vec<_>>().join(" | ")
    };
    assert!(said("custom connector acme").contains("differs in: token_url"), "{}", said("custom connector acme"));
    assert!(said("connection nowhere").contains("no built-in connector 'no_such_service'"));
    assert!(said("connection my_crm").contains("User connection"), "{}", said("connection my_crm"));
    assert!(
        said("connection sales_crm").contains("here, made from the built-in connector 'sandbox_weather'; the document's is made from the built-in connector 'sandbox_crm'"),
        "{}",
        said("connection sales_crm")
    );
    assert!(
        said("connection my_crm").contains("made from the custom connector 'acme'"),
        "{}",
        said("connection my_crm")
    );
    assert!(said("connection sales_crm").contains("'sandbox_weather'"), "{}", said("connection sales_crm"));
    let (status, e) = app.fails(&admin2, "apply_import", &[("app", "sales_hub"), ("document", &text)]).await;
    assert_eq!(status, 409);
    assert!(e.to_string().contains(&format!("{} conflict(s)", p.conflicts.len())), "{e}");
    assert_eq!((count_in(&app, "connections", ws).await, count_in(&app, "connectors", ws).await), before);
    let refused = app
        .count(&format!(
            "SELECT COUNT(*) FROM operations WHERE workspace_id = {ws} AND kind = 'connections_import_refused'"
        ))
        .await;
    assert_eq!(refused, 1);

    // Documents that cannot be read are refused as such; an unknown application is a conflict.
    for (bad, says) in
        [("not json", "not JSON"), (r#"{"format":"connections-manager/export","version":7}"#, "Version 7")]
    {
        let (status, e) = app.fails(&admin2, "plan_import", &[("app", "sales_hub"), ("document", bad)]).await;
        assert_eq!(status, 400);
        assert!(e.to_string().contains(says), "{e}");
    }
    let p = plan(&app, &admin2, "no_such_app", &text, None).await;
    assert!(p.conflicts.iter().any(|c| c.subject == "application no_such_app"), "{:?}", p.conflicts);
}

#[tokio::test]
async fn plain_users_may_neither_export_nor_import() {
    let app = common::spawn().await;
    let dev = app.signed_in("developer@demo.test").await;
    let user = app.signed_in("user@demo.test").await;
    let text = export(&app, &dev, "sales_hub").await;
    let before = app.count("SELECT COUNT(*) FROM connections").await;
    for (name, args) in [
        ("export_connections", vec![("app", "sales_hub")]),
        ("plan_import", vec![("app", "sales_hub"), ("document", text.as_str())]),
        ("apply_import", vec![("app", "sales_hub"), ("document", text.as_str())]),
    ] {
        let (status, e) = app.fails(&user, name, &args).await;
        assert_eq!(status, 403, "{name}: {e}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'access_denied'").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, before);
    // A developer (a builder) has the page (linked from Microservices and the builder) and may
    // import: the same workspace matches everything.
    for (path, link) in [
        ("/microservices", "/microservices/promotion"),
        ("/app/sales_hub/edit", "/microservices/promotion?app=sales_hub"),
    ] {
        let page = dev.get(app.url(path)).send().await.expect("page").text().await.expect("html");
        assert!(page.contains(&format!("href=\"{link}\"")), "{path} links to {link}");
    }
    let page = dev.get(app.url("/microservices/promotion?app=sales_hub")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("Export and import connections") && html.contains("Preview import"), "{html}");
    let p = apply(&app, &dev, "sales_hub", &text).await;
    assert!(p.applied && links(&p, PlanAction::Create).is_empty(), "{p:?}");
}

/// Runs the real `server` binary on the test's database; its exit status and output.
async fn run_server(app: &TestApp, args: &[&str]) -> (i32, String) {
    let s = &app.settings;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(&s.data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", s.database_url())
        .env("CONNECTIONS_ENCRYPTION_KEY", s.encryption_key.as_deref().expect("a key"))
        .args(["--sandbox-url", &s.sandbox_url])
        .args(args)
        .output()
        .await
        .expect("run the server binary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_export_and_import_commands() {
    let app = common::spawn().await;
    let (ws, _) = second_workspace(&app, "Stage Workspace", "stage").await;
    let text = export_command(&app.state, "Demo Workspace", "sales_hub").await.expect("export by name");
    assert_eq!(export_command(&app.state, "1", "sales_hub").await.expect("export by id").len(), text.len());
    let missing = export_command(&app.state, "Nowhere", "sales_hub").await.unwrap_err();
    assert!(missing.to_string().contains("no workspace 'Nowhere'"), "{missing}");

    let dry = import_command(&app.state, &ws.to_string(), Import { app: "", document: &text, environment: None }, true)
        .await
        .expect("dry run");
    assert!(!dry.applied && dry.conflicts.is_empty(), "{dry:?}");
    assert_eq!(count_in(&app, "connections", ws).await, 0);
    let env = Some(app::domain::Environment::Production);
    let done =
        import_command(&app.state, "Stage Workspace", Import { app: "", document: &text, environment: env }, false)
            .await
            .expect("import");
    assert!(done.applied && dry.connections.len() == done.connections.len(), "{done:?}");
    assert_eq!(count_in(&app, "connections", ws).await, done.connections.len() as i64);
    let by_operator = app
        .count(&format!(
            "SELECT COUNT(*) FROM operations WHERE workspace_id = {ws} AND kind = 'connections_imported' AND actor_user_id IS NULL"
        ))
        .await;
    assert_eq!(by_operator, 1);

    // The binary: export to a file, import it again (everything matches), a bad file exits 2.
    let file = app.settings.data_dir.join("sales_hub.json");
    let path = file.to_string_lossy().into_owned();
    let (code, out) =
        run_server(&app, &["export", "--workspace", "1", "--application", "sales_hub", "--out", &path]).await;
    assert_eq!(code, 0, "{out}");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("file")).expect("JSON");
    assert_eq!(written["application"]["link_name"], "sales_hub");
    let args =
        ["import", "--workspace", "Stage Workspace", "--environment", "production", "--file", &path, "--dry-run"];
    let (code, out) = run_server(&app, &args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Plan (nothing written)") && out.contains("Matched sales_crm"), "{out}");
    let mut conflicting = written.clone();
    assert_eq!(conflicting["connections"][2]["link_name"], "sales_crm");
    conflicting["connections"][2]["type"] = json!("user");
    std::fs::write(&file, conflicting.to_string()).expect("write");
    let (code, out) = run_server(&app, &["import", "--workspace", &ws.to_string(), "--file", &path]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("CONFLICT connection"), "{out}");
}
