#![recursion_limit = "512"]
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = app::ssr::settings::Settings::parse();
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
    let router = server::router(built);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    server::serve(listener, router).await?;
    Ok(())
}
