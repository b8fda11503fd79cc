//! Connection details (R9.1, R9.2, R6.1
//! authorizations for different environments", "Reauthorize connection").

use crate::components::authorize::{AuthorizeDialog, Target};
use crate::components::dialog::{ConfirmDialog, Confirmation};
use crate::components::icons::{Glyph, Icon};
use crate::components::panel::TypeIcon;
use crate::components::{revoke_confirmation, toast, ErrorMessage, RequireUser, Skeleton, TopNav};
use crate::connections::{connection_usage, get_connection, ConnectionDetails, SetConnectionAccess, Status, UseKind};
use crate::domain::{ApplicationId, ConnectionId, ConnectionType, Environment};
use crate::format::format_ms;
use crate::pages::connection_manage::{ManageActions, UsersAuthorizations};
use crate::policy::Decision;
use crate::revocations::RevokeAuthorization;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn ConnectionPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let link = move || params.read().get("link").unwrap_or_default();
    view! {
        <RequireUser children=move |user| {
            let version = RwSignal::new(0u32);
            let details = Resource::new(move || (link(), version.get()), |(l, _)| get_connection(l));
            let dialog = RwSignal::new(None::<Target>);
            let auto_open = query.read_untracked().get("authorize").is_some();
            // `?authorize=1` opens the dialog once the details are in, in the browser only: the
            // server-rendered page and the one being hydrated must be the same (a dialog opened
            // while rendering on the server made hydration fail and left every button dead).
            Effect::new(move |_| {
                if let Some(Ok(d)) = details.get() {
                    if auto_open && matches!(d.authorize, Decision::Allowed | Decision::Prompt) && dialog.get_untracked().is_none() && version.get_untracked() == 0 && d.environments.iter().all(|e| e.status != Status::Connected) {
                        dialog.set(Some(target(&d, d.environments.iter().map(|e| e.environment).take(1).collect(), false)));
                    }
                }
            });
            view! {
                <TopNav user=user/>
                <main class="page">
                    <Transition fallback=|| view! { <Skeleton/> }>
                        {move || Suspend::new(async move {
                            match details.await {
                                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                                Ok(d) => view! { <Details d=d dialog=dialog version=version/> }.into_any(),
                            }
                        })}
                    </Transition>
                    {move || dialog.get().map(|t| view! {
                        <AuthorizeDialog
                            target=t
                            on_done=move |_| version.update(|v| *v += 1)
                            on_close=move |_| dialog.set(None)
                        />
                    })}
                </main>
            }
        }/>
    }
}

fn target(d: &ConnectionDetails, environments: Vec<Environment>, replace: bool) -> Target {
    Target {
        connection_id: d.id,
        display_name: d.display_name.clone(),
        link_name: d.link_name.clone(),
        auth_type: d.auth_type,
        same_for_all_envs: d.same_for_all_envs,
        username_label: d.username_label.clone(),
        password_label: d.password_label.clone(),
        environments,
        replace,
    }
}

#[component]
fn Details(d: ConnectionDetails, dialog: RwSignal<Option<Target>>, version: RwSignal<u32>) -> impl IntoView {
    let revoke = ServerAction::<RevokeAuthorization>::new();
    let asking = RwSignal::new(None::<(Environment, Confirmation)>);
    let revoked_name = d.display_name.clone();
    Effect::new(move |_| match revoke.value().get() {
        Some(Ok(())) => {
            toast::success(format!("{revoked_name} revoked."));
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toast::could_not(&format!("revoke {revoked_name}"), &e),
        None => {}
    });
    let revoke_error = move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    let may_authorize = matches!(d.authorize, Decision::Allowed | Decision::Prompt);
    let contact = match d.authorize {
        Decision::ContactAdmin(who) => Some(who.message(&d.display_name)),
        _ => None,
    };
    let menu_open = RwSignal::new(false);
    let reauth = target(&d, Environment::ALL.to_vec(), true);
    let access = ServerAction::<SetConnectionAccess>::new();
    let access_error = move || access.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    Effect::new(move |_| match access.value().get() {
        Some(Ok(())) => toast::success("Access saved."),
        Some(Err(e)) => toast::could_not("save the access", &e),
        None => {}
    });
    let (name, service, shared) = (d.display_name.clone(), d.service_name.clone(), d.same_for_all_envs);
    let rows = d
        .environments
        .iter()
        .map(|e| {
            let connected = e.status == Status::Connected;
            let t = target(&d, vec![e.environment], false);
            let switch_to = target(&d, vec![e.environment], true);
            let label = format!("Authorize {}", e.environment.label());
            let env = e.environment;
            let cid = d.id;
            view! {
                <tr>
                    <th scope="row">{e.environment.label()}</th>
                    <td data-label="Authorized account">{e.account_name.clone().unwrap_or_else(|| "—".into())}</td>
                    <td data-label="Authorized by">{e.authorized_by.clone().unwrap_or_default()}</td>
                    <td data-label="Date of authorization">{e.authorized_at_ms.map(format_ms).unwrap_or_default()}</td>
                    <td data-label="Status"><span class=if connected { "status ok" } else { "status off" }>{e.status.describe(e.status_reason.as_deref())}</span></td>
                    <td>
                        {(!connected && may_authorize).then(|| view! {
                            <button type="button" class="primary" aria-label=label on:click=move |_| dialog.set(Some(t.clone()))>"Authorize"</button>
                        })}
                        {(connected && may_authorize).then(|| view! {
                            <button type="button" aria-label=format!("Switch {}", env.label()) on:click=move |_| dialog.set(Some(switch_to.clone()))>"Switch"</button>
                            <button type="button" aria-label=format!("Revoke {}", env.label())
                                on:click={
                                    let (name, service) = (name.clone(), service.clone());
                                    move |_| {
                                        let (name, service) = (name.clone(), service.clone());
                                        // What uses it (builders may ask), then the confirmation.
                                        leptos::task::spawn_local(async move {
                                            let (datasources, components): (Vec<_>, Vec<_>) = connection_usage(ConnectionId(cid))
                                                .await
                                                .unwrap_or_default()
                                                .into_iter()
                                                .partition(|u| u.kind == UseKind::Datasource);
                                            let components: Vec<String> = components.iter().map(|u| format!("{} {} ({})", u.kind.label(), u.name, u.application)).collect();
                                            let datasources: Vec<String> = datasources.iter().map(|u| format!("{} ({})", u.name, u.application)).collect();
                                            let ask = revoke_confirmation(&name, &service, env.label(), shared, &components, &datasources);
                                            asking.set(Some((env, ask)));
                                        });
                                    }
                                }>"Revoke"</button>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    let cid = d.id;
    view! {
        <header class="details-header">
            <TypeIcon kind=d.conn_type/>
            <h1>{d.display_name.clone()}</h1>
            {may_authorize.then(|| view! {
                <div class="menu-anchor">
                    <button type="button" class="icon-button" aria-label="More actions" aria-haspopup="menu"
                        on:click=move |_| menu_open.update(|o| *o = !*o)><Icon glyph=Glyph::More/></button>
                    <Show when=move || menu_open.get()>
                        <div class="menu" role="menu" aria-label="More actions">
                            {
                                let reauth = reauth.clone();
                                view! {
                                    <button type="button" role="menuitem" on:click=move |_| {
                                        menu_open.set(false);
                                        dialog.set(Some(reauth.clone()));
                                    }>"Reauthorize"</button>
                                }
                            }
                        </div>
                    </Show>
                </div>
            })}
        </header>
        {contact.map(|m| view! { <p class="notice" role="note">{m}</p> })}
        {(!d.enabled).then(|| view! {
            <p class="banner warn" role="status">{match &d.disabled_by {
                Some(who) => format!("This connection is disabled by {who}. Nothing can use it until it is enabled again; its authorizations are kept."),
                None => "This connection is disabled. Nothing can use it until it is enabled again; its authorizations are kept.".to_string(),
            }}</p>
        })}
        {d.can_manage.then(|| view! { <ManageActions d=d.clone() version=version/> })}
        <section aria-label="Connection Details" class="card">
            <h2>"Connection Details"</h2>
            <dl class="facts">
                <dt>"Connection display name"</dt><dd>{d.display_name.clone()}</dd>
                <dt>"Connection link name"</dt><dd><code>{d.link_name.clone()}</code></dd>
                <dt>"Service"</dt><dd>{d.service_name.clone()}{d.custom_connector.then_some(" (custom connector: invoke URL tasks only)")}
                    {(d.custom_connector && d.can_manage).then(|| view! { " " <a href=format!("/microservices/connectors/{}/edit", d.connector_id)>"Edit connector"</a> })}</dd>
                <dt>"Type"</dt><dd>{d.conn_type.label()}</dd>
                <dt>"Scopes"</dt><dd>{if d.scopes.is_empty() { "—".to_string() } else { d.scopes.join(", ") }}</dd>
                <dt>"Created by"</dt><dd>{d.created_by.clone().unwrap_or_default()}</dd>
                <dt>"Environments"</dt><dd>{if d.same_for_all_envs { "Same authorization for all environments" } else { "A separate authorization for each environment" }}</dd>
            </dl>
            {revoke_error}
            {move || asking.get().map(|(env, ask)| view! {
                <ConfirmDialog confirmation=ask on_close=move |_| asking.set(None)
                    on_confirm=move |_| { revoke.dispatch(RevokeAuthorization { connection_id: cid, environment: Some(env) }); }/>
            })}
            <table class="stack" aria-label="Authorizations">
                <thead><tr><th>"Environment"</th><th>"Authorized account"</th><th>"Authorized by"</th><th>"Date of authorization"</th><th>"Status"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
        {d.can_manage.then(|| view! {
            <section aria-label="Connection Access" class="card">
                <h2>"Connection Access"</h2>
                <p class="muted">"Applications with access can use this connection in datasources and workflows."</p>
                <ul class="access">
                    {d.access.iter().map(|a| {
                        let app_id = a.application_id;
                        let on = RwSignal::new(a.enabled);
                        let id = format!("access-{app_id}");
                        let for_id = id.clone();
                        view! {
                            <li>
                                <label for=for_id>
                                    <input id=id type="checkbox" role="switch" prop:checked=move || on.get()
                                        on:change=move |ev| {
                                            let v = event_target_checked(&ev);
                                            on.set(v);
                                            access.dispatch(SetConnectionAccess {
                                                connection_id: ConnectionId(cid),
                                                application_id: ApplicationId(app_id),
                                                enabled: v,
                                            });
                                        }/>
                                    {a.name.clone()}
                                </label>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                {access_error}
            </section>
        })}
        {(d.conn_type == ConnectionType::LoggedInUser).then(|| view! { <UsersAuthorizations connection_id=cid oversees=d.oversees_users/> })}
    }
}
