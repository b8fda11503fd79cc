//! The Microservices list: pages of 50 by link name (keyset), search over name, link name and
//! service, filters by type, status and environment, counts; builders only. Speed figures
//! belong to `scripts/bench.sh`; here the answers and SQLite's plan are checked.

use crate::common;

use common::fixtures::api_key_auth;
use common::Bind::{Int, Text};
use common::TestApp;
use serde_json::Value;

/// Adds `n` connections to workspace 1 (`Bulk 000` …, link `bulk_000` …; four digits from
/// 1 000 on), every third one a logged-in-user connection.
async fn bulk_connections(app: &TestApp, n: usize) {
    let width = if n > 1_000 { 4 } else { 3 };
    let mut tx = app.state.db.pool.begin().await.unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, created_at)
             SELECT workspace_id, connector_id, $1, $2, $3, created_at FROM connections WHERE link_name = 'sales_crm'",
        )
        .bind(format!("Bulk {i:0width$}"))
        .bind(format!("bulk_{i:0width$}"))
        .bind(if i % 3 == 0 { "user" } else { "admin" })
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn page(app: &TestApp, client: &reqwest::Client, query: &[(&str, &str)]) -> Value {
    let args: Vec<(String, &str)> = query.iter().map(|(k, v)| (format!("query[{k}]"), *v)).collect();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    app.json(client, "connections_page", &args).await
}

fn links(page: &Value) -> Vec<String> {
    page["entries"].as_array().unwrap().iter().map(|c| c["link_name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn pages_list_every_connection_once_in_link_name_order_with_counts() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    bulk_connections(&app, 120).await;
    let expected: Vec<String> =
        sqlx::query_scalar("SELECT link_name FROM connections WHERE workspace_id = 1 ORDER BY link_name")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert!(expected.len() > 120);

    let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let p = page(&app, &admin, &[("after", &after)]).await;
        let got = links(&p);
        assert!(got.len() <= 50, "a page holds at most 50");
        assert_eq!(p["total"], expected.len() as i64);
        assert_eq!(p["matching"], expected.len() as i64, "no filter: every connection matches");
        let by_type: i64 = p["by_type"].as_array().unwrap().iter().map(|t| t[1].as_i64().unwrap()).sum();
        assert_eq!(by_type, expected.len() as i64);
        seen.extend(got);
        pages += 1;
        match p["next_after"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(seen, expected, "every connection once, in order");
    assert_eq!(pages, expected.len().div_ceil(50));
}

#[tokio::test]
async fn search_and_filters_narrow_the_list_and_bad_values_are_refused() {
    let sandbox = common::sandbox::Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    bulk_connections(&app, 30).await;

    // Search: any case, in the name, the link name or the service's name.
    let p = page(&app, &admin, &[("q", "BULK 01")]).await;
    assert_eq!(links(&p), (10..20).map(|i| format!("bulk_{i:03}")).collect::<Vec<_>>());
    assert_eq!(p["matching"], 10);
    assert!(p["total"].as_i64().unwrap() > 30);
    assert!(links(&page(&app, &admin, &[("q", "issue_tr")]).await).contains(&"issue_tracker".to_string()));
    let service: String = sqlx::query_scalar(
        "SELECT k.name FROM connections c JOIN connectors k ON k.id = c.connector_id WHERE c.link_name = 'weather'",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert!(links(&page(&app, &admin, &[("q", &service.to_uppercase())]).await).contains(&"weather".to_string()));
    // `%` and `_` are searched for as they are, not as wildcards.
    assert_eq!(page(&app, &admin, &[("q", "%")]).await["matching"], 0);
    assert_eq!(page(&app, &admin, &[("q", "bul_")]).await["matching"], 0);

    // Type: every logged-in-user connection, and only those.
    let users: i64 = app.count("SELECT COUNT(*) FROM connections WHERE conn_type = 'user'").await;
    let p = page(&app, &admin, &[("type", "user")]).await;
    assert_eq!(p["matching"], users);
    assert!(p["entries"].as_array().unwrap().iter().all(|c| c["conn_type"] == "LoggedInUser"), "{p}");

    // Status, in the environment asked for (Development when none).
    app.authorize(&admin, "weather", &api_key_auth("Key", "sandbox-weather-key")).await;
    let connected = page(&app, &admin, &[("status", "connected"), ("env", "production")]).await;
    assert_eq!(links(&connected), vec!["weather".to_string()]);
    assert_eq!(connected["environment"], "Production");
    let not_connected = page(&app, &admin, &[("status", "not_connected"), ("env", "production")]).await;
    assert!(!links(&not_connected).contains(&"weather".to_string()));
    assert_eq!(
        not_connected["matching"].as_i64().unwrap() + 1,
        connected["total"].as_i64().unwrap(),
        "every other connection is not connected"
    );
    assert_eq!(page(&app, &admin, &[]).await["environment"], "Development");

    // Filters combine with paging: the second page of "bulk" starts after the first.
    let first = page(&app, &admin, &[("q", "bulk")]).await;
    assert_eq!(first["next_after"], Value::Null, "30 fit on one page");

    // Bad values are refused, naming the field; plain users may not list connections at all.
    let call = |k: &'static str, v: String| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let key = format!("query[{k}]");
            app.fails(&admin, "connections_page", &[(key.as_str(), v.as_str())]).await
        }
    };
    for (k, v) in [("type", "robot".to_string()), ("status", "asleep".into()), ("env", "moon".into())] {
        let (status, e) = call(k, v).await;
        assert_eq!(status, 400, "{k}: {e}");
        assert!(e.field().is_some(), "{k}: {e:?}");
    }
    let (status, e) = call("q", "x".repeat(101)).await;
    assert_eq!((status, e.field()), (400, Some("q")));
    let user = app.signed_in("user@demo.test").await;
    assert_eq!(app.fails(&user, "connections_page", &[]).await.0, 403);
}

#[tokio::test]
async fn the_first_page_walks_the_link_name_index_and_stops_after_fifty() {
    if common::is_postgres() {
        return; // PostgreSQL's plan depends on its statistics; the plan check is SQLite's.
    }
    let app = common::spawn().await;
    bulk_connections(&app, 300).await;
    let steps = app
        .sqlite_plan(
            app::connections::ssr::PAGE,
            &[Text("development"), Int(2), Int(1), Text(""), Text(""), Text(""), Text(""), Int(51)],
        )
        .await;
    assert!(
        !steps.iter().any(|d| d.contains("TEMP B-TREE")),
        "the page is sorted after reading everything: {steps:#?}"
    );
    assert!(
        steps.iter().any(|d| d.starts_with("SEARCH c USING INDEX") && d.contains("workspace_id=? AND link_name>?")),
        "connections are not read in link-name order from the index: {steps:#?}"
    );
}

/// "Needs attention" starts from the few authorizations that need it, whatever the size of the
/// workspace: without statistics SQLite's planner preferred the workspace's index and read every
/// connection (11 ms per page with 100 000 of them).
#[tokio::test]
async fn attention_is_counted_from_the_authorizations_needing_it() {
    if common::is_postgres() {
        return; // PostgreSQL's plan depends on its statistics; the plan check is SQLite's.
    }
    let app = common::spawn().await;
    bulk_connections(&app, 300).await;
    let steps = app.sqlite_plan(app::connections::ssr::ATTENTION, &[Int(1)]).await;
    assert!(
        steps.iter().any(|d| d == "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"),
        "connections are not looked up by id: {steps:#?}"
    );
    assert!(
        !steps.iter().any(|d| d.starts_with("SCAN c ") || *d == "SCAN c" || d.contains("workspace_id=?")),
        "the workspace's connections are read: {steps:#?}"
    );
}

/// The counts per type are kept by triggers (not counted per page): inserts, a change of type
/// and deletes are reflected at once, and they always agree with the rows.
#[tokio::test]
async fn counts_follow_inserts_type_changes_and_deletes() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    bulk_connections(&app, 9).await;
    let counts = |p: &Value| -> Vec<(String, i64)> {
        p["by_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t[0].as_str().unwrap().to_string(), t[1].as_i64().unwrap()))
            .collect()
    };
    let actual = || async {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT conn_type, COUNT(*) FROM connections WHERE workspace_id = 1 GROUP BY conn_type ORDER BY conn_type",
        )
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
    };
    // The answer names types as the API does ("LoggedInUser"), the table as stored ("user").
    let stored = |t: &str| match t {
        "Admin" => "admin",
        "System" => "system",
        "LoggedInUser" => "user",
        other => panic!("unknown type {other}"),
    };
    let counts =
        |p: &Value| -> Vec<(String, i64)> { counts(p).into_iter().map(|(t, n)| (stored(&t).to_string(), n)).collect() };
    let before = counts(&page(&app, &admin, &[]).await);
    assert_eq!(before, actual().await);
    sqlx::query("UPDATE connections SET conn_type = 'admin' WHERE link_name = 'bulk_000'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM connections WHERE link_name IN ('bulk_001', 'bulk_003')")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let after = page(&app, &admin, &[]).await;
    assert_eq!(counts(&after), actual().await);
    let n = |v: &[(String, i64)], t: &str| v.iter().find(|(k, _)| k == t).map_or(0, |(_, n)| *n);
    assert_eq!(n(&counts(&after), "user"), n(&before, "user") - 2, "bulk_000 became admin, bulk_003 was deleted");
    assert_eq!(n(&counts(&after), "admin"), n(&before, "admin"), "one became admin, one admin was deleted");
    assert_eq!(after["total"].as_i64().unwrap(), before.iter().map(|(_, n)| n).sum::<i64>() - 2);
}

/// Every page of a search, followed to the end: the link names in order.
async fn all_pages(app: &TestApp, client: &reqwest::Client, q: &str) -> (Vec<String>, i64) {
    all_pages_of(app, client, &[("q", q)]).await
}

/// Every page of the list with `filters`, followed to the end: the link names in order, and the
/// count of matches (the same on every page).
async fn all_pages_of(app: &TestApp, client: &reqwest::Client, filters: &[(&str, &str)]) -> (Vec<String>, i64) {
    let (mut seen, mut after, mut matching) = (Vec::new(), String::new(), -1);
    for _ in 0..100 {
        let mut query = filters.to_vec();
        query.push(("after", &after));
        let p = page(app, client, &query).await;
        if matching < 0 {
            matching = p["matching"].as_i64().unwrap();
        }
        assert_eq!(p["matching"].as_i64().unwrap(), matching, "the count changed between pages");
        seen.extend(links(&p));
        match p["next_after"].as_str() {
            Some(next) => after = next.to_string(),
            None => return (seen, matching),
        }
    }
    panic!("the pages of {filters:?} never end");
}

/// Searches of three characters or more are answered from the trigram indexes (migration 0016),
/// kept by triggers: a renamed connection is found by its new name only, a deleted one no more;
/// any case; quotes, `%` and `_` are searched for as they are; a search matching more than a
/// page is paged in order; one matching thousands (read in link-name order instead) gives the
/// same answer as reading every row.
#[tokio::test]
async fn searches_use_the_trigram_index_which_follows_renames_and_deletes() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    bulk_connections(&app, 2_100).await;
    let expected = |like: &'static str| {
        let pool = app.state.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT link_name FROM connections WHERE workspace_id = 1 AND LOWER(display_name) LIKE $1 ORDER BY link_name",
            )
            .bind(like)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };

    // 100 matches: two pages, every one once, in order, counted.
    let (seen, matching) = all_pages(&app, &admin, "ULK 01").await;
    assert_eq!(seen, expected("bulk 01%").await);
    assert_eq!((seen.len(), matching), (100, 100));
    // 2 100 matches: more than the index path sorts; the same rows, in order.
    let (seen, matching) = all_pages(&app, &admin, "bulk").await;
    assert_eq!(seen, expected("bulk%").await);
    assert_eq!((seen.len(), matching), (2_100, 2_100));

    // Renamed: found by the new name, not the old; deleted: gone.
    sqlx::query("UPDATE connections SET display_name = 'Quarterly \"Revenue\" 100%_x' WHERE link_name = 'bulk_0042'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(all_pages(&app, &admin, "bulk 0042").await.0, Vec::<String>::new());
    assert_eq!(all_pages(&app, &admin, "quarterly").await.0, vec!["bulk_0042".to_string()]);
    assert_eq!(all_pages(&app, &admin, "\"revenue\"").await.0, vec!["bulk_0042".to_string()]);
    assert_eq!(all_pages(&app, &admin, "100%_").await.0, vec!["bulk_0042".to_string()]);
    assert_eq!(all_pages(&app, &admin, "10%_").await.1, 0, "% and _ are not wildcards");
    assert_eq!(all_pages(&app, &admin, "lk_0042").await.0, vec!["bulk_0042".to_string()], "the link name");
    sqlx::query("UPDATE connections SET display_name = 'ÜBER Straße' WHERE link_name = 'bulk_0043'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    if !common::is_postgres() {
        // Only the index folds case beyond ASCII (SQLite's `LOWER` does not): found through it.
        assert_eq!(all_pages(&app, &admin, "über").await.0, vec!["bulk_0043".to_string()]);
    }
    sqlx::query("DELETE FROM connections WHERE link_name = 'bulk_0042'").execute(&app.state.db.pool).await.unwrap();
    assert_eq!(all_pages(&app, &admin, "quarterly").await.1, 0);

    // The service's name still finds its connections; filters combine with an indexed search.
    let (seen, _) = all_pages(&app, &admin, "bulk 00").await;
    assert_eq!(seen.len(), 98, "bulk_0000 … bulk_0099 less the deleted and the renamed one");
    let p = page(&app, &admin, &[("q", "bulk 00"), ("type", "user")]).await;
    assert_eq!(p["matching"], 33, "every third is a logged-in-user connection");
    assert!(p["entries"].as_array().unwrap().iter().all(|c| c["conn_type"] == "LoggedInUser"), "{p}");
    let service: String = sqlx::query_scalar(
        "SELECT k.name FROM connections c JOIN connectors k ON k.id = c.connector_id WHERE c.link_name = 'weather'",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert!(all_pages(&app, &admin, &service.to_uppercase()).await.0.contains(&"weather".to_string()));

    if common::is_postgres() {
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'connections' AND indexname LIKE '%_trgm' ORDER BY 1",
        )
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(indexes, ["connections_display_name_trgm", "connections_link_name_trgm"]);
        return; // PostgreSQL's plan depends on its statistics; the plan check is SQLite's.
    }
    // SQLite: the ids come from the FTS5 index and drive the look-ups; no connection is read
    // from the workspace's index.
    let steps = app
        .sqlite_plan(
            app::connections::ssr::SEARCH_PAGE_SQLITE,
            &[
                Text("development"),
                Int(2),
                Int(1),
                Text("%ulk 01%"),
                Text(""),
                Text(""),
                Text("\"ulk 01\""),
                Text(""),
                Int(51),
            ],
        )
        .await;
    assert!(
        steps.iter().any(|d| d.contains("connection_search VIRTUAL TABLE")),
        "the trigram index is not used: {steps:#?}"
    );
    assert!(
        !steps.iter().any(|d| *d == "SCAN c" || d.starts_with("SCAN c ") || d.contains("workspace_id=?")),
        "the workspace's connections are read: {steps:#?}"
    );
    assert!(
        steps.iter().any(|d| d == "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"),
        "not looked up by id: {steps:#?}"
    );
}

/// On SQLite the triggers on `connections` reach the FTS5 search index; a pooled connection
/// that read the schema before another connection changed it failed its next insert once
/// ("no such table: connections"). The session store created its table after the pool had
/// read the schema (seeding the demo workspace), so the first insert after start could fail.
/// Now every schema change at start comes first: every pooled connection inserts at once.
#[tokio::test]
async fn connections_can_be_added_on_every_pooled_connection_right_after_start() {
    let (settings, _dir) = common::settings().await;
    let built = server::build(settings).await.expect("build");
    let pool = &built.state.db.pool;
    let mut held = Vec::new();
    for i in 0..4 {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, created_at)
             SELECT workspace_id, connector_id, $1, $2, conn_type, created_at FROM connections WHERE link_name = 'sales_crm'",
        )
        .bind(format!("Started {i}"))
        .bind(format!("started_{i}"))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("insert on pooled connection {i}: {e}"));
        held.push(conn);
    }
}

/// A status some row records (connected, needs reauthorization, revoked, disabled) is listed from
/// those rows, not by reading every connection: the right ones, paged in order, with their
/// count, combined with a type filter, in the environment asked for.
#[tokio::test]
async fn recorded_statuses_are_listed_from_the_rows_that_record_them() {
    let sandbox = common::sandbox::Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    bulk_connections(&app, 300).await;
    app.authorize(&admin, "weather", &api_key_auth("Key", "sandbox-weather-key")).await;
    let in_production = |status: &'static str| {
        let (app, admin) = (&app, &admin);
        async move { all_pages_of(app, admin, &[("status", status), ("env", "production")]).await }
    };
    let weather = (vec!["weather".to_string()], 1);
    let nothing = (Vec::<String>::new(), 0);
    assert_eq!(in_production("connected").await, weather);

    let disabled: Vec<String> = (100..160).map(|i| format!("bulk_{i:03}")).collect();
    for link in &disabled {
        sqlx::query("UPDATE connections SET enabled = 0 WHERE link_name = $1")
            .bind(link)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }
    let (seen, matching) = all_pages_of(&app, &admin, &[("status", "disabled")]).await;
    assert_eq!(seen, disabled, "60 disabled, over two pages, in order");
    assert_eq!(matching, 60);
    let users: Vec<String> = (100..160).filter(|i| i % 3 == 0).map(|i| format!("bulk_{i:03}")).collect();
    assert_eq!(all_pages_of(&app, &admin, &[("status", "disabled"), ("type", "user")]).await.0, users);
    assert_eq!(in_production("needs_reauthorization").await, nothing);

    sqlx::query("UPDATE authorized_accounts SET status = 'needs_reauthorization'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(in_production("needs_reauthorization").await, weather);
    assert_eq!(in_production("connected").await, nothing);

    let id = app.connection_id("weather").await.to_string();
    app.json::<()>(&admin, "revoke_authorization", &[("connection_id", &id)]).await;
    assert_eq!(in_production("revoked").await, weather);
    assert_eq!(in_production("needs_reauthorization").await, nothing);
    // A disabled connection is listed as disabled, whatever its authorization says.
    sqlx::query("UPDATE connections SET enabled = 0 WHERE link_name = 'weather'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(in_production("revoked").await, nothing);
    assert_eq!(all_pages_of(&app, &admin, &[("status", "disabled")]).await.1, 61);

    if common::is_postgres() {
        return; // PostgreSQL's plan depends on its statistics; the plan check is SQLite's.
    }
    for status in ["disabled", "revoked", "connected"] {
        let steps = app
            .sqlite_plan(
                app::connections::ssr::STATUS_PAGE_SQLITE,
                &[Text("development"), Int(2), Int(1), Text(""), Text(""), Text(status), Text(""), Int(51)],
            )
            .await;
        // Connections are looked up by id; no table of the workspace's size is read whole (the
        // authorizations and revocations are read by their own keys or partial indexes).
        let scans: Vec<&String> = steps
            .iter()
            .filter(|d| {
                d.starts_with("SCAN c ") || *d == "SCAN c" || d.starts_with("SCAN c0") || d.starts_with("SCAN k")
            })
            .collect();
        assert!(scans.is_empty(), "{status}: read whole: {scans:?} in {steps:#?}");
        assert!(steps.iter().any(|d| d.contains("connections_disabled")), "{status}: {steps:#?}");
        assert!(
            steps.iter().any(|d| d == "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"),
            "{status}: not looked up by id: {steps:#?}"
        );
    }
}
