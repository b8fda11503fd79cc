//! The connections manager: Leptos components, routes and `#[server]` functions shared by the
//! server (feature `ssr`) and the browser (feature `hydrate`).
#![recursion_limit = "512"]

#[macro_use]
mod closed_set;

pub mod applications;
pub mod auth;
pub mod authorizations;
pub mod components;
pub mod connections;
pub mod connectors;
pub mod datasources;
pub mod domain;
pub mod embed;
pub mod error;
pub mod format;
pub mod invoke;
pub mod operations;
pub mod outline;
pub mod pages;
pub mod platform;
pub mod policy;
pub mod promotion;
pub mod references;
pub mod revocations;
pub mod runtime;
pub mod scripts;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod sync;
pub mod webhooks;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy};

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                // The stylesheet under its content-hashed name when the build hashed it.
                <HashedStylesheet id="leptos" options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::provide_session();
    components::toast::provide_toasts();

    view! {
        <Title text="Connections"/>
        <Router>
            <Routes fallback=|| view! { <main class="page"><h1>"Page not found"</h1><a href="/">"Go home"</a></main> }>
                <Route path=path!("/") view={Lazy::<pages::HomeRoute>::new()}/>
                <Route path=path!("/login") view={Lazy::<pages::LoginRoute>::new()}/>
                <Route path=path!("/app/:app") view={Lazy::<pages::LiveRoute>::new()}/>
                <Route path=path!("/app/:app/edit") view={Lazy::<pages::EditRoute>::new()}/>
                <Route path=path!("/app/:app/records/:form") view={Lazy::<pages::RecordsRoute>::new()}/>
                <Route path=path!("/microservices") view={Lazy::<pages::MicroservicesRoute>::new()}/>
                <Route path=path!("/microservices/connections/new") view={Lazy::<pages::CreateConnectionRoute>::new()}/>
                <Route path=path!("/microservices/connections/:link") view={Lazy::<pages::ConnectionRoute>::new()}/>
                <Route path=path!("/microservices/connectors/new") view={Lazy::<pages::CustomConnectorRoute>::new()}/>
                <Route path=path!("/microservices/connectors/:id/edit") view={Lazy::<pages::EditCustomConnectorRoute>::new()}/>
                <Route path=path!("/microservices/promotion") view={Lazy::<pages::PromotionRoute>::new()}/>
                <Route path=path!("/operations") view={Lazy::<pages::OperationsRoute>::new()}/>
                <Route path=path!("/settings/api-keys") view={Lazy::<pages::ApiKeysRoute>::new()}/>
                <Route path=path!("/settings/webhooks") view={Lazy::<pages::WebhooksRoute>::new()}/>
                <Route path=path!("/embed/:app") view={Lazy::<pages::EmbedRoute>::new()}/>
            </Routes>
        </Router>
        <components::toast::ToastRegion/>
    }
}

/// Marks the page interactive (`data-hydrated` on `<body>`) once the client has hydrated all of
/// it, the lazily loaded route included: until then buttons look busy and take no click (see
/// `style/main.css`), and end-to-end tests wait for it before typing or clicking.
#[cfg(feature = "hydrate")]
pub fn mark_hydrated() {
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

/// In the browser, a panic leaves the page looking normal with every control dead. This hook
/// logs it (as `console_error_panic_hook` would) and puts a banner on top of the page saying so,
/// with a Reload button.
#[cfg(feature = "hydrate")]
pub fn install_panic_banner() {
    std::panic::set_hook(Box::new(|info| {
        leptos::web_sys::console::error_1(&info.to_string().into());
        let banner = r#"<div class="panic-banner" role="alert">Something went wrong on this page — its buttons may not respond. <button type="button" onclick="location.reload()">Reload</button></div>"#;
        if let Some(body) = leptos::web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            let _ = body.insert_adjacent_html("afterbegin", banner);
        }
    }));
}
