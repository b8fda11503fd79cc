use crate::auth::is_local_path;
use crate::components::sign_in::SignInForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next =
        Signal::derive(move || query.read().get("next").filter(|n| is_local_path(n)).unwrap_or_else(|| "/".into()));
    view! {
        <main class="page narrow">
            <h1>"Sign in"</h1>
            <SignInForm next=next/>
        </main>
    }
}
