//! Benchmark (run by `scripts/bench.sh`, never by the tests): an integration-fields sync of
//! 100 000 records from the sandbox CRM's paginated API (200 per page, through the real
//! invoke path with the connection's OAuth2 token), next to a plain bulk insert of the same rows
//! into the same database. Prints records per second for both.
//!
//! Uses the integration tests' harness (real router on port 0, fresh database: SQLite, or the
//! Postgres named by `TEST_DATABASE_URL`).

#[path = "../tests/api/common/mod.rs"]
mod common;

use common::sandbox::Sandbox;
use std::time::{Duration, Instant};

const RECORDS: usize = 100_000;

#[tokio::main]
async fn main() {
    let records = std::env::var("BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(RECORDS);
    let n = records.to_string();
    let sandbox = Sandbox::start(&[("SANDBOX_CRM_RECORDS", n.as_str())]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let backend = if common::is_postgres() { "PostgreSQL" } else { "SQLite" };
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    app.json::<()>(
        &admin,
        "configure_datasource",
        &[("datasource_id", "1"), ("environment", "Production"), ("values[stage]", "All")],
    )
    .await;

    // 1. The sync, from "Initiate" to "Completed".
    let start = Instant::now();
    let res = app.call(&admin, "initiate_sync", &[("datasource_id", "1"), ("environment", "Production")]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    loop {
        let (status, error): (String, Option<String>) =
            sqlx::query_as("SELECT status, error FROM sync_runs WHERE datasource_id = 1 ORDER BY id DESC LIMIT 1")
                .fetch_one(&app.state.db.pool)
                .await
                .expect("run");
        match status.as_str() {
            "completed" => break,
            "failed" => panic!("the sync failed: {error:?}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let sync = start.elapsed();
    let (fetched, calls): (i64, i64) =
        sqlx::query_as("SELECT records, api_calls FROM sync_runs WHERE datasource_id = 1 ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("run");
    assert_eq!(fetched as usize, records);

    // 2. The same rows, bulk-inserted into the same database (the floor for the write side).
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT record_id, data FROM datasource_records WHERE datasource_id = 1")
            .fetch_all(&app.state.db.pool)
            .await
            .expect("rows");
    sqlx::query("CREATE TABLE bench_rows (record_id TEXT PRIMARY KEY, data TEXT NOT NULL)")
        .execute(&app.state.db.pool)
        .await
        .expect("table");
    let start = Instant::now();
    let mut tx = app.state.db.pool.begin().await.expect("tx");
    for chunk in rows.chunks(300) {
        let sql = format!(
            "INSERT INTO bench_rows (record_id, data) VALUES {}",
            app.state.db.backend.value_rows(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (id, data) in chunk {
            q = q.bind(id.as_str()).bind(data.as_str());
        }
        q.execute(&mut *tx).await.expect("insert");
    }
    tx.commit().await.expect("commit");
    let insert = start.elapsed();

    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    println!(
        "{backend}: sync of {records} records in {calls} API calls: {:.2} s ({:.0} records/s); \
         bulk insert of the same rows: {:.2} s ({:.0} rows/s)",
        sync.as_secs_f64(),
        rate(sync),
        insert.as_secs_f64(),
        rate(insert)
    );
}
