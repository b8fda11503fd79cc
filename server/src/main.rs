#![recursion_limit = "512"]
use clap::{Parser, Subcommand};
use std::io::Write as _;

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
}

#[derive(Subcommand)]
enum KeysCommand {
    /// How many stored values use each key version, per table, and which versions may be dropped.
    Status,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { settings, command } = Cli::parse();
    if let Some(Command::Keys(KeysCommand::Status)) = command {
        let status = server::keys_status(&settings).await?;
        // The command's output is the report itself, not a log line.
        write!(std::io::stdout().lock(), "{status}")?;
        return Ok(());
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
    let router = server::router(built);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    server::serve(listener, router).await?;
    workers.shutdown().await;
    tracing::info!("background workers stopped");
    Ok(())
}
