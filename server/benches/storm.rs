//! Benchmark (run by `scripts/bench.sh` on PostgreSQL, never by the tests): the refresh storm.
//! Two replicas on one database, 50 calls each at once over a connection whose OAuth2 token is
//! expiring; prints the storm's wall time and how many refreshes the provider saw (exactly one:
//! the correctness of this is `concurrent_calls_on_an_expired_token_refresh_once` in the tests).

#[path = "../tests/api/common/mod.rs"]
mod common;

use common::sandbox::Sandbox;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "12")]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    app.connect_oauth(&admin, "sales_crm").await;
    let (replica, _) = common::spawn_replica(&app).await;
    let url = sandbox.endpoint("/api/crm/Deals?per_page=2");
    // The 12 s token counts as expiring in its last 3 s.
    tokio::time::sleep(Duration::from_millis(9300)).await;
    sandbox.reset_stats().await;
    let start = Instant::now();
    let calls = (0..100).map(|i| {
        let (admin, url) = (admin.clone(), url.clone());
        let base = if i % 2 == 0 { app.url("") } else { format!("http://{replica}") };
        async move { common::invoke_at(&base, &admin, "sales_hub", "sales_crm", &url).await.status().as_u16() }
    });
    let statuses = futures::future::join_all(calls).await;
    let took = start.elapsed();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refreshes = sandbox.stats().await["token_requests"]["refresh_token"].as_i64().unwrap_or(-1);
    let backend = if common::is_postgres() { "PostgreSQL" } else { "SQLite" };
    println!(
        "{backend}, refresh storm (2 replicas × 50 calls at once on an expiring token): {:.0} ms wall time, \
         {ok}/100 answered 200, {refreshes} refresh(es) at the provider",
        took.as_secs_f64() * 1000.0
    );
}
