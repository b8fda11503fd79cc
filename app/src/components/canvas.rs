//! The builder's canvas for a component that is not a script: what it does (a form's on-load
//! workflow and integration fields, a page's panels, a report's module) and the connections it
//! uses, each opening the Integrations panel.

use super::panel::TypeIcon;
use super::{ErrorMessage, Skeleton};
use crate::outline::{get_component_outline, ComponentOutline};
use leptos::prelude::*;

#[component]
pub fn ComponentCanvas(app: String, component: String, on_integrations: Callback<()>) -> impl IntoView {
    // Loaded in the browser, like the script editor: the builder's own view.
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let target = StoredValue::new((app, component));
    let outline = LocalResource::new(move || {
        let (app, component) = target.get_value();
        get_component_outline(app, component)
    });
    view! {
        <Show when=move || mounted.get() fallback=|| view! { <Skeleton label="Loading the component…"/> }>
            <Transition fallback=|| view! { <Skeleton label="Loading the component…"/> }>
                {move || Suspend::new(async move {
                    let app = target.get_value().0;
                    match outline.await {
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                        Ok(o) => view! { <Outline app outline=o on_integrations/> }.into_any(),
                    }
                })}
            </Transition>
        </Show>
    }
}

#[component]
fn Outline(app: String, outline: ComponentOutline, on_integrations: Callback<()>) -> impl IntoView {
    let ComponentOutline { kind, name, parts, connections } = outline;
    view! {
        <section class="component-canvas card" aria-label="Component outline">
            <p class="muted">{kind.label()}</p>
            <h2>{name}</h2>
            <dl class="facts">
                {parts.into_iter().map(|p| view! {
                    <dt>{p.label}</dt>
                    <dd>{match p.component {
                        Some((name, link)) => view! {
                            {p.detail}" "<a href=format!("/app/{app}/edit?component={link}")>{name}</a>
                        }.into_any(),
                        None => view! { {p.detail} }.into_any(),
                    }}</dd>
                }).collect_view()}
            </dl>
            <h3>"Connections used"</h3>
            {if connections.is_empty() {
                view! { <p class="muted">"None."</p> }.into_any()
            } else {
                view! {
                    <ul class="used-connections" aria-label="Connections used">
                        {connections.into_iter().map(|c| view! {
                            <li><TypeIcon kind=c.conn_type/>" "{c.display_name}" "<code>{c.link_name}</code></li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <button type="button" on:click=move |_| on_integrations.run(())>"Show the connections panel"</button>
        </section>
    }
}
