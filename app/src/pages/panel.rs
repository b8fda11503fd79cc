//! The connections panel: the live-mode slider and the builder's Connections tab.

use super::authorize::{AuthorizeDialog, Target};
use super::ErrorMessage;
use crate::connections::{app_connections, ConnectionEntry, Status};
use crate::domain::{ConnectionType, Environment};
use crate::policy::Decision;
use leptos::prelude::*;

/// The icon for a connection type, with an accessible name.
#[component]
pub fn TypeIcon(kind: ConnectionType) -> impl IntoView {
    let glyph = match kind {
        ConnectionType::Admin => "🛡",
        ConnectionType::System => "⚙",
        ConnectionType::LoggedInUser => "👤",
    };
    view! {
        <span class=format!("type-icon type-{}", kind.as_str()) role="img" aria-label=kind.label() title=kind.label()>
            {glyph}
        </span>
    }
}

/// Lists the connections of `app` (or of one of its components) the caller may see.
#[component]
pub fn ConnectionsList(app: String, component: Option<String>, environment: Environment) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let dialog = RwSignal::new(None::<Target>);
    let entries = Resource::new(
        move || (app.clone(), component.clone(), version.get()),
        move |(app, component, _)| app_connections(app, component, environment),
    );
    provide_context(PanelCx { dialog, environment });
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading connections…"</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No connections are used here."</p> }.into_any(),
                    Ok(list) => {
                        let (installed, own): (Vec<_>, Vec<_>) = list.into_iter().partition(|c| c.installed_from.is_some());
                        view! {
                            <ul class="connections" aria-label="Connections used">
                                {own.into_iter().map(|c| view! { <ConnectionRow entry=c/> }).collect_view()}
                            </ul>
                            {(!installed.is_empty()).then(|| view! {
                                <h3>"Installed Connections"</h3>
                                <ul class="connections" aria-label="Installed Connections">
                                    {installed.into_iter().map(|c| view! { <ConnectionRow entry=c/> }).collect_view()}
                                </ul>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
        {move || dialog.get().map(|t| view! {
            <AuthorizeDialog target=t on_done=move |_| version.update(|v| *v += 1) on_close=move |_| dialog.set(None)/>
        })}
    }
}

/// Lets a row open the authorization dialog of its list.
#[derive(Clone, Copy)]
struct PanelCx {
    dialog: RwSignal<Option<Target>>,
    environment: Environment,
}

#[component]
fn ConnectionRow(entry: ConnectionEntry) -> impl IntoView {
    let connected = entry.status == Status::Connected;
    let cx = expect_context::<PanelCx>();
    let target = Target {
        connection_id: entry.id,
        display_name: entry.display_name.clone(),
        auth_type: entry.auth_type,
        same_for_all_envs: entry.same_for_all_envs,
        username_label: entry.username_label.clone(),
        password_label: entry.password_label.clone(),
        environments: vec![cx.environment],
        replace: false,
    };
    let action = match (connected, entry.authorize) {
        (true, _) => None,
        (false, Decision::Allowed | Decision::Prompt) => Some(
            view! {
                <button type="button" class="primary" aria-label=format!("Authorize {}", entry.display_name)
                    on:click=move |_| cx.dialog.set(Some(target.clone()))>"Authorize"</button>
            }
            .into_any(),
        ),
        (false, Decision::ContactAdmin(who)) => Some(view! { <p class="notice">{who.message()}</p> }.into_any()),
        (false, Decision::Denied) => None,
    };
    view! {
        <li class="connection" aria-label=entry.display_name.clone()>
            <TypeIcon kind=entry.conn_type/>
            <div class="details">
                <strong class="service">{entry.service_name.clone()}</strong>
                <span class="name">{entry.display_name.clone()}</span>
                <span class="account">{entry.account_name.clone().unwrap_or_else(|| "No authorized account".into())}</span>
            </div>
            <span class=if connected { "status ok" } else { "status off" }>{entry.status.label()}</span>
            {action}
        </li>
    }
}
