//! Benchmark (run by `scripts/bench.sh`, never by the tests): the Microservices list with
//! 100 000 connections in the workspace. Times the first page, a later page, searches
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
    app.add_connections(0..n).await;
    if common::is_postgres() {
        // What autovacuum does after a bulk load: statistics, and the trigram indexes' pending
        // entries (GIN `fastupdate`) moved into the index.
        sqlx::query("VACUUM ANALYZE").execute(&app.state.db.pool).await.expect("vacuum analyze");
    }
    let admin = app.signed_in("admin@demo.test").await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rows = [
        ("first page", "connections_page", vec![], 50),
        ("a page in the middle", "connections_page", vec![("query[after]", "bench_050000")], 50),
        ("search \"bench 0999\" (100 match)", "connections_page", vec![("query[q]", "bench 0999")], 20),
        ("search \"crm\" (every one matches by its service)", "connections_page", vec![("query[q]", "crm")], 20),
        ("search \"ch\" (too short for the index)", "connections_page", vec![("query[q]", "ch")], 20),
        ("logged-in-user connections", "connections_page", vec![("query[type]", "user")], 50),
        (
            "needs reauthorization (the banner's link; partial indexes)",
            "connections_page",
            vec![("query[status]", "needs_reauthorization")],
            20,
        ),
        ("connected (from the authorizations)", "connections_page", vec![("query[status]", "connected")], 20),
        ("whole list in one answer (before)", "workspace_connections", vec![], 3),
    ];
    println!("{backend}, {n} connections in the workspace (HTTP on loopback, p50 / p95, answer size):");
    for (what, name, args, times) in rows {
        let (p50, p95, bytes) = time(&app, &admin, name, &args, times).await;
        println!("  {what}: {:.1} ms / {:.1} ms, {:.1} KB", ms(p50), ms(p95), bytes as f64 / 1000.0);
    }
}
