//! `/embed/:app`: the connections panel alone, for an iframe on an allowlisted site (see
//! `crate::embed`). Authorize, Switch and Revoke post `connections.*` events to the parent
//! window, addressed to this server's origin and the allowlisted origins only.

use super::login::SignInForm;
use super::panel::ConnectionsList;
use super::{session, ClientOnly, ErrorMessage};
use crate::domain::Environment;
use crate::embed::embed_settings;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Posts panel events to the embedding page; present only inside `/embed/:app`.
#[derive(Clone, Debug)]
pub struct EmbedEvents {
    pub app: String,
    pub origins: Vec<String>,
}

/// The message posted for one event (the documented schema, see README "Embedding").
pub fn event_json(kind: &str, app: &str, connection: &str, environment: Environment, at: &str) -> String {
    serde_json::json!({
        "type": kind,
        "app": app,
        "connection": connection,
        "environment": environment.as_str(),
        "at": at,
    })
    .to_string()
}

impl EmbedEvents {
    #[cfg(feature = "hydrate")]
    pub fn emit(&self, kind: &str, connection: &str, environment: Environment) {
        use leptos::web_sys::js_sys;
        let at = js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default();
        let Ok(message) = js_sys::JSON::parse(&event_json(kind, &self.app, connection, environment, &at)) else {
            return;
        };
        let Ok(Some(parent)) = window().parent() else { return };
        let own = window().location().origin().unwrap_or_default();
        for origin in std::iter::once(&own).chain(self.origins.iter()) {
            // A target origin other than the parent's is dropped by the browser.
            let _ = parent.post_message(&message, origin);
        }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn emit(&self, _kind: &str, _connection: &str, _environment: Environment) {}
}

/// Emits `kind` for `connection` when the panel runs inside the embed page.
pub fn emit(events: &Option<EmbedEvents>, kind: &str, connection: &str, environment: Environment) {
    if let Some(e) = events {
        e.emit(kind, connection, environment);
    }
}

#[component]
pub fn EmbedPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let app = move || params.read().get("app").unwrap_or_default();
    let cx = session();
    // Loaded again after signing in inside the frame (the page itself stays).
    let settings = Resource::new(move || (app(), cx.login.version().get()), |(app, _)| embed_settings(app));
    let here = Signal::derive(move || {
        // Back to this page after signing in (a link name, so nothing to escape).
        let component = query.read().get("component").and_then(|c| crate::domain::LinkName::parse(&c).ok());
        let path = format!("/embed/{}", app());
        match component {
            Some(c) => format!("{path}?component={}", c.as_str()),
            None => path,
        }
    });
    view! {
        <main class="embed" aria-label="Connections">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match cx.user.await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            // Signed in here, inside the frame: on another site the browser
                            // keeps this frame's session apart from the top-level one.
                            return view! {
                                <p>"Sign in to manage your connections."</p>
                                <SignInForm next=here/>
                            }.into_any();
                        }
                        Err(e) => return view! { <ErrorMessage error=e/> }.into_any(),
                    }
                    match settings.await {
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                        Ok(s) => {
                            provide_context(EmbedEvents { app: s.app.clone(), origins: s.origins });
                            let component = query.read_untracked().get("component");
                            // Rendered by the browser: the panel's statuses and sync badges can
                            // change between the server's render and hydration in the frame.
                            view! {
                                <h1 class="embed-title">"Connections"</h1>
                                <ClientOnly fallback=|| view! { <p class="loading">"Loading connections…"</p> }>
                                    <ConnectionsList app=s.app.clone() component=component.clone() environment=Environment::Production/>
                                </ClientOnly>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </main>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_schema() {
        let v: serde_json::Value = serde_json::from_str(&super::event_json(
            "connections.revoked",
            "sales_hub",
            "sales_crm",
            crate::domain::Environment::Production,
            "2026-11-22T05:00:00.000Z",
        ))
        .unwrap();
        assert_eq!(v["type"], "connections.revoked");
        assert_eq!(v["app"], "sales_hub");
        assert_eq!(v["connection"], "sales_crm");
        assert_eq!(v["environment"], "production");
        assert_eq!(v.as_object().unwrap().len(), 5);
    }
}

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
