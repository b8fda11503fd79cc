//! Live mode: the running application, with the settings icon beside the user's name that opens
//! the Connections slider (R2.3).

use crate::applications::get_application;
use crate::components::dialog::SlideOver;
use crate::components::icons::{Glyph, Icon};
use crate::components::panel::ConnectionsList;
use crate::components::runtime::ComponentView;
use crate::components::{ClientOnly, ErrorMessage, RequireUser, SignOut, Skeleton};
use crate::domain::Environment;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn LivePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let app = move || params.read().get("app").unwrap_or_default();
    view! {
        <RequireUser children=move |user| {
            let view_res = Resource::new(app, get_application);
            let menu_open = RwSignal::new(false);
            let slider_open = RwSignal::new(false);
            let user_name = user.name.clone();
            view! {
                <Suspense fallback=|| view! { <Skeleton/> }>
                    {move || {
                        let user_name = user_name.clone();
                        Suspend::new(async move {
                            match view_res.await {
                                Err(e) => view! { <main class="page"><ErrorMessage error=e/><a href="/">"Back to applications"</a></main> }.into_any(),
                                Ok(v) => {
                                    let link = v.app.link_name.clone();
                                    view! {
                                        <div class=format!("live theme-{}", v.app.theme)>
                                            <header class="app-header">
                                                <a href="/" class="brand" aria-label="All applications"><Icon glyph=Glyph::Home/></a>
                                                <h1>{v.app.name.clone()}</h1>
                                                <div class="user-area">
                                                    <span class="user-name">{user_name.clone()}</span>
                                                    <button
                                                        type="button"
                                                        class="icon-button"
                                                        aria-label="Settings"
                                                        aria-haspopup="menu"
                                                        aria-expanded=move || menu_open.get().to_string()
                                                        on:click=move |_| menu_open.update(|o| *o = !*o)
                                                    ><Icon glyph=Glyph::Settings/></button>
                                                    <Show when=move || menu_open.get()>
                                                        <div class="menu" role="menu" aria-label="Settings">
                                                            <button type="button" role="menuitem" on:click=move |_| {
                                                                menu_open.set(false);
                                                                slider_open.set(true);
                                                            }>"Connections"</button>
                                                            <SignOut/>
                                                        </div>
                                                    </Show>
                                                </div>
                                            </header>
                                            <main class="page">
                                                <nav aria-label="Components">
                                                    <ul class="components">
                                                        {v.components.iter().map(|c| view! {
                                                            <li><span class="kind">{c.kind.label()}</span> " " <a href=format!("/app/{}?component={}", link, c.link_name)>{c.name.clone()}</a></li>
                                                        }).collect_view()}
                                                    </ul>
                                                </nav>
                                                // The opened component renders in the browser only: its answer may be
                                                // an authorization prompt that opens a dialog, with nothing to hydrate.
                                                {
                                                    let link = link.clone();
                                                    view! {
                                                        <ClientOnly fallback=|| ()>
                                                            {
                                                                let link = link.clone();
                                                                move || query.read().get("component").map(|c| view! { <ComponentView app=link.clone() component=c/> })
                                                            }
                                                        </ClientOnly>
                                                    }
                                                }
                                            </main>
                                            <Show when=move || slider_open.get()>
                                                {
                                                    let link = link.clone();
                                                    view! {
                                                        <SlideOver title="Connections" close_label="Close connections" on_close=move |_| slider_open.set(false)>
                                                            <ConnectionsList app=link.clone() component=None environment=Environment::Production/>
                                                        </SlideOver>
                                                    }
                                                }
                                            </Show>
                                        </div>
                                    }.into_any()
                                }
                            }
                        })
                    }}
                </Suspense>
            }
        }/>
    }
}
