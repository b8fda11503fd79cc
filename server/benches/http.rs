//! Benchmark (run by `scripts/bench.sh`, never by the tests): the hot paths of the release
//! server under `wrk`, side by side with nginx in the same run.
//!
//! Starts nginx (an upstream answering a small JSON body, and a proxy in front of it that adds
//! an API-key header: the near-limit credential-injecting proxy), seeds a fresh database with the
//! demo workspace and an API-key connection to that upstream, starts the release `server`
//! binary on it as its own process, signs in, and runs `wrk -t1 -c16 --latency` for each row.
//! Prints one table (requests/s, p50, p99 and the ratio to the row it is compared with) and
//! the server's peak RSS. Needs `nginx` and `wrk` on the PATH (`scripts/setup.sh --bench`).

#[path = "../tests/api/common/mod.rs"]
mod common;

use common::fixtures;
use common::process::ServerProcess;
use std::path::Path;
use std::process::Command;

const DURATION: &str = "5s";

/// What `wrk --latency` reports.
#[derive(Clone, Copy)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `1.23ms`, `456.00us`, `1.02s` → milliseconds.
fn millis(text: &str) -> f64 {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// Runs wrk against `url` with the request `lua` describes; panics when any answer is not 2xx.
fn wrk(dir: &Path, name: &str, url: &str, lua: &str) -> Run {
    wrk_with(dir, name, url, lua, 16)
}

/// [`wrk`] with `connections` open at once (1: one request at a time, the server's own time).
fn wrk_with(dir: &Path, name: &str, url: &str, lua: &str, connections: usize) -> Run {
    let script = dir.join(format!("{name}.lua"));
    std::fs::write(&script, lua).expect("write the wrk script");
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), "-d", DURATION, "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("run wrk (scripts/setup.sh --bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk {name}: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Non-2xx"), "{name}: some answers were not 2xx:\n{text}");
    let after = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(|rest| rest.trim().to_string()))
            .unwrap_or_else(|| panic!("{name}: no {label} in\n{text}"))
    };
    Run {
        rps: after("Requests/sec:").parse().unwrap_or(f64::NAN),
        p50_ms: millis(&after("50%")),
        p99_ms: millis(&after("99%")),
    }
}

/// A wrk script for a GET (with a session cookie when given).
fn get(cookie: Option<&str>) -> String {
    match cookie {
        Some(c) => format!("wrk.headers[\"Cookie\"] = {c:?}\n"),
        None => String::new(),
    }
}

/// A wrk script that calls a server function the way the WASM client does.
fn post(cookie: &str, form: &[(&str, &str)]) -> String {
    let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    format!(
        "wrk.method = \"POST\"\nwrk.body = {body:?}\nwrk.headers[\"Content-Type\"] = \
         \"application/x-www-form-urlencoded\"\nwrk.headers[\"Cookie\"] = {cookie:?}\n"
    )
}

/// nginx on two ports: the upstream (a small JSON body) and a proxy to it adding a header.
fn start_nginx(dir: &Path, upstream: u16, proxy: u16) -> std::process::Child {
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{upstream};
    location / {{ default_type application/json; return 200 '{{"id":42,"name":"Acme","stage":"won","amount":1200}}'; }}
  }}
  server {{
    listen 127.0.0.1:{proxy};
    location / {{
      proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Api-Key "bench-key";
    }}
  }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nginx (scripts/setup.sh --bench installs it)")
}

/// Peak resident set size of `pid` in MB (`VmHWM`).
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn wait_for(url: &str) {
    for _ in 0..100 {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer");
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().expect("temp dir");
    let (upstream, proxy) = (free_port(), free_port());
    let mut nginx = start_nginx(work.path(), upstream, proxy);
    let upstream_url = format!("http://127.0.0.1:{upstream}/");
    wait_for(&upstream_url).await;

    let (mut settings, dir) = common::settings().await;
    settings.outbound_allowlist = vec![format!("127.0.0.1:{upstream}")];
    let mut app = common::spawn_with(settings, dir).await;
    app.stop_workers().await;
    let backend = if common::is_postgres() { "PostgreSQL" } else { "SQLite" };
    let admin = app.signed_in("admin@demo.test").await;
    let base = format!("http://127.0.0.1:{upstream}");
    let link =
        app.custom_connection(&admin, &fixtures::api_key("Bench API", "X-Api-Key", &base), "Bench API", &[]).await;
    app.authorize(&admin, &link, &fixtures::api_key_auth("bench", "bench-key")).await;

    let server = ServerProcess::start(&app).await;
    let pid = server.pid().expect("server pid");
    let (_, cookie) = app.signed_in_at(&server.url(""), "admin@demo.test").await;
    let dir = work.path();
    let invoke = post(
        &cookie,
        &[
            ("request[app]", "field_service"),
            ("request[connection]", &link),
            ("request[method]", "GET"),
            ("request[url]", &upstream_url),
        ],
    );
    let panel = post(&cookie, &[("app", "field_service"), ("environment", "Production")]);

    // The peak after each row (it only grows): which load raised it.
    let mut peaks: Vec<(&str, f64)> = vec![("start", peak_rss_mb(pid))];
    let direct = wrk(dir, "direct", &upstream_url, &get(None));
    let nginx_header = wrk(dir, "nginx", &format!("http://127.0.0.1:{proxy}/"), &get(None));
    let invoked = wrk(dir, "invoke", &server.url("/api/invoke_url"), &invoke);
    peaks.push(("invoked", peak_rss_mb(pid)));
    // One request at a time: what a call adds to the service's own time, without queueing.
    let direct_alone = wrk_with(dir, "direct1", &upstream_url, &get(None), 1);
    let invoked_alone = wrk_with(dir, "invoke1", &server.url("/api/invoke_url"), &invoke, 1);
    peaks.push(("invoked_alone", peak_rss_mb(pid)));
    let ceiling = wrk(dir, "static", &server.url("/embed.js"), &get(None));
    peaks.push(("ceiling", peak_rss_mb(pid)));
    let session = wrk(dir, "session", &server.url("/api/current_user"), &post(&cookie, &[]));
    peaks.push(("session", peak_rss_mb(pid)));
    let panel_small = wrk(dir, "panel", &server.url("/api/app_connections"), &panel);
    peaks.push(("panel_small", peak_rss_mb(pid)));
    // What a browser sends: the answer is then compressed on the fly.
    let browser = format!("{panel}wrk.headers[\"Accept-Encoding\"] = \"gzip, deflate, br, zstd\"\n");
    let panel_br = wrk(dir, "panel-br", &server.url("/api/app_connections"), &browser);
    peaks.push(("panel_br", peak_rss_mb(pid)));
    app.add_connections(0..10_000).await;
    let panel_10k = wrk(dir, "panel10k", &server.url("/api/app_connections"), &panel);
    peaks.push(("panel_10k", peak_rss_mb(pid)));
    app.add_connections(10_000..100_000).await;
    if common::is_postgres() {
        sqlx::query("ANALYZE").execute(&app.state.db.pool).await.expect("analyze");
    }
    let page = wrk_with(dir, "page", &server.url("/api/connections_page"), &post(&cookie, &[]), 1);
    peaks.push(("page", peak_rss_mb(pid)));
    let page_bytes = common::http()
        .post(server.url("/api/connections_page"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .bytes()
        .await
        .expect("body")
        .len();
    let rss = peak_rss_mb(pid);

    let pct = |a: f64, b: f64| format!("{:.0} %", 100.0 * a / b);
    println!(
        "\n{backend}, wrk -t1 -c16 -d{DURATION} (release build, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| path | requests/s | p50 | p99 | compared with |");
    println!("| --- | --- | --- | --- | --- |");
    let row = |what: &str, r: Run, cmp: String| {
        println!("| {what} | {:.0} | {:.2} ms | {:.2} ms | {cmp} |", r.rps, r.p50_ms, r.p99_ms);
    };
    row("upstream directly (nginx)", direct, "the limit".into());
    row("nginx in front, adding an API-key header", nginx_header, pct(nginx_header.rps, direct.rps) + " of direct");
    row(
        "`invoke_url`, API-key connection to the same upstream",
        invoked,
        format!(
            "{} of nginx-with-header; p50 +{:.2} ms over direct",
            pct(invoked.rps, nginx_header.rps),
            invoked.p50_ms - direct.p50_ms
        ),
    );
    row("upstream directly, one request at a time", direct_alone, "-c1".into());
    row(
        "`invoke_url`, one request at a time",
        invoked_alone,
        format!("-c1: p50 +{:.2} ms over the direct call", invoked_alone.p50_ms - direct_alone.p50_ms),
    );
    row("the server's static `/embed.js`", ceiling, "this server's HTTP ceiling".into());
    row("`current_user` (a session read)", session, pct(session.rps, ceiling.rps) + " of the ceiling");
    row("`app_connections`, demo workspace", panel_small, pct(panel_small.rps, ceiling.rps) + " of the ceiling");
    row(
        "`app_connections`, demo workspace, compressed as a browser accepts (brotli)",
        panel_br,
        pct(panel_br.rps, panel_small.rps) + " of the uncompressed answer's",
    );
    row(
        "`app_connections`, 10 000 connections in the workspace",
        panel_10k,
        format!(
            "{} of the ceiling; {} of the demo workspace's",
            pct(panel_10k.rps, ceiling.rps),
            pct(panel_10k.rps, panel_small.rps)
        ),
    );
    row(
        "Microservices first page (`connections_page`), 100 000 connections, one request at a time",
        page,
        format!("answer {:.1} KB", page_bytes as f64 / 1000.0),
    );
    println!("server peak RSS: {rss:.0} MB");
    let steps: Vec<String> = peaks.iter().map(|(what, mb)| format!("{what} {mb:.0}")).collect();
    println!("server peak RSS after each row (MB): {}", steps.join(", "));
    // TERM stops nginx's workers too (a KILL would leave them running).
    let _ = Command::new("kill").args(["-TERM", &nginx.id().to_string()]).status();
    let _ = nginx.wait();
}
