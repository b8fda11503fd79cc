//! The connections panel of an application reads only the connections its components use: its
//! cost does not grow with the rest of the workspace (speed figures are in `scripts/bench.sh`;
//! here the query plan and the answer are checked).

use crate::common;
use common::Bind::{Int, Text};

use serde_json::Value;

/// Adds `n` connections to workspace 1 that no component uses.
async fn unused_connections(app: &common::TestApp, n: usize) {
    let mut tx = app.state.db.pool.begin().await.unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, created_at)
             SELECT workspace_id, connector_id, $1, $2, conn_type, created_at FROM connections WHERE link_name = 'sales_crm'",
        )
        .bind(format!("Unused {i}"))
        .bind(format!("unused_{i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_panel_reads_only_the_connections_the_application_uses() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let panel = || async {
        let list: Vec<Value> =
            app.json(&admin, "app_connections", &[("app", "sales_hub"), ("environment", "Production")]).await;
        list.iter().map(|c| c["link_name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let before = panel().await;
    assert!(!before.is_empty());
    unused_connections(&app, 2_000).await;
    assert_eq!(panel().await, before, "connections nobody uses are not listed");

    if common::is_postgres() {
        return; // PostgreSQL's plan depends on its statistics; the plan check is SQLite's.
    }
    let steps = app
        .sqlite_plan(
            app::connections::ssr::FOR_APPLICATION,
            &[Text("production"), Int(2), Int(1), Int(1), Text(""), Int(1)],
        )
        .await;
    // Connections are looked up by id from the application's components, never walked; no
    // table is scanned whole.
    let walks: Vec<&String> = steps
        .iter()
        .filter(|d| d.starts_with("SCAN ") || (d.starts_with("SEARCH c ") && !d.contains("INTEGER PRIMARY KEY")))
        .collect();
    assert!(walks.is_empty(), "the plan walks a table: {walks:?}\n{steps:#?}");
}
