//! The connections panel: the live-mode slider and the builder's Connections tab.

use super::authorize::{AuthorizeDialog, Target};
use super::datasources::AssociatedDatasources;
use super::embed_events::{emit, EmbedEvents};
use super::icons::{Glyph, Icon};
use super::panel_details::{contact_notice, EntryDetails};
use super::{toast, ErrorMessage, Skeleton};
use crate::authorizations::RenameAccount;
use crate::connections::{app_connections, ConnectionEntry, Status};
use crate::domain::{ConnectionType, DisplayName, Environment};
use crate::policy::Decision;
use leptos::prelude::*;

/// The icon for a connection type, with an accessible name. Inline SVG rather than emoji, which
/// many systems (Debian's Chromium among them) draw as empty boxes.
#[component]
pub fn TypeIcon(kind: ConnectionType) -> impl IntoView {
    let shape = match kind {
        ConnectionType::Admin => view! { <path d="M12 2 4 5v6c0 5.1 3.4 9.4 8 11 4.6-1.6 8-5.9 8-11V5z"/> }.into_any(),
        ConnectionType::System => view! {
            <circle cx="12" cy="12" r="7.5" fill="none" stroke="currentColor" stroke-width="4" stroke-dasharray="2.95 2.94"/>
            <circle cx="12" cy="12" r="6" fill="none" stroke="currentColor" stroke-width="3"/>
        }
        .into_any(),
        ConnectionType::LoggedInUser => view! {
            <circle cx="12" cy="7.5" r="4.5"/>
            <path d="M3.5 22c0-5 3.8-8 8.5-8s8.5 3 8.5 8z"/>
        }
        .into_any(),
    };
    view! {
        <span class=format!("type-icon type-{}", kind.as_str()) role="img" aria-label=kind.label() title=kind.label()>
            <svg viewBox="0 0 24 24" width="20" height="20" fill="currentColor" aria-hidden="true" focusable="false">
                {shape}
            </svg>
        </span>
    }
}

/// Lists the connections of `app` (or of one of its components) the caller may see.
#[component]
pub fn ConnectionsList(app: String, component: Option<String>, environment: Environment) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let dialog = RwSignal::new(None::<Target>);
    provide_context(PanelCx { dialog, environment, version });
    let events = use_context::<EmbedEvents>();
    let edit_mode = component.is_some();
    provide_context(PanelApp { app: app.clone(), edit_mode });
    let entries = Resource::new(
        move || (app.clone(), component.clone(), version.get()),
        move |(app, component, _)| app_connections(app, component, environment),
    );
    view! {
        <Transition fallback=|| view! { <Skeleton label="Loading connections…"/> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        // What to do next: builders create one; everyone else learns when one appears.
                        <div class="empty">
                            <p>"No connections are used here."</p>
                            {if edit_mode {
                                view! { <a class="button" href="/microservices/connections/new">"Create a connection"</a> }.into_any()
                            } else {
                                view! { <p class="muted">"When a component of this application uses a connection, it is listed here."</p> }.into_any()
                            }}
                        </div>
                    }.into_any(),
                    Ok(list) => {
                        // Connections the viewer could fix now (reauthorize) that stopped working.
                        let attention: Vec<String> = list
                            .iter()
                            .filter(|c| c.status == Status::NeedsReauthorization && c.authorize == Decision::Allowed)
                            .map(|c| c.display_name.clone())
                            .collect();
                        let banner = (!attention.is_empty()).then(|| view! {
                            <p class="banner warn" role="alert">{format!("Needs your attention: {} stopped working. Reauthorize to fix it.", attention.join(", "))}</p>
                        });
                        let (installed, rest): (Vec<_>, Vec<_>) = list.into_iter().partition(|c| c.installed_from.is_some());
                        let (gateways, own): (Vec<_>, Vec<_>) = rest.into_iter().partition(|c| c.payment_gateway);
                        let section = |title: &'static str, entries: Vec<ConnectionEntry>| (!entries.is_empty()).then(|| view! {
                            <h3>{title}</h3>
                            <ul class="connections" aria-label=title>
                                {entries.into_iter().map(|c| view! { <ConnectionRow entry=c/> }).collect_view()}
                            </ul>
                        });
                        view! {
                            {banner}
                            <ul class="connections" aria-label="Connections used">
                                {own.into_iter().map(|c| view! { <ConnectionRow entry=c/> }).collect_view()}
                            </ul>
                            {section("Payment gateways", gateways)}
                            {section("Installed Connections", installed)}
                        }.into_any()
                    }
                }
            })}
        </Transition>
        {move || dialog.get().map(|t| {
            let kind = if t.replace { "connections.switched" } else { "connections.authorized" };
            let (link, events) = (t.link_name.clone(), events.clone());
            view! {
                <AuthorizeDialog target=t on_done=move |_| {
                    version.update(|v| *v += 1);
                    emit(&events, kind, &link, environment);
                } on_close=move |_| dialog.set(None)/>
            }
        })}
    }
}

/// Lets a row open the authorization dialog of its list.
#[derive(Clone, Copy)]
pub(crate) struct PanelCx {
    pub(crate) dialog: RwSignal<Option<Target>>,
    pub(crate) environment: Environment,
    pub(crate) version: RwSignal<u32>,
}

/// The application whose panel this is, and whether it is the builder's tab (references then
/// link to the builder).
#[derive(Clone)]
pub(crate) struct PanelApp {
    pub(crate) app: String,
    pub(crate) edit_mode: bool,
}

#[component]
fn ConnectionRow(entry: ConnectionEntry) -> impl IntoView {
    let connected = entry.status == Status::Connected;
    let cx = expect_context::<PanelCx>();
    let panel_app = expect_context::<PanelApp>().app;
    let target = Target::for_entry(&entry, cx.environment, false);
    let action = match (connected, entry.authorize) {
        (true, _) => None,
        (false, Decision::Allowed | Decision::Prompt) => Some(
            view! {
                <button type="button" class="primary" aria-label=format!("Authorize {}", entry.display_name)
                    on:click=move |_| cx.dialog.set(Some(target.clone()))>"Authorize"</button>
            }
            .into_any(),
        ),
        (false, Decision::ContactAdmin(who)) => Some(
            view! { <p class="notice" role="note">{contact_notice(entry.conn_type, who, &entry.display_name)}</p> }
                .into_any(),
        ),
        (false, Decision::Denied) => None,
    };
    view! {
        <li class="connection" aria-label=entry.display_name.clone()>
            <TypeIcon kind=entry.conn_type/>
            <div class="details">
                <strong class="name">{entry.display_name.clone()}</strong>
                <span class="meta">
                    // The icon's name, visible (assistive technology has it from the icon).
                    <span class="type-text" aria-hidden="true">{entry.conn_type.short_label()}</span>
                    " · " <span class="service">{entry.service_name.clone()}</span>
                </span>
                <span class="account">{entry.account_name.clone().unwrap_or_else(|| "No authorized account".into())}</span>
            </div>
            <span class=if connected { "status ok" } else { "status off" }>{entry.status.describe(entry.status_reason.as_deref())}</span>
            {(connected && matches!(entry.authorize, Decision::Allowed | Decision::Prompt)).then(|| view! {
                <AccountName connection_id=entry.id display_name=entry.display_name.clone() current=entry.account_name.clone().unwrap_or_default()/>
            })}
            {action}
            <EntryDetails entry=entry.clone()/>
            <AssociatedDatasources
                app=panel_app
                connection_id=entry.id
                connection_link=entry.link_name.clone()
                environment=cx.environment
            />
        </li>
    }
}

/// The authorized account's name, editable in place with the edit icon: the field takes the
/// focus, is checked as it is typed (the rule the server applies), Esc or Cancel give up, and
/// a saved name is confirmed by a toast.
#[component]
fn AccountName(connection_id: i64, display_name: String, current: String) -> impl IntoView {
    let cx = expect_context::<PanelCx>();
    let rename = ServerAction::<RenameAccount>::new();
    let editing = RwSignal::new(false);
    let value = RwSignal::new(current.clone());
    let input = NodeRef::<leptos::html::Input>::new();
    let opener = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| match rename.value().get() {
        Some(Ok(saved)) => {
            editing.set(false);
            toast::success(format!("Account renamed to {saved}."));
            cx.version.update(|v| *v += 1);
        }
        Some(Err(e)) => toast::could_not("rename the account", &e),
        None => {}
    });
    let check = move || DisplayName::parse("account_name", &value.get()).err().map(|e| e.to_string());
    // Both stay in the page (shown or hidden), so focus can move between them.
    let start = move || {
        editing.set(true);
        request_animation_frame(move || {
            if let Some(el) = input.get_untracked() {
                let _ = el.focus();
                el.select();
            }
        });
    };
    let cancel = move || {
        value.set(current.clone());
        rename.value().set(None);
        editing.set(false);
        request_animation_frame(move || {
            if let Some(el) = opener.get_untracked() {
                let _ = el.focus();
            }
        });
    };
    let id = format!("account-name-{connection_id}");
    let (for_id, error_id) = (id.clone(), format!("{id}-error"));
    let label = format!("Edit the account name of {display_name}");
    view! {
        <div class="account-edit">
            <button type="button" class="icon-button" node_ref=opener aria-label=label hidden=move || editing.get()
                on:click=move |_| start()>
                <Icon glyph=Glyph::Pencil size=18/>
            </button>
            <form class="rename" hidden=move || !editing.get() aria-label=format!("Rename the account of {display_name}")
                on:submit=move |ev| {
                    ev.prevent_default();
                    if check().is_none() {
                        rename.dispatch(RenameAccount { connection_id, environment: cx.environment, name: value.get_untracked() });
                    }
                }
                on:keydown={
                    let cancel = cancel.clone();
                    move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" {
                        // Esc gives up the edit and nothing else (not the slide-over).
                        ev.stop_propagation();
                        cancel();
                    }
                }>
                <label for=for_id>"Authorized account name"</label>
                <input id=id node_ref=input bind:value=value maxlength="50"
                    aria-invalid=move || check().is_some().to_string() aria-describedby=error_id.clone()/>
                <div class="row">
                    <button type="submit" class="primary" disabled=move || check().is_some() || rename.pending().get()>"Save"</button>
                    <button type="button" on:click={
                        let cancel = cancel.clone();
                        move |_| cancel()
                    }>"Cancel"</button>
                </div>
                <p class="error" id=error_id role="alert">
                    {move || check().or_else(|| rename.value().get().and_then(|r| r.err()).map(|e| e.to_string()))}
                </p>
            </form>
        </div>
    }
}
