#![recursion_limit = "512"]
//! The browser entry point: hydrates the server-rendered page once the lazy chunks of its route
//! have loaded, then marks the page interactive.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    app::install_panic_banner();
    // As `leptos::mount::hydrate_lazy`, but the page is marked interactive only when the route's
    // own view (in its lazily loaded chunk) is hydrated, not when the shell around it is.
    wasm_bindgen_futures::spawn_local(async {
        if let Some(body) = leptos::prelude::document().body() {
            leptos::mount::hydrate_from_async(body, app::App).await.forget();
            app::mark_hydrated();
        }
    });
}
