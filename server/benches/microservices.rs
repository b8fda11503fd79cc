//! Benchmark (run by `scripts/bench.sh`, never by the tests): the Microservices list with
//! 100 000 connections in the workspace. Times the first page, a later page and a search
//! (`connections_page`, 50 per page) next to the whole list in one answer
//! (`workspace_connections`, what the page used before), over HTTP on loopback through the real
//! router. Prints p50 / p95 and the answer's size for each.
//!
//! Uses the integration tests' harness (real router on port 0, fresh database: SQLite, or the
//! Postgres named by `TEST_DATABASE_URL`).

#[path = "../tests/api/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

const CONNECTIONS: usize = 100_000;

/// Adds `n` connections to workspace 1, copied from `sales_crm` (every third one a
/// logged-in-user connection), in one transaction.
async fn add_connections(app: &common::TestApp, n: usize) {
    let mut tx = app.state.db.pool.begin().await.expect("tx");
    for start in (0..n).step_by(200) {
        let end = (start + 200).min(n);
        let values: Vec<String> = (start..end)
            .map(|i| format!("('Bench {i:06}', 'bench_{i:06}', '{}')", ["user", "admin", "admin"][i % 3]))
            .collect();
        let sql = format!(
            "WITH v(name, link, kind) AS (VALUES {})
             INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, created_at)
             SELECT s.workspace_id, s.connector_id, v.name, v.link, v.kind, s.created_at
             FROM connections s, v WHERE s.link_name = 'sales_crm'",
            values.join(",")
        );
        sqlx::query(&sql).execute(&mut *tx).await.expect("insert");
    }
    tx.commit().await.expect("commit");
}

/// Calls `name` `times` times; (p50, p95, bytes of the last answer).
async fn time(
    app: &common::TestApp,
    client: &reqwest::Client,
    name: &str,
    args: &[(&str, &str)],
    times: usize,
) -> (Duration, Duration, usize) {
    let mut took = Vec::with_capacity(times);
    let mut bytes = 0;
    for _ in 0..times {
        let start = Instant::now();
        let res = app.call(client, name, args).await;
        assert_eq!(res.status(), 200, "{name}");
        bytes = res.bytes().await.expect("body").len();
        took.push(start.elapsed());
    }
    took.sort();
    (took[times / 2], took[times * 95 / 100], bytes)
}

#[tokio::main]
async fn main() {
    let n = std::env::var("BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(CONNECTIONS);
    let app = common::spawn().await;
    let backend = if common::is_postgres() { "PostgreSQL" } else { "SQLite" };
    add_connections(&app, n).await;
    if common::is_postgres() {
        sqlx::query("ANALYZE").execute(&app.state.db.pool).await.expect("analyze");
    }
    let admin = app.signed_in("admin@demo.test").await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rows = [
        ("first page", "connections_page", vec![], 50),
        ("a page in the middle", "connections_page", vec![("query[after]", "bench_050000")], 50),
        ("search \"bench 0999\"", "connections_page", vec![("query[q]", "bench 0999")], 20),
        ("logged-in-user connections", "connections_page", vec![("query[type]", "user")], 50),
        ("whole list in one answer (before)", "workspace_connections", vec![], 3),
    ];
    println!("{backend}, {n} connections in the workspace (HTTP on loopback, p50 / p95, answer size):");
    for (what, name, args, times) in rows {
        let (p50, p95, bytes) = time(&app, &admin, name, &args, times).await;
        println!("  {what}: {:.1} ms / {:.1} ms, {:.1} KB", ms(p50), ms(p95), bytes as f64 / 1000.0);
    }
}
