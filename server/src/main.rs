#![recursion_limit = "512"]
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = app::ssr::settings::Settings::parse();
    server::telemetry::init(settings.log_format);
    tracing::info!(?settings, "starting");
    let listen = settings.listen;
    let built = server::build(settings).await.inspect_err(|e| tracing::error!("{e:#}"))?;
    let router = server::router(built);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    server::serve(listener, router).await?;
    Ok(())
}
