//! Edit mode: the builder for an application, with the integrations icon in the top-right
//! corner that opens the Connections tab for the component being edited (R2.4).

use crate::applications::get_application;
use crate::components::canvas::ComponentCanvas;
use crate::components::dialog::SlideOver;
use crate::components::embed_settings::EmbedAllowlistForm;
use crate::components::icons::{Glyph, Icon};
use crate::components::panel::ConnectionsList;
use crate::components::script_editor::ScriptEditor;
use crate::components::{ErrorMessage, RequireUser, SignOut, Skeleton};
use crate::domain::{ComponentKind, Environment};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn EditPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let app = move || params.read().get("app").unwrap_or_default();
    view! {
        <RequireUser children=move |user| {
            if !user.role.is_builder() {
                return view! {
                    <main class="page">
                        <h1>"Edit mode"</h1>
                        <p class="error" role="alert">"Only super admins, admins and developers can edit applications."</p>
                        <a href="/">"Back to applications"</a>
                    </main>
                }.into_any();
            }
            let view_res = Resource::new(app, get_application);
            let panel_open = RwSignal::new(false);
            view! {
                <Suspense fallback=|| view! { <Skeleton/> }>
                    {move || Suspend::new(async move {
                        match view_res.await {
                            Err(e) => view! { <main class="page"><ErrorMessage error=e/></main> }.into_any(),
                            Ok(v) => {
                                let link = v.app.link_name.clone();
                                let first = v.components.first().map(|c| c.link_name.clone());
                                let selected = Signal::derive(move || query.read().get("component").or_else(|| first.clone()));
                                let components = v.components.clone();
                                view! {
                                    <div class="builder">
                                        <header class="builder-header">
                                            <a href="/" class="brand" aria-label="All applications"><Icon glyph=Glyph::Home/></a>
                                            <h1>"Builder · " {v.app.name.clone()}</h1>
                                            <a href=format!("/app/{link}")>"Open live mode"</a>
                                            <a href=format!("/microservices/promotion?app={link}")>"Export / import connections"</a>
                                            <SignOut/>
                                            <button
                                                type="button"
                                                class="icon-button integrations"
                                                aria-label="Integrations"
                                                aria-expanded=move || panel_open.get().to_string()
                                                on:click=move |_| panel_open.update(|o| *o = !*o)
                                            ><Icon glyph=Glyph::Integrations/></button>
                                        </header>
                                        <div class="builder-body">
                                            <nav aria-label="Components" class="component-list">
                                                <ul>
                                                    {components.into_iter().map(|c| {
                                                        let href = format!("?component={}", c.link_name);
                                                        let this = c.link_name.clone();
                                                        let current = move || selected.read().as_deref() == Some(this.as_str());
                                                        view! {
                                                            <li>
                                                                <a href=href aria-current=move || current().then_some("page")>
                                                                    <span class="kind">{c.kind.label()}</span> " " {c.name.clone()}
                                                                </a>
                                                            </li>
                                                        }
                                                    }).collect_view()}
                                                </ul>
                                            </nav>
                                            <section class="canvas" aria-label="Component editor">
                                                {
                                                    let (link, kinds) = (link.clone(), v.components.clone());
                                                    move || {
                                                        let chosen = selected.get();
                                                        let kind = chosen.as_ref().and_then(|l| kinds.iter().find(|c| &c.link_name == l)).map(|c| c.kind);
                                                        match (chosen, kind) {
                                                            // Workflows and functions open in the script editor.
                                                            (Some(c), Some(ComponentKind::Workflow | ComponentKind::Function)) => view! {
                                                                <ScriptEditor app=link.clone() component=c on_integrations=Callback::new(move |_| panel_open.set(true))/>
                                                            }.into_any(),
                                                            // The rest show what they do and the connections they use.
                                                            (Some(c), Some(_)) => view! {
                                                                <ComponentCanvas app=link.clone() component=c on_integrations=Callback::new(move |_| panel_open.set(true))/>
                                                            }.into_any(),
                                                            (_, _) => view! { <p class="muted">"Choose a component on the left."</p> }.into_any(),
                                                        }
                                                    }
                                                }
                                                <EmbedAllowlistForm app=link.clone()/>
                                            </section>
                                            <Show when=move || panel_open.get()>
                                                {
                                                    let inner_link = link.clone();
                                                    view! {
                                                <SlideOver title="Integrations" close_label="Close integrations" on_close=move |_| panel_open.set(false)>
                                                    <div role="tablist" aria-label="Integrations">
                                                        <button type="button" role="tab" aria-selected="true">"Connections"</button>
                                                    </div>
                                                    <div role="tabpanel" aria-label="Connections">
                                                        {
                                                            let link = inner_link.clone();
                                                            move || view! { <ConnectionsList app=link.clone() component=selected.get() environment=Environment::Development/> }
                                                        }
                                                    </div>
                                                </SlideOver>
                                                    }
                                                }
                                            </Show>
                                        </div>
                                    </div>
                                }.into_any()
                            }
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}
