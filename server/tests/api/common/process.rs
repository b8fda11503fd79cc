//! The real server binary as a child OS process on the same database as a [`TestApp`]: a
//! replica that can be killed with SIGKILL mid-request.
#![allow(dead_code)]

use super::TestApp;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `server` process. Dropping it kills the process.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `target/.../server` with `app`'s database, encryption key, data directory and
    /// sandbox settings on a free port, and waits for its "listening on" line. The database is
    /// already migrated and seeded by `app`. Secrets go through the environment, not argv.
    pub async fn start(app: &TestApp) -> ServerProcess {
        Self::start_with(app, &[]).await
    }

    /// [`ServerProcess::start`] with extra environment (e.g. `SYNC_STALE_SECS`).
    pub async fn start_with(app: &TestApp, env: &[(&str, &str)]) -> ServerProcess {
        let s = &app.settings;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.current_dir(&s.data_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,sqlx=warn,tower_sessions=warn,leptos_axum=warn")
            .env("DATABASE_URL", s.database_url())
            .env("CONNECTIONS_ENCRYPTION_KEY", s.encryption_key.as_deref().expect("the test app has a key"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
            .arg(&s.data_dir)
            .args(["--sandbox-url", &s.sandbox_url])
            .args(["--oauth-window-secs", &s.oauth_window_secs.to_string()]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if !s.outbound_allowlist.is_empty() {
            cmd.args(["--outbound-allowlist", &s.outbound_allowlist.join(",")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server binary");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let mut tx = Some(tx);
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split(|c: char| c == '"' || c.is_whitespace()).next().unwrap_or_default();
                        if let (Ok(addr), Some(tx)) = (addr.parse(), tx.take()) {
                            let _ = tx.send(addr);
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!("the server process did not start:\n{}", log.lock().unwrap().join("\n")),
        };
        ServerProcess { addr, child, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `kill -9`: no graceful shutdown, nothing after this line runs in the process.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM (a graceful shutdown) and returns at once.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the process is running");
        let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(sent.success(), "SIGTERM to {pid}");
    }

    /// Waits for the process to exit (at most 30 s).
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not exit:\n{}", self.log()))
            .expect("wait")
    }

    /// Everything the process logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}
