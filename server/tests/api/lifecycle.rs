//! A connection's later life (issue 13): edit (name and scopes), disable and enable, delete
//! (refused while used; otherwise every authorization revoked at the provider), and each user's
//! authorization of a logged-in-user connection (admins see and revoke anyone's, others only
//! their own).

use crate::common;

use app::authorizations::AuthorizeOutcome;
use common::fixtures;
use common::sandbox::{authorize_in_browser, Sandbox};
use common::TestApp;
use serde_json::Value;

/// The sandbox provider, the server, and the demo admin, developer and user signed in.
struct World {
    sandbox: Sandbox,
    app: TestApp,
    admin: reqwest::Client,
    dev: reqwest::Client,
    user: reqwest::Client,
}

impl World {
    async fn start() -> World {
        let sandbox = Sandbox::start(&[]).await;
        let app = common::spawn_with_sandbox(&sandbox).await;
        let admin = app.signed_in("admin@demo.test").await;
        let dev = app.signed_in("developer@demo.test").await;
        let user = app.signed_in("user@demo.test").await;
        World { sandbox, app, admin, dev, user }
    }
}

async fn details(app: &TestApp, c: &reqwest::Client, link: &str) -> Value {
    app.json(c, "get_connection", &[("link_name", link)]).await
}

fn statuses(d: &Value) -> Vec<String> {
    d["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .map(|e| match e["status_reason"].as_str() {
            Some(r) => format!("{}: {r}", e["status"].as_str().unwrap_or_default()),
            None => e["status"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Authorizes `link` as `client` with the sandbox account `who` (alice or bob); returns the
/// authorization URL the provider was sent to.
async fn consent(app: &TestApp, client: &reqwest::Client, link: &str, who: &str) -> String {
    let name = if who == "alice" { "Alice" } else { "Bob" };
    let out = app.authorize(client, link, &fixtures::oauth(name)).await;
    let AuthorizeOutcome::Redirect { authorize_url, .. } = out else { panic!("expected a redirect: {out:?}") };
    let done = authorize_in_browser(&authorize_url, who, &format!("{who}-password"), true).await;
    let page = client.get(done.callback_url.clone()).send().await.expect("callback").text().await.expect("page");
    assert!(page.contains("Connected"), "{page}");
    authorize_url
}

async fn invoke_deals(app: &TestApp, c: &reqwest::Client, sandbox: &Sandbox) -> reqwest::Response {
    let deals = sandbox.endpoint("/api/crm/Deals?per_page=1");
    app.call(
        c,
        "invoke_url",
        &[
            ("request[app]", "sales_hub"),
            ("request[connection]", "sales_crm"),
            ("request[method]", "GET"),
            ("request[url]", &deals),
        ],
    )
    .await
}

#[tokio::test]
async fn editing_renames_and_added_scopes_need_reauthorization() {
    let World { sandbox, app, admin, dev, user } = World::start().await;
    app.connect_oauth(&admin, "sales_crm").await;
    let id = app.connection_id("sales_crm").await.to_string();

    // Plain users cannot edit; bad names and unknown scopes are refused and change nothing.
    let rename = |name: &'static str, scopes: &'static [&'static str]| {
        let mut a =
            vec![("connection_id".to_string(), id.clone()), ("edit[display_name]".to_string(), name.to_string())];
        for (i, s) in scopes.iter().enumerate() {
            a.push((format!("edit[scopes][{i}]"), s.to_string()));
        }
        a
    };
    let args = rename("Sales CRM EU", &["crm.deals.read", "crm.contacts.read"]);
    assert_eq!(app.fails(&user, "edit_connection", &common::pairs(&args)).await.0, 403);
    let args = rename("   ", &["crm.deals.read"]);
    let (code, e) = app.fails(&dev, "edit_connection", &common::pairs(&args)).await;
    assert_eq!(code, 400, "{e}");
    let args = rename("Sales CRM EU", &["crm.everything"]);
    let (code, e) = app.fails(&dev, "edit_connection", &common::pairs(&args)).await;
    assert_eq!(code, 400);
    assert!(e.to_string().contains("'crm.everything' is not a scope"), "{e}");
    assert_eq!(details(&app, &admin, "sales_crm").await["display_name"], "Sales CRM");

    // A rename keeps the link name and the authorizations.
    let args = rename("Sales CRM EU", &["crm.deals.read", "crm.contacts.read"]);
    app.json::<()>(&dev, "edit_connection", &common::pairs(&args)).await;
    let d = details(&app, &admin, "sales_crm").await;
    assert_eq!(d["display_name"], "Sales CRM EU");
    assert_eq!(d["link_name"], "sales_crm");
    assert!(statuses(&d).iter().all(|s| s == "Connected"), "{d}");
    assert_eq!(invoke_deals(&app, &admin, &sandbox).await.status(), 200);

    // Adding a scope: every authorization needs consent again, and calls say so; a webhook
    // endpoint hears it once per environment, with the reason.
    let hook =
        [("url", "https://hooks.example/x"), ("description", ""), ("events", "connection.needs_reauthorization")];
    let _: Value = app.json(&admin, "create_webhook_endpoint", &hook).await;
    let args = rename("Sales CRM EU", &["crm.deals.read", "crm.contacts.read", "crm.deals.write"]);
    app.json::<()>(&dev, "edit_connection", &common::pairs(&args)).await;
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM webhook_events").fetch_all(&app.state.db.pool).await.unwrap();
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    for p in &payloads {
        let p: Value = serde_json::from_str(p).unwrap();
        assert_eq!(p["type"], "connection.needs_reauthorization");
        assert_eq!(
            (p["data"]["connection"].as_str(), p["data"]["reason"].as_str()),
            (Some("sales_crm"), Some("new permissions requested"))
        );
    }
    let d = details(&app, &admin, "sales_crm").await;
    assert!(statuses(&d).iter().all(|s| s == "NeedsReauthorization: new permissions requested"), "{:?}", statuses(&d));
    let panel: Vec<Value> =
        app.json(&admin, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
    let entry = panel.iter().find(|c| c["link_name"] == "sales_crm").expect("listed");
    assert_eq!(entry["status"], "NeedsReauthorization");
    assert_eq!(entry["status_reason"], "new permissions requested");
    assert_eq!(invoke_deals(&app, &admin, &sandbox).await.status(), 428);
    // Microservices says it above the list.
    let page: Value = app.json(&dev, "connections_page", &[]).await;
    assert_eq!(page["attention"], 1, "{page}");

    // Re-consenting asks the provider for the new scope and connects it again.
    let url = consent(&app, &admin, "sales_crm", "alice").await;
    assert!(url.contains("crm.deals.write"), "{url}");
    let page: Value = app.json(&dev, "connections_page", &[]).await;
    assert_eq!(page["attention"], 0, "{page}");
    let d = details(&app, &admin, "sales_crm").await;
    assert!(statuses(&d).iter().all(|s| s == "Connected"), "{:?}", statuses(&d));
    assert_eq!(invoke_deals(&app, &admin, &sandbox).await.status(), 200);

    // Removing a scope changes nothing until the next authorization.
    let args = rename("Sales CRM EU", &["crm.deals.read", "crm.deals.write"]);
    app.json::<()>(&dev, "edit_connection", &common::pairs(&args)).await;
    let d = details(&app, &admin, "sales_crm").await;
    assert_eq!(d["scopes"], serde_json::json!(["crm.deals.read", "crm.deals.write"]));
    assert!(statuses(&d).iter().all(|s| s == "Connected"), "{:?}", statuses(&d));

    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let edits: Vec<&str> =
        ops.iter().filter(|o| o["kind"] == "connection_edited").filter_map(|o| o["detail"].as_str()).collect();
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert!(edits.iter().any(|d| d.contains("renamed from 'Sales CRM' to 'Sales CRM EU'")), "{edits:?}");
    assert!(edits.iter().any(|d| d.contains("scopes added: crm.deals.write")), "{edits:?}");
    assert!(edits.iter().any(|d| d.contains("scopes removed: crm.contacts.read")), "{edits:?}");
}

#[tokio::test]
async fn a_disabled_connection_refuses_every_use_until_enabled() {
    let World { sandbox, app, admin, dev, user } = World::start().await;
    app.connect_oauth(&admin, "sales_crm").await;
    let id = app.connection_id("sales_crm").await.to_string();
    assert_eq!(invoke_deals(&app, &admin, &sandbox).await.status(), 200);

    assert_eq!(
        app.fails(&user, "set_connection_enabled", &[("connection_id", &id), ("enabled", "false")]).await.0,
        403
    );
    app.json::<()>(&dev, "set_connection_enabled", &[("connection_id", &id), ("enabled", "false")]).await;

    // Calls (raw and through components) are refused with who disabled it.
    let res = invoke_deals(&app, &admin, &sandbox).await;
    assert_eq!(res.status(), 403);
    let e: app::error::AppError = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(e.to_string(), "This connection is disabled by Dev Developer.");
    let (code, e) = app.fails(&admin, "run_component", &[("app", "sales_hub"), ("component", "deal_intake")]).await;
    assert_eq!(code, 403, "{e}");
    assert_eq!(e.to_string(), "This connection is disabled by Dev Developer.");
    // Datasources cannot be configured or synced.
    let (code, e) = app
        .fails(
            &admin,
            "configure_datasource",
            &[("datasource_id", "1"), ("environment", "Production"), ("values[stage]", "All")],
        )
        .await;
    assert_eq!(code, 409);
    assert!(e.to_string().contains("This connection is disabled by Dev Developer."), "{e}");
    let (code, e) = app.fails(&admin, "initiate_sync", &[("datasource_id", "2"), ("environment", "Production")]).await;
    assert_eq!(code, 409);
    assert!(e.to_string().contains("disabled by Dev Developer"), "{e}");

    // Listed as Disabled in the panel, the details and the Microservices filter.
    let panel: Vec<Value> =
        app.json(&admin, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
    assert_eq!(panel.iter().find(|c| c["link_name"] == "sales_crm").expect("listed")["status"], "Disabled");
    let d = details(&app, &admin, "sales_crm").await;
    assert_eq!(d["enabled"], false);
    assert_eq!(d["disabled_by"], "Dev Developer");
    let page: Value = app.json(&dev, "connections_page", &[("query[status]", "disabled")]).await;
    let links: Vec<&str> = page["entries"].as_array().unwrap().iter().filter_map(|e| e["link_name"].as_str()).collect();
    assert_eq!(links, ["sales_crm"]);

    // Enabled again: works without re-authorizing.
    app.json::<()>(&admin, "set_connection_enabled", &[("connection_id", &id), ("enabled", "true")]).await;
    assert_eq!(invoke_deals(&app, &admin, &sandbox).await.status(), 200);
    let d = details(&app, &admin, "sales_crm").await;
    assert_eq!(d["enabled"], true);
    assert_eq!(d["disabled_by"], Value::Null);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'connection_disabled'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'connection_enabled'").await, 1);
}

#[tokio::test]
async fn delete_is_refused_while_used_and_otherwise_revokes_at_the_provider_first() {
    let World { sandbox, app, admin, user, .. } = World::start().await;

    // Used by components and datasources: refused, with the list; nothing changes.
    let used = app.connection_id("sales_crm").await.to_string();
    let refs: Vec<Value> = app.json(&admin, "connection_usage", &[("connection_id", &used)]).await;
    assert!(refs.iter().any(|r| r["kind"] == "Datasource" && r["name"] == "CRM Deals"), "{refs:?}");
    assert!(refs.iter().all(|r| r["href"].as_str().unwrap().starts_with("/app/sales_hub/edit")), "{refs:?}");
    let (code, e) = app.fails(&admin, "delete_connection", &[("connection_id", &used)]).await;
    assert_eq!(code, 409);
    assert!(e.to_string().contains("Datasource 'CRM Deals' (Sales Hub)"), "{e}");
    assert_eq!(app.count("SELECT COUNT(*) FROM connections WHERE link_name = 'sales_crm'").await, 1);

    // An unused, authorized connection.
    let crm = app.connector_id(&admin, "sandbox_crm").await.to_string();
    let created: Value = app
        .json(
            &admin,
            "create_connection",
            &[
                ("input[connector_id]", crm.as_str()),
                ("input[display_name]", "Old CRM"),
                ("input[same_for_all_envs]", "true"),
                ("input[conn_type]", "admin"),
            ],
        )
        .await;
    let id = created["id"].as_i64().unwrap().to_string();
    app.connect_oauth(&admin, "old_crm").await;
    let (access, _) = app.oauth_tokens("old_crm").await;
    let api = common::http();
    let deals = sandbox.endpoint("/api/crm/Deals?per_page=1");
    assert_eq!(api.get(&deals).bearer_auth(&access).send().await.unwrap().status(), 200);

    assert_eq!(app.fails(&user, "delete_connection", &[("connection_id", &id)]).await.0, 403);
    sandbox.reset_stats().await;
    app.json::<()>(&admin, "delete_connection", &[("connection_id", &id)]).await;
    assert_eq!(sandbox.stats().await["revocations"], 2, "refresh token and access token revoked");
    assert_eq!(api.get(&deals).bearer_auth(&access).send().await.unwrap().status(), 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM connections WHERE link_name = 'old_crm'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "no credentials left");
    assert_eq!(app.count("SELECT COUNT(*) FROM pending_revocations").await, 0, "all sent");
    let ops: Vec<Value> = app.json(&admin, "list_operations", &[]).await;
    let deleted = ops.iter().find(|o| o["kind"] == "connection_deleted").expect("an operations entry");
    assert!(deleted["detail"].as_str().unwrap().starts_with("old_crm"), "{deleted}");
    assert_eq!(app.fails(&admin, "get_connection", &[("link_name", "old_crm")]).await.0, 404);
}

#[tokio::test]
async fn admins_see_and_revoke_each_users_authorization_users_only_their_own() {
    let World { sandbox, app, admin, dev, user } = World::start().await;
    consent(&app, &user, "my_crm", "bob").await;
    consent(&app, &dev, "my_crm", "alice").await;
    let id = app.connection_id("my_crm").await.to_string();
    let uma = app.count("SELECT id FROM users WHERE email = 'user@demo.test'").await;
    let dev_id = app.count("SELECT id FROM users WHERE email = 'developer@demo.test'").await;

    let who = |rows: &[Value]| {
        let mut names: Vec<String> = rows.iter().map(|r| r["user_name"].as_str().unwrap().to_string()).collect();
        names.dedup();
        names
    };
    let all: Vec<Value> = app.json(&admin, "users_authorizations", &[("connection_id", &id)]).await;
    assert_eq!(who(&all), ["Dev Developer", "Uma User"]);
    assert!(all.iter().any(|r| r["account_name"] == "Bob" && r["status"] == "Connected"), "{all:?}");
    let own: Vec<Value> = app.json(&user, "users_authorizations", &[("connection_id", &id)]).await;
    assert_eq!(who(&own), ["Uma User"]);
    let own: Vec<Value> = app.json(&dev, "users_authorizations", &[("connection_id", &id)]).await;
    assert_eq!(who(&own), ["Dev Developer"]);

    // A plain user cannot revoke someone else's authorization, whatever id they send.
    let (code, e) = app
        .fails(&user, "revoke_user_authorization", &[("connection_id", &id), ("user_id", &dev_id.to_string())])
        .await;
    assert_eq!(code, 403, "{e}");
    let all: Vec<Value> = app.json(&admin, "users_authorizations", &[("connection_id", &id)]).await;
    assert_eq!(who(&all), ["Dev Developer", "Uma User"]);

    // The admin revokes Uma's: gone here and at the provider; the developer's stays.
    sandbox.reset_stats().await;
    app.json::<()>(&admin, "revoke_user_authorization", &[("connection_id", &id), ("user_id", &uma.to_string())]).await;
    assert_eq!(sandbox.stats().await["revocations"], 2);
    let all: Vec<Value> = app.json(&admin, "users_authorizations", &[("connection_id", &id)]).await;
    assert_eq!(who(&all), ["Dev Developer"]);
    let mine: Value = details(&app, &user, "my_crm").await;
    assert!(statuses(&mine).iter().all(|s| s == "Revoked"), "{mine}");

    // Everyone revokes their own.
    app.json::<()>(&dev, "revoke_user_authorization", &[("connection_id", &id), ("user_id", &dev_id.to_string())])
        .await;
    let all: Vec<Value> = app.json(&admin, "users_authorizations", &[("connection_id", &id)]).await;
    assert!(all.is_empty(), "{all:?}");

    // Shared connections have no per-user authorizations.
    let shared = app.connection_id("sales_crm").await.to_string();
    let rows: Vec<Value> = app.json(&admin, "users_authorizations", &[("connection_id", &shared)]).await;
    assert!(rows.is_empty());
    let (code, _) = app
        .fails(&admin, "revoke_user_authorization", &[("connection_id", &shared), ("user_id", &uma.to_string())])
        .await;
    assert_eq!(code, 400);
}

/// The form fields of `input` for `update_custom_connector` (`input[...]`), with `extra`.
fn connector_update(
    id: &str,
    input: &app::connectors::CustomConnectorInput,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut args = vec![("connector_id".to_string(), id.to_string())];
    args.extend(fixtures::form(input));
    args.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    args
}

#[tokio::test]
async fn custom_connectors_are_edited_with_write_only_secrets_and_deleted_when_unused() {
    let World { sandbox, app, admin, dev, user } = World::start().await;
    let team = fixtures::sandbox_crm("Team CRM", &sandbox);
    let link = app.custom_connection(&admin, &team, "Team Deals", &["crm.deals.read"]).await;
    app.connect_oauth(&admin, &link).await;
    let conn: Value = details(&app, &admin, &link).await;
    let id = conn["connector_id"].as_i64().unwrap().to_string();

    // The form never carries the secret; it says one is set.
    assert_eq!(app.fails(&user, "custom_connector", &[("connector_id", &id)]).await.0, 403);
    let res = app.call(&dev, "custom_connector", &[("connector_id", &id)]).await;
    let body = res.text().await.unwrap();
    assert!(!body.contains("crm-connector-secret"), "{body}");
    let form: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(form["secret_set"], true);
    assert_eq!(form["input"]["client_secret"], "");
    assert_eq!(form["input"]["token_url"], sandbox.endpoint("/token"));
    assert_eq!(form["connections"], serde_json::json!(["Team Deals"]));
    let stored_secret = |app: &TestApp| {
        let state = app.state.clone();
        let id = id.parse::<i64>().unwrap();
        async move { app::connectors::ssr::load(&state, 1, id).await.unwrap().client_secret }
    };

    // A blank secret keeps the stored one; a new description changes nothing else.
    let blank = app::connectors::CustomConnectorInput {
        client_secret: String::new(),
        description: "Deals of the team".into(),
        ..team.clone()
    };
    app.json::<Value>(&dev, "update_custom_connector", &common::pairs(&connector_update(&id, &blank, &[]))).await;
    assert_eq!(stored_secret(&app).await.as_deref(), Some("crm-connector-secret"));
    assert!(statuses(&details(&app, &admin, &link).await).iter().all(|s| s == "Connected"));

    // A rotated secret replaces it, and authorizations stay.
    let rotated = app::connectors::CustomConnectorInput { client_secret: "rotated-secret".into(), ..blank.clone() };
    app.json::<Value>(&dev, "update_custom_connector", &common::pairs(&connector_update(&id, &rotated, &[]))).await;
    assert_eq!(stored_secret(&app).await.as_deref(), Some("rotated-secret"));
    assert!(statuses(&details(&app, &admin, &link).await).iter().all(|s| s == "Connected"));

    // New endpoints invalidate the authorizations: refused until confirmed, then marked.
    let moved = app::connectors::CustomConnectorInput {
        token_url: sandbox.endpoint("/token?v=2"),
        client_secret: String::new(),
        ..blank.clone()
    };
    let (code, e) =
        app.fails(&dev, "update_custom_connector", &common::pairs(&connector_update(&id, &moved, &[]))).await;
    assert_eq!(code, 409);
    assert!(e.to_string().contains("1 authorization(s)"), "{e}");
    assert!(statuses(&details(&app, &admin, &link).await).iter().all(|s| s == "Connected"), "nothing saved");
    let confirmed = connector_update(&id, &moved, &[("confirmed", "true")]);
    app.json::<Value>(&dev, "update_custom_connector", &common::pairs(&confirmed)).await;
    let d = details(&app, &admin, &link).await;
    assert!(
        statuses(&d).iter().all(|s| s == "NeedsReauthorization: the connector's settings changed"),
        "{:?}",
        statuses(&d)
    );
    // Bad input is refused with the field, and loses nothing.
    let bad = app::connectors::CustomConnectorInput { token_url: "not a url".into(), ..moved.clone() };
    let (code, e) = app.fails(&dev, "update_custom_connector", &common::pairs(&connector_update(&id, &bad, &[]))).await;
    assert_eq!((code, e.field()), (400, Some("token_url")));
    let form: Value = app.json(&dev, "custom_connector", &[("connector_id", &id)]).await;
    assert_eq!(form["input"]["token_url"], sandbox.endpoint("/token?v=2"));

    // Deleting it is refused while a connection uses it; once that is deleted, it goes.
    let (code, e) = app.fails(&dev, "delete_custom_connector", &[("connector_id", &id)]).await;
    assert_eq!(code, 409);
    assert!(e.to_string().contains("Team Deals"), "{e}");
    let conn_id = conn["id"].as_i64().unwrap().to_string();
    app.json::<()>(&admin, "delete_connection", &[("connection_id", &conn_id)]).await;
    app.json::<()>(&dev, "delete_custom_connector", &[("connector_id", &id)]).await;
    assert_eq!(app.fails(&dev, "custom_connector", &[("connector_id", &id)]).await.0, 404);
    // Built-in connectors are not editable.
    let builtin = app.connector_id(&admin, "sandbox_crm").await.to_string();
    assert_eq!(app.fails(&dev, "delete_custom_connector", &[("connector_id", &builtin)]).await.0, 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'connector_edited'").await, 3);
}

/// Adding a scope marks this connection's authorizations only: an account it shares with
/// another connection of the same service and scopes (reused there) stays connected for that
/// one, which keeps working; re-consenting clears the mark.
#[tokio::test]
async fn added_scopes_mark_this_connections_authorizations_not_a_shared_account() {
    let World { sandbox, app, admin, .. } = World::start().await;
    let input = app::connectors::CustomConnectorInput {
        scopes: "crm.deals.read crm.deals.write".into(),
        ..fixtures::sandbox_crm("Twin CRM", &sandbox)
    };
    let connector = app.custom_connector(&admin, &input).await;
    let cid = connector["id"].as_i64().expect("connector id").to_string();
    let mut links = Vec::new();
    for name in ["Twin A", "Twin B"] {
        let args = [
            ("input[connector_id]", cid.as_str()),
            ("input[display_name]", name),
            ("input[same_for_all_envs]", "true"),
            ("input[conn_type]", "admin"),
            ("input[scopes][0]", "crm.deals.read"),
        ];
        let conn: Value = app.json(&admin, "create_connection", &args).await;
        let link = conn["link_name"].as_str().expect("link name").to_string();
        app.enable_access(&admin, &link, "field_service").await;
        links.push(link);
    }
    let (a, b) = (links[0].clone(), links[1].clone());
    consent(&app, &admin, &a, "alice").await;
    // B reuses A's account.
    let b_id = app.connection_id(&b).await.to_string();
    let options: Vec<Value> = app.json(&admin, "reusable_accounts", &[("connection_id", &b_id)]).await;
    assert_eq!(options.len(), 1, "{options:?}");
    let account = options[0]["id"].as_i64().unwrap().to_string();
    let reuse = [("connection_id", b_id.as_str()), ("account_id", account.as_str()), ("environments[0]", "Production")];
    app.json::<()>(&admin, "reuse_account", &reuse).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 1, "one account behind both");

    // A asks for one more scope: A needs consent again, B does not.
    let a_id = app.connection_id(&a).await.to_string();
    let edit = [
        ("connection_id", a_id.as_str()),
        ("edit[display_name]", "Twin A"),
        ("edit[scopes][0]", "crm.deals.read"),
        ("edit[scopes][1]", "crm.deals.write"),
    ];
    app.json::<()>(&admin, "edit_connection", &edit).await;
    let a_details = details(&app, &admin, &a).await;
    assert!(
        statuses(&a_details).iter().all(|s| s == "NeedsReauthorization: new permissions requested"),
        "{:?}",
        statuses(&a_details)
    );
    let b_details = details(&app, &admin, &b).await;
    assert!(statuses(&b_details).iter().all(|s| s == "Connected"), "{:?}", statuses(&b_details));
    let call = |link: String| {
        let (app, admin, url) = (&app, &admin, sandbox.endpoint("/api/crm/Deals?per_page=1"));
        async move {
            let args = [
                ("request[app]", "field_service"),
                ("request[connection]", link.as_str()),
                ("request[method]", "GET"),
                ("request[url]", url.as_str()),
            ];
            app.call(admin, "invoke_url", &args).await.status()
        }
    };
    assert_eq!(call(b.clone()).await, 200, "the other connection keeps working");
    assert_eq!(call(a.clone()).await, 428, "this one asks for consent");
    let page: Value = app.json(&admin, "connections_page", &[]).await;
    assert_eq!(page["attention"], 1, "{page}");

    // Re-consenting A (with the new scope) clears its mark; B is untouched throughout.
    let url = consent(&app, &admin, &a, "alice").await;
    assert!(url.contains("crm.deals.write"), "{url}");
    assert!(statuses(&details(&app, &admin, &a).await).iter().all(|s| s == "Connected"));
    assert_eq!(call(a).await, 200);
    assert_eq!(call(b).await, 200);
}
