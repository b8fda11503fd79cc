//! The builder's canvas for a component that is not a script, drawn as what it is: a form as
//! its users see it (its integration fields as lookups, what runs on load), a page's panels and a
//! report's reads as cards naming the connection each goes over, and the connections the
//! component uses, with a button opening the Integrations panel.

use super::panel::TypeIcon;
use super::{ErrorMessage, Skeleton};
use crate::domain::ComponentKind;
use crate::outline::{get_component_outline, ComponentOutline, OutlinePart, UsedConnection};
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
    let (fields, others): (Vec<OutlinePart>, Vec<OutlinePart>) =
        parts.into_iter().partition(|p| matches!(p, OutlinePart::Field { .. } | OutlinePart::OnLoad { .. }));
    let used = StoredValue::new(connections.clone());
    let is_form = kind == ComponentKind::Form;
    view! {
        <section class="component-canvas card" aria-label="Component outline">
            <p class="muted">{kind.label()}</p>
            <h2>{name.clone()}</h2>
            {is_form.then(|| view! {
                <div class="canvas-form" role="group" aria-label=format!("{name} as users see it")>
                    {fields.into_iter().map(|p| view! { <FormPart app=app.clone() part=p/> }).collect_view()}
                    <span class="canvas-submit" aria-hidden="true">"Submit"</span>
                </div>
            })}
            {(!others.is_empty()).then(|| view! {
                <ul class="canvas-parts">
                    {others.into_iter().map(|p| view! { <OtherPart part=p used/> }).collect_view()}
                </ul>
            })}
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

/// A form's trigger or field, drawn inside the form's preview.
#[component]
fn FormPart(app: String, part: OutlinePart) -> impl IntoView {
    match part {
        OutlinePart::OnLoad { workflow, name: Some(name) } => view! {
            <p class="canvas-trigger">"On load, runs the workflow "
                <a href=format!("/app/{app}/edit?component={workflow}")>{name}</a>
            </p>
        }
        .into_any(),
        OutlinePart::OnLoad { workflow, name: None } => view! {
            <p class="canvas-trigger error">"On load, runs the workflow "<code>{workflow}</code>", which is missing"</p>
        }
        .into_any(),
        OutlinePart::Field { field, datasource, module } => view! {
            <div class="canvas-field">
                <span class="canvas-label">{field}</span>
                <span class="canvas-input">"Choose from "{datasource.clone()}</span>
                <span class="muted canvas-caption">"Integration field · "{datasource}" ("{module}")"</span>
            </div>
        }
        .into_any(),
        OutlinePart::Call { .. } | OutlinePart::Note { .. } => ().into_any(),
    }
}

/// A call the component makes (a page's panel, a report's read, a step on load) as a card with
/// the connection it goes over, or a note.
#[component]
fn OtherPart(part: OutlinePart, used: StoredValue<Vec<UsedConnection>>) -> impl IntoView {
    match part {
        OutlinePart::Call { label, title, method, connection, url } => {
            let over = used.with_value(|u| u.iter().find(|c| c.link_name == connection).cloned());
            view! {
                <li class="canvas-call">
                    <p class="muted canvas-caption">{label}</p>
                    <h3>{title}</h3>
                    <p><span class="canvas-method">{method}</span>" "<code class="canvas-url">{url}</code></p>
                    <p class="canvas-over">"Over "{match over {
                        Some(c) => view! { <TypeIcon kind=c.conn_type/>" "{c.display_name} }.into_any(),
                        None => view! { <code>{connection}</code> }.into_any(),
                    }}</p>
                </li>
            }
            .into_any()
        }
        OutlinePart::Note { label, detail } => {
            view! { <li class="canvas-note"><strong>{label}</strong>" "{detail}</li> }.into_any()
        }
        OutlinePart::OnLoad { .. } | OutlinePart::Field { .. } => ().into_any(),
    }
}
