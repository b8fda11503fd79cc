//! The real `server` binary as a child OS process on a test's database: for tests that kill a
//! server mid-flight (`kill -9`) or need two processes on one database.
#![allow(dead_code)]

use app::ssr::settings::Settings;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server process; dropping it kills it.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
    pub log: std::path::PathBuf,
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

impl ServerProcess {
    /// Starts the binary with `settings`' database, key, sandbox and allowlist, plus `extra`
    /// environment (e.g. `SYNC_STALE_SECS`), and waits for `/healthz`.
    pub async fn start(settings: &Settings, name: &str, extra: &[(&str, &str)]) -> ServerProcess {
        let addr = free_addr();
        let log = settings.data_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", settings.database_url())
            .env("DATA_DIR", &settings.data_dir)
            .env("CONNECTIONS_ENCRYPTION_KEY", settings.encryption_key.clone().expect("a test key"))
            .env("SANDBOX_URL", &settings.sandbox_url)
            .env("OUTBOUND_ALLOWLIST", settings.outbound_allowlist.join(","))
            .env("LISTEN_ADDR", addr.to_string())
            .env("PUBLIC_URL", format!("http://{addr}"))
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::from(out.try_clone().expect("log file")))
            .stderr(Stdio::from(out));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the server binary");
        let me = ServerProcess { addr, child, log };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await {
                if r.status().is_success() {
                    return me;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server process did not start:\n{}", me.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
