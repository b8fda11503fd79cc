//! Associated datasources and the integration-fields sync (R11.1) against the sandbox CRM:
//! configuration, pull of every page into form records, the per-user daily limit, one run per
//! datasource under a burst of presses, at most ten running at once across replicas, and
//! recovery after a server is killed mid-sync.

use crate::common;

use app::sync::{Initiated, SyncStatus, SyncView};
use common::process::ServerProcess;
use common::sandbox::Sandbox;
use common::TestApp;
use serde_json::Value;
use std::time::Duration;

const DEALS: i64 = 1; // the demo data's "CRM Deals" (needs a pipeline stage)
const CONTACTS: i64 = 2; // the demo data's "CRM Contacts" (nothing to configure)

async fn datasources(app: &TestApp, c: &reqwest::Client) -> Vec<Value> {
    let conn = app.connection_id("sales_crm").await.to_string();
    app.json(
        c,
        "associated_datasources",
        &[("app", "sales_hub"), ("connection_id", &conn), ("environment", "Production")],
    )
    .await
}

async fn initiate(app: &TestApp, c: &reqwest::Client, ds: i64) -> reqwest::Response {
    app.call(c, "initiate_sync", &[("datasource_id", &ds.to_string()), ("environment", "Production")]).await
}

async fn status(app: &TestApp, ds: i64) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, error FROM sync_runs WHERE datasource_id = $1 ORDER BY id DESC LIMIT 1")
        .bind(ds)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("a run")
}

/// Waits until the datasource's latest run is neither queued nor ongoing.
async fn finished(app: &TestApp, ds: i64) -> (String, Option<String>) {
    for _ in 0..1200 {
        let s = status(app, ds).await;
        if s.0 == "completed" || s.0 == "failed" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sync of datasource {ds} did not finish: {:?}", status(app, ds).await);
}

async fn form_values(app: &TestApp, form: &str, field: &str) -> Vec<Value> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT r.data FROM form_records r JOIN components c ON c.id = r.component_id WHERE c.link_name = $1 ORDER BY r.id",
    )
    .bind(form)
    .fetch_all(&app.state.db.pool)
    .await
    .expect("form records");
    rows.iter().map(|r| serde_json::from_str::<Value>(r).expect("json")[field].clone()).collect()
}

/// `create_datasource` arguments for a Sales Hub datasource over Sales CRM.
fn datasource_args<'a>(name: &'a str, module: &'a str) -> [(&'static str, &'a str); 4] {
    [("input[app]", "sales_hub"), ("input[connection]", "sales_crm"), ("input[name]", name), ("input[module]", module)]
}

/// Configuring CRM Deals with a valid value must fail: the status code.
async fn configure_refused(app: &TestApp, c: &reqwest::Client) -> u16 {
    let args = [("datasource_id", "1"), ("environment", "Production"), ("values[stage]", "All")];
    app.fails(c, "configure_datasource", &args).await.0
}

async fn configure_all_stages(app: &TestApp, admin: &reqwest::Client) {
    app.json::<()>(
        admin,
        "configure_datasource",
        &[("datasource_id", &DEALS.to_string()), ("environment", "Production"), ("values[stage]", "All")],
    )
    .await;
}

#[tokio::test]
async fn configure_then_sync_pulls_every_page_into_the_forms_integration_fields() {
    let sandbox = Sandbox::start(&[("SANDBOX_CRM_RECORDS", "450")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;

    // Before authorization: listed, but neither Configure nor Initiate is offered.
    let list = datasources(&app, &admin).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let deals = list.iter().find(|d| d["name"] == "CRM Deals").expect("deals");
    assert_eq!(deals["module"], "Deals");
    assert!(deals["configure_blocked"].as_str().unwrap().contains("Authorize Sales CRM"), "{deals}");
    assert_eq!(configure_refused(&app, &admin).await, 409);

    app.connect_oauth(&admin, "sales_crm").await;
    let list = datasources(&app, &admin).await;
    let deals = list.iter().find(|d| d["name"] == "CRM Deals").unwrap();
    assert!(deals["configure_blocked"].is_null(), "{deals}");
    assert_eq!(deals["configured"], false);
    assert_eq!(deals["sync_blocked"], "Configure the datasource before syncing.");
    assert_eq!(
        deals["integration_fields"],
        serde_json::json!([{"form": "Deal Intake", "form_link": "deal_intake", "field": "deal"}])
    );

    // Configure is offered only while the connection is usable here, and says why not.
    for (break_it, mend, expected) in [
        ("UPDATE connections SET deprecated = 1", "UPDATE connections SET deprecated = 0", "is deprecated. Replace it"),
        ("UPDATE connection_access SET enabled = 0", "UPDATE connection_access SET enabled = 1", "App access is off"),
        ("UPDATE datasources SET enabled = 0", "UPDATE datasources SET enabled = 1", "datasource is disabled"),
    ] {
        sqlx::query(break_it).execute(&app.state.db.pool).await.unwrap();
        let deals = datasources(&app, &admin).await.into_iter().find(|d| d["name"] == "CRM Deals").unwrap();
        assert!(deals["configure_blocked"].as_str().unwrap().contains(expected), "{deals}");
        assert!(deals["sync_blocked"].as_str().unwrap().contains(expected), "{deals}");
        assert_eq!(configure_refused(&app, &admin).await, 409);
        sqlx::query(mend).execute(&app.state.db.pool).await.unwrap();
    }

    // Configuration values of the wrong shape are refused, naming the field.
    for (args, field) in [
        (vec![("values[stage]", "Won")], "stage"),
        (vec![], "stage"),
        (vec![("values[stage]", "All"), ("values[colour]", "red")], "colour"),
    ] {
        let mut a = vec![("datasource_id", "1"), ("environment", "Production")];
        a.extend(args);
        let (code, err) = app.fails(&admin, "configure_datasource", &a).await;
        assert_eq!((code, err.field()), (400, Some(field)), "{err:?}");
    }
    configure_all_stages(&app, &admin).await;
    let deals = datasources(&app, &admin).await.into_iter().find(|d| d["name"] == "CRM Deals").unwrap();
    assert_eq!(deals["configured"], true);
    assert!(deals["sync_blocked"].is_null(), "{deals}");

    // Initiate: every page (450 records at 200 per page = 3 calls), values updated, nothing pushed.
    sandbox.reset_stats().await;
    app.state.operations.flush().await;
    let calls_logged = "SELECT COUNT(*) FROM operations WHERE kind = 'invoke_url'";
    let logged_before = app.count(calls_logged).await;
    let res = initiate(&app, &admin, DEALS).await;
    assert_eq!(res.status(), 200);
    let started: Initiated = res.json().await.unwrap();
    assert!(!started.joined);
    assert_eq!(finished(&app, DEALS).await, ("completed".into(), None));
    let view: SyncView = app.json(&admin, "get_sync_status", &[("datasource_id", "1")]).await;
    let run = view.latest.expect("a run");
    assert_eq!((run.status, run.records, run.api_calls), (SyncStatus::Completed, 450, 3));
    assert!(view.last_completed_at_ms.is_some());
    assert!(view.next_allowed_at_ms.unwrap() > run.created_at_ms + 23 * 3600 * 1000);
    assert_eq!(sandbox.stats().await["api_calls"], 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records WHERE datasource_id = 1").await, 450);
    let deal_values = form_values(&app, "deal_intake", "deal").await;
    assert_eq!(deal_values[0], serde_json::json!({"id": "D-0001", "value": "Deal 1 - Globex"}));
    assert_eq!(deal_values[4]["value"], "Deal 5 - Stark");
    // The other form's datasource was not synced: its values are untouched.
    assert_eq!(form_values(&app, "contact_lookup", "contact").await[0]["value"], "unknown@old.example");
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'sync_completed'").await, 1);
    // The pages are the run's own API calls: counted in its entry, not logged one by one.
    app.state.operations.flush().await;
    assert_eq!(app.count(calls_logged).await, logged_before);
    let detail: String = sqlx::query_scalar("SELECT detail FROM operations WHERE kind = 'sync_completed'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(detail.contains("450 records in 3 API calls"), "{detail}");

    // A second press the same day is refused with the next allowed time; another builder may sync.
    let (code, err) =
        app.fails(&admin, "initiate_sync", &[("datasource_id", "1"), ("environment", "Production")]).await;
    assert_eq!(code, 429);
    assert!(err.to_string().contains("next one is allowed after"), "{err}");
    let developer = app.signed_in("developer@demo.test").await;
    // With paging drift (each page repeats the record that ended the page before), every record
    // is kept once, in the version read last.
    sandbox.drift(true).await;
    assert_eq!(initiate(&app, &developer, DEALS).await.status(), 200);
    assert_eq!(finished(&app, DEALS).await.0, "completed");
    sandbox.drift(false).await;
    let run = app.json::<SyncView>(&developer, "get_sync_status", &[("datasource_id", "1")]).await.latest.unwrap();
    assert_eq!((run.records, run.api_calls), (450, 3));
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records WHERE datasource_id = 1").await, 450);
    let data = |id: &'static str| {
        sqlx::query_scalar::<_, String>(
            "SELECT data FROM datasource_records WHERE datasource_id = 1 AND record_id = $1",
        )
        .bind(id)
        .fetch_one(&app.state.db.pool)
    };
    assert!(data("D-0200").await.unwrap().contains(r#""moved":true"#));
    assert!(!data("D-0199").await.unwrap().contains("moved"));
    // Stored exactly as the service sent it, escapes included (PostgreSQL's COPY has its own).
    assert!(data("D-0007").await.unwrap().contains(r#","note":"Quote \"this\", a backslash \\ and a tab\t"}"#));

    // A stage filter is sent as configured: deals elsewhere in the pipeline are marked missing.
    app.json::<()>(
        &admin,
        "configure_datasource",
        &[("datasource_id", "1"), ("environment", "Production"), ("values[stage]", "Proposal")],
    )
    .await;
    let superadmin = app.signed_in("superadmin@demo.test").await;
    assert_eq!(initiate(&app, &superadmin, DEALS).await.status(), 200);
    assert_eq!(finished(&app, DEALS).await.0, "completed");
    let deal_values = form_values(&app, "deal_intake", "deal").await;
    assert_eq!(deal_values[1], serde_json::json!({"id": "D-0002", "value": "Deal 2 - Initech"}));
    assert_eq!(deal_values[0]["missing"], true, "D-0001 is not a Proposal deal");
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records WHERE datasource_id = 1").await, 75);
}

#[tokio::test]
async fn plain_users_neither_see_nor_run_datasources_and_bad_input_is_refused() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let user = app.signed_in("user@demo.test").await;
    assert!(datasources(&app, &user).await.is_empty());
    let (code, _) = app.fails(&user, "initiate_sync", &[("datasource_id", "1"), ("environment", "Production")]).await;
    assert_eq!(code, 403);
    let (code, _) =
        app.fails(&user, "configure_datasource", &[("datasource_id", "1"), ("environment", "Production")]).await;
    assert_eq!(code, 403);
    assert!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'access_denied'").await >= 2);

    let admin = app.signed_in("admin@demo.test").await;
    let (code, _) = app.fails(&admin, "get_sync_status", &[("datasource_id", "999")]).await;
    assert_eq!(code, 404);
    // A module the service does not have.
    let (code, err) = app.fails(&admin, "create_datasource", &datasource_args("Invoices", "Invoices")).await;
    assert_eq!((code, err.field()), (400, Some("module")));
    assert!(err.to_string().contains("Deals, Contacts"), "{err}");
    let id: i64 = app.json(&admin, "create_datasource", &datasource_args("More Deals", "Deals")).await;
    assert!(id > 2);
}

/// The service fails, answers garbage or times out: the run fails with a readable reason, the
/// form records keep their values, and the run can be initiated again (failures do not count).
#[tokio::test]
async fn a_failing_service_fails_the_run_without_touching_form_records() {
    let sandbox = Sandbox::start(&[("SANDBOX_CRM_RECORDS", "600")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    let before = form_values(&app, "contact_lookup", "contact").await;
    let hook = [("url", "https://hooks.example/x"), ("description", ""), ("events", "sync.failed sync.completed")];
    let _: Value = app.json(&admin, "create_webhook_endpoint", &hook).await;

    // Pages 1 and 2 fine, page 3 garbage: nothing of the first two is applied.
    sandbox.fail_with("garbage", &[("times", "1"), ("skip", "2")]).await;
    assert_eq!(initiate(&app, &admin, CONTACTS).await.status(), 200);
    let (state, error) = finished(&app, CONTACTS).await;
    assert_eq!(state, "failed");
    assert!(error.as_deref().unwrap().contains("not valid JSON"), "{error:?}");
    assert_eq!(form_values(&app, "contact_lookup", "contact").await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records").await, 0);
    let logged: String = sqlx::query_scalar("SELECT detail FROM operations WHERE kind = 'sync_failed'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(logged.contains("not valid JSON"), "{logged}");
    // A webhook endpoint hears it, with the application, the connection and the reason.
    let payload: String = sqlx::query_scalar("SELECT payload FROM webhook_events WHERE kind = 'sync.failed'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        (payload["data"]["connection"].as_str(), payload["data"]["status"].as_str()),
        (Some("sales_crm"), Some("failed"))
    );
    assert!(payload["data"]["application"].is_string(), "{payload}");
    assert!(payload["data"]["reason"].as_str().unwrap_or_default().contains("not valid JSON"), "{payload}");

    sandbox.fail_with("500", &[("times", "1")]).await;
    assert_eq!(initiate(&app, &admin, CONTACTS).await.status(), 200);
    let (state, error) = finished(&app, CONTACTS).await;
    assert_eq!(state, "failed");
    assert!(error.as_deref().unwrap().contains("HTTP 500"), "{error:?}");

    // Recovered service: the same user may initiate again at once.
    assert_eq!(initiate(&app, &admin, CONTACTS).await.status(), 200);
    assert_eq!(finished(&app, CONTACTS).await, ("completed".into(), None));
    let after = form_values(&app, "contact_lookup", "contact").await;
    assert_eq!(after[0]["value"], "grace.lovelace.1@example.test");
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records").await, 600);

    // A later run that fails after writing two pages leaves the completed run's records as
    // they were: its own rows go, the earlier ones stay.
    let developer = app.signed_in("developer@demo.test").await;
    sandbox.fail_with("500", &[("times", "1"), ("skip", "2")]).await;
    assert_eq!(initiate(&app, &developer, CONTACTS).await.status(), 200);
    assert_eq!(finished(&app, CONTACTS).await.0, "failed");
    let completed: i64 = sqlx::query_scalar("SELECT MAX(id) FROM sync_runs WHERE status = 'completed'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let by_run: Vec<(i64, i64)> =
        sqlx::query_as("SELECT run_id, COUNT(*) FROM datasource_records GROUP BY run_id ORDER BY run_id")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(by_run, vec![(completed, 600)]);
    assert_eq!(form_values(&app, "contact_lookup", "contact").await, after);
}

/// The test's app (its router runs no syncs: no slots) and two server processes on its database
/// that serve the presses and run the syncs.
async fn two_processes(sandbox: &Sandbox) -> (TestApp, ServerProcess, ServerProcess) {
    let (mut settings, dir) = common::settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.outbound_allowlist = vec![sandbox.url.trim_start_matches("http://").to_string()];
    settings.sync_max_running = 0;
    let app = common::spawn_with(settings, dir).await;
    let env = [("SYNC_MAX_RUNNING", "10")];
    let p1 = ServerProcess::start_with(&app, &env).await;
    let p2 = ServerProcess::start_with(&app, &env).await;
    (app, p1, p2)
}

/// 1 000 presses at once, from three builders, on two server processes: exactly one run.
#[tokio::test]
async fn a_thousand_concurrent_initiations_start_exactly_one_run() {
    let sandbox = Sandbox::start(&[]).await;
    let (app, p1, p2) = two_processes(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    configure_all_stages(&app, &admin).await;
    // Keep the run busy on its first page while the presses arrive.
    sandbox.fail_with("slow", &[("times", "1"), ("delay_ms", "15000")]).await;

    let mut clients = vec![];
    for email in ["admin@demo.test", "developer@demo.test", "superadmin@demo.test"] {
        clients.push(app.signed_in(email).await);
    }
    let (first, second) = (p1.url(""), p2.url(""));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let client = clients[i % clients.len()].clone();
        let base = if i % 2 == 0 { first.clone() } else { second.clone() };
        tasks.spawn(async move {
            let res = client
                .post(format!("{base}/api/initiate_sync"))
                .form(&[("datasource_id", "1"), ("environment", "Production")])
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            (status, res.text().await.unwrap_or_default())
        });
    }
    let (mut started, mut joined) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        assert_eq!(status, 200, "{body}");
        let out: Initiated = serde_json::from_str(&body).unwrap();
        if out.joined {
            joined += 1;
        } else {
            started += 1;
        }
    }
    assert_eq!((started, joined), (1, 999));
    assert_eq!(app.count("SELECT COUNT(*) FROM sync_runs").await, 1);
    assert_eq!(finished(&app, DEALS).await.0, "completed");
    assert_eq!(app.count("SELECT COUNT(*) FROM sync_runs").await, 1);
}

/// Fifty datasources initiated at once on two server processes: never more than ten run at a time, the
/// rest wait as queued, and all complete.
#[tokio::test]
async fn fifty_datasources_never_run_more_than_ten_at_once() {
    let sandbox = Sandbox::start(&[("SANDBOX_CRM_RECORDS", "1200")]).await;
    let (app, p1, p2) = two_processes(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    let form: i64 = sqlx::query_scalar("SELECT id FROM components WHERE link_name = 'contact_lookup'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let mut ids = vec![];
    for i in 0..50 {
        let id: i64 =
            app.json(&admin, "create_datasource", &datasource_args(&format!("Contacts {i}"), "Contacts")).await;
        sqlx::query("INSERT INTO integration_fields (component_id, datasource_id, field_name, display_field) VALUES ($1, $2, $3, 'email')")
            .bind(form)
            .bind(id)
            .bind(format!("contact_{i}"))
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        ids.push(id);
    }
    let (first, second) = (p1.url(""), p2.url(""));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (client, id) = (admin.clone(), id.to_string());
        let base = if i % 2 == 0 { first.clone() } else { second.clone() };
        tasks.spawn(async move {
            client
                .post(format!("{base}/api/initiate_sync"))
                .form(&[("datasource_id", id.as_str()), ("environment", "Production")])
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        });
    }
    while let Some(s) = tasks.join_next().await {
        assert_eq!(s.unwrap(), 200);
    }
    let (mut max_running, mut saw_queue) = (0, false);
    loop {
        let running = app.count("SELECT COUNT(*) FROM sync_runs WHERE status = 'ongoing'").await;
        let queued = app.count("SELECT COUNT(*) FROM sync_runs WHERE status = 'queued'").await;
        max_running = max_running.max(running);
        saw_queue |= queued > 0 && running > 0;
        if running == 0 && queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(max_running <= 10, "{max_running} ran at once");
    assert!(saw_queue, "some runs should have waited in the queue");
    assert_eq!(app.count("SELECT COUNT(*) FROM sync_runs WHERE status = 'completed'").await, 50);
    // The runs' own start/finish times agree: at no instant were more than ten running.
    let spans: Vec<(i64, i64)> =
        sqlx::query_as("SELECT started_at, finished_at FROM sync_runs").fetch_all(&app.state.db.pool).await.unwrap();
    let mut events: Vec<(i64, i32)> = spans.iter().flat_map(|&(s, f)| [(s, 1), (f, -1)]).collect();
    events.sort_by_key(|&(t, d)| (t, d)); // a finish sorts before a start at the same instant
    let (mut now, mut peak) = (0, 0);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak <= 10, "{peak} overlapping runs");
}

/// `kill -9` while a sync runs; a restarted server marks the run failed with the reason, and it
/// can be initiated again. The in-test router has no sync slots, so only the child processes
/// execute syncs.
#[tokio::test]
async fn a_sync_killed_mid_flight_is_marked_failed_after_restart_and_can_run_again() {
    let sandbox = Sandbox::start(&[]).await;
    let (mut settings, dir) = common::settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.outbound_allowlist = vec![sandbox.url.trim_start_matches("http://").to_string()];
    settings.sync_max_running = 0;
    let app = common::spawn_with(settings, dir).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    let env = [("SYNC_STALE_SECS", "2"), ("SYNC_MAX_RUNNING", "10")];
    let mut first = ServerProcess::start_with(&app, &env).await;

    sandbox.fail_with("slow", &[("times", "1"), ("delay_ms", "60000")]).await;
    assert_eq!(initiate(&app, &admin, CONTACTS).await.status(), 200);
    for _ in 0..100 {
        if status(&app, CONTACTS).await.0 == "ongoing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&app, CONTACTS).await.0, "ongoing", "{}", first.log());
    first.kill().await;

    let second = ServerProcess::start_with(&app, &env).await;
    let (state, error) = finished(&app, CONTACTS).await;
    assert_eq!(state, "failed");
    assert!(error.as_deref().unwrap().contains("server stopped"), "{error:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records").await, 0);

    sandbox.fail("off").await;
    assert_eq!(initiate(&app, &admin, CONTACTS).await.status(), 200);
    assert_eq!(finished(&app, CONTACTS).await, ("completed".into(), None), "{}", second.log());
    assert_eq!(app.count("SELECT COUNT(*) FROM datasource_records").await, 250);
}
