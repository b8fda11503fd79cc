//! `/embed/:app`: the connections panel alone, for an iframe on an allowlisted site (see
//! `crate::embed`). Authorize, Switch and Revoke post `connections.*` events to the parent
//! window, addressed to this server's origin and the allowlisted origins only.

use crate::components::embed_events::EmbedEvents;
use crate::components::panel::ConnectionsList;
use crate::components::sign_in::SignInForm;
use crate::components::{session, ClientOnly, ErrorMessage, Skeleton};
use crate::domain::Environment;
use crate::embed::embed_settings;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

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
            <Suspense fallback=|| view! { <Skeleton/> }>
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
                                <ClientOnly fallback=|| view! { <Skeleton label="Loading connections…"/> }>
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
