//! The routed pages (see `crate::App`); widgets they share live in `crate::components`.
//!
//! Each page is a lazy route: `cargo leptos build --split` moves its code (and what only it uses)
//! out of the first download into a chunk of its own, fetched when the page is first shown. The
//! server names the chunks the page it renders needs, so the browser fetches them beside the main
//! module instead of after it, and hydration waits for them.

pub mod api_keys;
pub mod connection;
pub mod connection_manage;
pub mod create;
pub mod custom_connector;
pub mod edit;
pub mod embed;
pub mod home;
pub mod live;
pub mod login;
pub mod microservices;
pub mod operations;
pub mod promotion;
pub mod records;
pub mod webhooks;

use leptos::prelude::*;

/// One lazy route per page component (a component without props). `data()` loads nothing: each
/// page starts its own resources, which the server has already resolved into the HTML.
macro_rules! lazy_pages {
    ($($route:ident => $page:path),* $(,)?) => {$(
        #[doc = concat!("The lazy route of [`", stringify!($page), "`].")]
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_route: Self) -> AnyView {
                $page().into_any()
            }
        }
    )*};
}

lazy_pages! {
    HomeRoute => home::HomePage,
    LoginRoute => login::LoginPage,
    LiveRoute => live::LivePage,
    EditRoute => edit::EditPage,
    RecordsRoute => records::FormRecordsPage,
    MicroservicesRoute => microservices::MicroservicesPage,
    CreateConnectionRoute => create::CreateConnectionPage,
    ConnectionRoute => connection::ConnectionPage,
    CustomConnectorRoute => custom_connector::CustomConnectorPage,
    EditCustomConnectorRoute => custom_connector::EditCustomConnectorPage,
    PromotionRoute => promotion::PromotionPage,
    OperationsRoute => operations::OperationsPage,
    ApiKeysRoute => api_keys::ApiKeysPage,
    WebhooksRoute => webhooks::WebhooksPage,
    EmbedRoute => embed::EmbedPage,
}
