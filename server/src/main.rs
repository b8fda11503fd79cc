#![recursion_limit = "512"]
use clap::{Parser, Subcommand};
use std::io::Write as _;

/// mimalloc rather than glibc's malloc: a request's buffers are allocated on one Tokio worker and
/// often freed on the other, and glibc then locks the first thread's arena (futex waits on every
/// request under load). README, "Why the allocator" under "Hot paths under load", has the figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The settings (flags and environment) and, optionally, a maintenance command instead of serving.
#[derive(Parser)]
#[command(name = "server", about = "The connections manager: web app, server functions and OAuth callbacks.")]
struct Cli {
    #[command(flatten)]
    settings: app::ssr::settings::Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Encryption keys (settings go before the command, or in the environment).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Writes an application's connections as an export document (JSON, never a secret).
    Export {
        /// The workspace: its id or its name.
        #[arg(long)]
        workspace: String,
        /// The application's link name.
        #[arg(long)]
        application: String,
        /// Write the document to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Imports an export document: connections matched by link name, missing ones created
    /// unauthorized; any conflict refuses the whole import (exit status 2), writing nothing.
    Import {
        /// The workspace: its id or its name.
        #[arg(long)]
        workspace: String,
        /// The application that gets access (the document's application when not given).
        #[arg(long)]
        application: Option<String>,
        /// The environment "needs authorizing" is reported for (every environment when not given).
        #[arg(long)]
        environment: Option<String>,
        /// The export document.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Report what the import would do, and every conflict, without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// How many stored values use each key version, per table, and which versions may be dropped.
    Status,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { settings, command } = Cli::parse();
    match command {
        Some(Command::Keys(KeysCommand::Status)) => {
            let status = server::keys_status(&settings).await?;
            // The command's output is the report itself, not a log line.
            write!(std::io::stdout().lock(), "{status}")?;
            return Ok(());
        }
        Some(Command::Export { workspace, application, out }) => {
            let state = server::build(settings).await?.state;
            let json = app::promotion::ssr::export_command(&state, &workspace, &application).await?;
            match out {
                Some(path) => std::fs::write(&path, format!("{json}\n"))?,
                None => writeln!(std::io::stdout().lock(), "{json}")?,
            }
            return Ok(());
        }
        Some(Command::Import { workspace, application, environment, file, dry_run }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("could not read {}: {e}", file.display()))?;
            let environment = environment.as_deref().map(app::domain::Environment::parse).transpose()?;
            let state = server::build(settings).await?.state;
            let app_link = application.unwrap_or_default();
            let import = app::promotion::ssr::Import { app: &app_link, document: &text, environment };
            let plan = app::promotion::ssr::import_command(&state, &workspace, import, dry_run).await?;
            write!(std::io::stdout().lock(), "{plan}")?;
            if !plan.conflicts.is_empty() {
                std::process::exit(2);
            }
            return Ok(());
        }
        None => {}
    }
    server::telemetry::init(settings.log_format);
    tracing::info!(?settings, "starting");
    if !settings.cross_site_cookies() {
        tracing::info!("session cookies are SameSite=Lax: the connections panel can be embedded on this site only (serve over HTTPS with --secure-cookies to embed it elsewhere)");
    }
    let listen = settings.listen;
    if let Some(addr) = server::spawn_metrics_listener(&settings).await? {
        tracing::info!("metrics on http://{addr}/metrics");
    }
    let built = server::build(settings).await.inspect_err(|e| tracing::error!("{e:#}"))?;
    let workers = server::start_workers(&built);
    let state = built.state.clone();
    let router = server::router(built);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    server::serve(listener, router).await?;
    workers.shutdown().await;
    state.operations.flush().await;
    tracing::info!("background workers stopped, operations log written");
    Ok(())
}
