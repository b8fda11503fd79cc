use super::ErrorMessage;
use leptos::prelude::*;

/// Edit mode: who may embed this application's connections panel, and the snippet to paste.
/// Loaded when opened (no resource in the server-rendered builder page).
#[component]
pub fn EmbedAllowlistForm(app: String) -> impl IntoView {
    let load = ServerAction::<crate::embed::EmbedSettings>::new();
    let save = ServerAction::<crate::embed::SetEmbedOrigins>::new();
    let open = RwSignal::new(false);
    let value = RwSignal::new(String::new());
    let snippet = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(list)) = load.value().get() {
            value.set(list.origins.join("\n"));
            snippet.set(list.snippet);
        }
    });
    let app_for_load = app.clone();
    view! {
        <section class="embed-settings" aria-label="Embedding">
            <button type="button" aria-expanded=move || open.get().to_string() on:click=move |_| {
                let now = !open.get_untracked();
                open.set(now);
                if now {
                    load.dispatch(crate::embed::EmbedSettings { app: app_for_load.clone() });
                }
            }>"Embed the connections panel"</button>
            <Show when=move || open.get()>
                {move || load.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> })}
                <p>"Paste this line into a page of an allowed site:"</p>
                <pre aria-label="Embed snippet">{move || snippet.get()}</pre>
                <form class="stack" on:submit={
                    let app = app.clone();
                    move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        save.dispatch(crate::embed::SetEmbedOrigins { app: app.clone(), origins: value.get_untracked() });
                    }
                }>
                    <label for="embed-origins">"Sites allowed to embed it (one origin per line, e.g. https://intranet.example.com)"</label>
                    <textarea id="embed-origins" rows="3" prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))></textarea>
                    <button type="submit" class="primary">"Save allowed sites"</button>
                </form>
                {move || save.value().get().map(|r| match r {
                    Ok(list) => view! { <p role="status">{format!("Saved: {} allowed site(s).", list.origins.len())}</p> }.into_any(),
                    Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                })}
            </Show>
        </section>
    }
}
