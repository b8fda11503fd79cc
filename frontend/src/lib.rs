#![recursion_limit = "512"]
//! The browser entry point: hydrates the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    app::install_panic_banner();
    leptos::mount::hydrate_body(app::App);
}
