//! A panel entry's details, shown when the entry is clicked (R2.7, R4.4, R4.3): permissions,
//! references (each a link to the component), Switch (another account or a new one, through the
//! authorization dialog's Reuse / Link New Account) and Revoke.

use super::authorize::Target;
use super::dialog::ConfirmDialog;
use super::embed_events::{emit, EmbedEvents};
use super::panel::{PanelApp, PanelCx};
use super::{toast, ErrorMessage, Skeleton};
use crate::connections::{ConnectionEntry, Status};
use crate::domain::{ComponentKind, ConnectionType};
use crate::policy::Contact;
use crate::references::connection_panel_details;
use crate::revocations::RevokeAuthorization;
use leptos::prelude::*;

/// What the panel tells someone who may not authorize a connection. For a logged-in-user
/// connection that is only the case while it is used in a datasource or schedule without the
/// admin's primary account (R3.5; [`crate::policy::decide`]).
pub fn contact_notice(kind: ConnectionType, who: Contact, connection: &str) -> String {
    match kind {
        ConnectionType::LoggedInUser => format!(
            "You cannot authorize {connection} yet: it is used in a datasource or schedule, and an admin must \
             authorize it and configure its primary account first. Contact your admin."
        ),
        _ => who.message(connection),
    }
}

#[component]
pub fn EntryDetails(entry: ConnectionEntry) -> impl IntoView {
    let cx = expect_context::<PanelCx>();
    let panel = expect_context::<PanelApp>();
    let open = RwSignal::new(false);
    let id = entry.id;
    let name = entry.display_name.clone();
    let authorized = entry.status != Status::NotConnected;
    let app = panel.app.clone();
    let details = Resource::new(
        move || open.get().then(|| app.clone()),
        move |app| async move {
            match app {
                Some(app) => connection_panel_details(app, id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let revoke = ServerAction::<RevokeAuthorization>::new();
    let events = use_context::<EmbedEvents>();
    let embedded = events.is_some();
    let (link, revoked) = (entry.link_name.clone(), entry.display_name.clone());
    Effect::new(move |_| match revoke.value().get() {
        Some(Ok(())) => {
            toast::success(format!("{revoked} revoked."));
            emit(&events, "connections.revoked", &link, cx.environment);
            cx.version.update(|v| *v += 1);
        }
        Some(Err(e)) => {
            toast::could_not(&format!("revoke {revoked}"), &e);
            // Whatever made it fail (revoked elsewhere, say), the list shows how things are now.
            cx.version.update(|v| *v += 1);
        }
        None => {}
    });
    let switch_to = Target::for_entry(&entry, cx.environment, true);
    let (service, shared) = (entry.service_name.clone(), entry.same_for_all_envs);
    let region = format!("{name} details");
    let (app, edit_mode) = (panel.app.clone(), panel.edit_mode);
    let body = move || {
        let name = name.clone();
        let app = app.clone();
        let switch_to = switch_to.clone();
        let service = service.clone();
        Suspend::new(async move {
            match details.await {
                Ok(None) => ().into_any(),
                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                Ok(Some(d)) => {
                    let href = |kind: ComponentKind, link: &str| {
                        // Embedded panels link to live mode (in a new tab) whoever embeds them;
                        // in live mode only components that have a live view are links.
                        if edit_mode && !embedded {
                            Some(format!("/app/{app}/edit?component={link}"))
                        } else {
                            kind.has_live_view().then(|| format!("/app/{app}?component={link}"))
                        }
                    };
                    view! {
                        <h4>"Permissions"</h4>
                        {if d.scopes.is_empty() {
                            view! { <p class="muted">"No specific permissions"</p> }.into_any()
                        } else {
                            view! {
                                <ul aria-label="Permissions" class="scopes">
                                    {d.scopes.iter().map(|s| view! { <li><code>{s.clone()}</code></li> }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                        <h4>"References"</h4>
                        <ul aria-label="References" class="references">
                            {d.references.iter().map(|r| view! {
                                <li><span class="kind">{r.kind.label()}</span>{match href(r.kind, &r.link_name) {
                                    Some(href) => view! { <a href=href target=embedded.then_some("_blank")>{r.name.clone()}</a> }.into_any(),
                                    None => view! { <span>{r.name.clone()}</span> }.into_any(),
                                }}</li>
                            }).collect_view()}
                        </ul>
                        <div class="row">
                            {(authorized && d.may_switch).then(|| view! {
                                <button type="button" aria-label=format!("Switch {name}")
                                    on:click=move |_| cx.dialog.set(Some(switch_to.clone()))>"Switch"</button>
                            })}
                            {(authorized && d.may_revoke).then(|| {
                                let used_by: Vec<String> = d.references.iter().map(|r| format!("{} {}", r.kind.label(), r.name)).collect();
                                let ask = super::revoke_confirmation(&name, &service, cx.environment.label(), shared, &used_by, &d.datasources);
                                let asking = RwSignal::new(false);
                                view! {
                                    <button type="button" class="danger" aria-label=format!("Revoke {name}")
                                        disabled=move || revoke.pending().get()
                                        on:click=move |_| asking.set(true)>"Revoke"</button>
                                    {move || asking.get().then(|| view! {
                                        <ConfirmDialog confirmation=ask.clone() on_close=move |_| asking.set(false)
                                            on_confirm=move |_| {
                                                revoke.dispatch(RevokeAuthorization { connection_id: id, environment: Some(cx.environment) });
                                            }/>
                                    })}
                                }
                            })}
                        </div>
                    }
                    .into_any()
                }
            }
        })
    };
    let label = format!("Details of {}", entry.display_name);
    view! {
        <button type="button" class="link-button details-toggle" aria-label=label
            aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|o| *o = !*o)>
            {move || if open.get() { "Hide details" } else { "Details" }}
        </button>
        {move || open.get().then(|| {
            let body = body.clone();
            view! {
                <section class="entry-details" role="region" aria-label=region.clone()>
                    <Transition fallback=|| view! { <Skeleton/> }>{body}</Transition>
                    {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> })}
                </section>
            }
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::contact_notice;
    use crate::domain::ConnectionType;
    use crate::domain::Role;
    use crate::policy::{decide, Action, Contact, Context, Decision};

    #[test]
    fn users_are_told_why_they_cannot_authorize() {
        // R3.5: a logged-in-user connection in a datasource or schedule, no primary account yet.
        let waiting = Context { used_in_datasource_or_schedule: true, primary_account_configured: false };
        let Decision::ContactAdmin(who) = decide(Role::User, ConnectionType::LoggedInUser, Action::Authorize, waiting)
        else {
            panic!("users must wait for the admin");
        };
        let notice = contact_notice(ConnectionType::LoggedInUser, who, "My CRM");
        assert!(notice.contains("primary account") && notice.contains("You cannot authorize My CRM yet"), "{notice}");
        assert_eq!(
            contact_notice(ConnectionType::Admin, Contact::Admin, "Sales CRM"),
            "Sales CRM is not authorized yet. Contact your admin to authorize it."
        );
    }
}
