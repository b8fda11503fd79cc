//! The connection page's management parts (issue 13): Edit (display name and scopes),
//! Disable / Enable, Delete behind a confirmation that lists what still uses the connection,
//! and each user's authorization of a logged-in-user connection.

use crate::components::dialog::Modal;
use crate::components::Skeleton;
use crate::components::{toast, ErrorMessage};
use crate::connections::{
    connection_usage, users_authorizations, ConnectionDetails, ConnectionEdit, DeleteConnection, EditConnection,
    RevokeUserAuthorization, SetConnectionEnabled,
};
use crate::domain::ConnectionId;
use crate::format::format_ms;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// Edit, Disable/Enable and Delete, for those who may manage the connection.
#[component]
pub fn ManageActions(d: ConnectionDetails, version: RwSignal<u32>) -> impl IntoView {
    let editing = RwSignal::new(false);
    let deleting = RwSignal::new(false);
    let toggle = ServerAction::<SetConnectionEnabled>::new();
    let (name, enabled) = (d.display_name.clone(), d.enabled);
    Effect::new(move |_| match toggle.value().get() {
        Some(Ok(())) => {
            toast::success(format!("{name} {}.", if enabled { "disabled" } else { "enabled" }));
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toast::could_not(&format!("{} {name}", if enabled { "disable" } else { "enable" }), &e),
        None => {}
    });
    let toggle_error = move || toggle.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    let id = ConnectionId(d.id);
    let edit_d = d.clone();
    let delete_d = d.clone();
    view! {
        <div class="row manage" role="group" aria-label="Manage connection">
            <button type="button" on:click=move |_| editing.update(|e| *e = !*e) aria-expanded=move || editing.get().to_string()>"Edit"</button>
            <button type="button" disabled=move || toggle.pending().get()
                on:click=move |_| { toggle.dispatch(SetConnectionEnabled { connection_id: id, enabled: !enabled }); }>
                {if enabled { "Disable" } else { "Enable" }}
            </button>
            <button type="button" class="danger" on:click=move |_| deleting.set(true)>"Delete"</button>
        </div>
        {toggle_error}
        <Show when=move || editing.get()>
            <EditForm d=edit_d.clone() editing=editing version=version/>
        </Show>
        <Show when=move || deleting.get()>
            <DeleteDialog d=delete_d.clone() open=deleting/>
        </Show>
    }
}

#[component]
fn EditForm(d: ConnectionDetails, editing: RwSignal<bool>, version: RwSignal<u32>) -> impl IntoView {
    let save = ServerAction::<EditConnection>::new();
    let name = RwSignal::new(d.display_name.clone());
    let chosen = RwSignal::new(d.scopes.clone());
    let original = d.scopes.clone();
    Effect::new(move |_| match save.value().get() {
        Some(Ok(())) => {
            editing.set(false);
            toast::success("Changes saved.");
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toast::could_not("save the changes", &e),
        None => {}
    });
    let error = move || save.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    let adds_scopes = move || chosen.read().iter().any(|s| !original.contains(s));
    let id = ConnectionId(d.id);
    let input = NodeRef::<html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    view! {
        <form class="card edit-connection" aria-label="Edit connection"
            on:submit=move |ev| {
                ev.prevent_default();
                save.dispatch(EditConnection {
                    connection_id: id,
                    edit: ConnectionEdit { display_name: name.get_untracked(), scopes: chosen.get_untracked() },
                });
            }>
            <h2>"Edit connection"</h2>
            <label>"Connection display name"
                <input node_ref=input required maxlength="100" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))/>
            </label>
            <p class="muted">"The link name " <code>{d.link_name.clone()}</code> " stays the same: scripts use it."</p>
            {(!d.available_scopes.is_empty()).then(|| view! {
                <fieldset>
                    <legend>"Scopes"</legend>
                    {d.available_scopes.iter().map(|s| {
                        let scope = s.name.clone();
                        let for_check = scope.clone();
                        let required = s.required;
                        view! {
                            <label class="check">
                                <input type="checkbox" disabled=required
                                    prop:checked=move || chosen.read().contains(&for_check)
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        chosen.update(|c| {
                                            c.retain(|x| x != &scope);
                                            if on { c.push(scope.clone()); }
                                        });
                                    }/>
                                {s.name.clone()}
                                {(!s.description.is_empty()).then(|| view! { <span class="muted">{format!(" — {}", s.description)}</span> })}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
            })}
            <Show when=adds_scopes>
                <p class="notice" role="note">"New scopes need consent: every authorization of this connection will show \"Needs reauthorization\" until it is authorized again."</p>
            </Show>
            {error}
            <div class="row">
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
                <button type="button" on:click=move |_| editing.set(false)>"Cancel"</button>
            </div>
        </form>
    }
}

/// A modal confirmation: names the connection, lists what still uses it (then Delete is not
/// offered), says what happens at the provider. Esc and Cancel close it.
#[component]
fn DeleteDialog(d: ConnectionDetails, open: RwSignal<bool>) -> impl IntoView {
    let id = ConnectionId(d.id);
    let usage = Resource::new(|| (), move |_| connection_usage(id));
    let delete = ServerAction::<DeleteConnection>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/microservices?deleted=1", Default::default());
        }
    });
    let error = move || delete.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    let title = format!("Delete {}", d.display_name);
    let name = d.display_name.clone();
    let service = d.service_name.clone();
    let link = d.link_name.clone();
    view! {
        <Modal title=title on_close=move |_| open.set(false) close_label="Cancel and close">
            <Transition fallback=|| view! { <p class="loading">"Checking where it is used…"</p> }>
                {
                    let name = name.clone();
                    let service = service.clone();
                    let link = link.clone();
                    move || {
                        let (name, service, link) = (name.clone(), service.clone(), link.clone());
                        Suspend::new(async move {
                            match usage.await {
                                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                                Ok(used) if !used.is_empty() => view! {
                                    <p role="alert">{format!("{name} cannot be deleted while these use it. Remove it from them first:")}</p>
                                    <ul aria-label="Used by">
                                        {used.into_iter().map(|u| view! {
                                            <li><span class="kind">{u.kind.label()}</span>" "<a href=u.href>{u.name}</a>{format!(" ({})", u.application)}</li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any(),
                                Ok(_) => view! {
                                    <p>{format!("{name} will be deleted. Every authorization of it is revoked at {service} and its stored credentials are removed. Scripts that call ")}<code>{link}</code>" will stop working. This cannot be undone."</p>
                                    <button type="button" class="danger" disabled=move || delete.pending().get()
                                        on:click=move |_| { delete.dispatch(DeleteConnection { connection_id: id }); }>"Delete connection"</button>
                                }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
            {error}
            <div class="row">
                <button type="button" data-autofocus="true" on:click=move |_| open.set(false)>"Cancel"</button>
            </div>
        </Modal>
    }
}

/// Each user's authorization of a logged-in-user connection: admins see everyone's and may
/// revoke any; others see and revoke their own.
#[component]
pub fn UsersAuthorizations(connection_id: i64, oversees: bool) -> impl IntoView {
    let revoke = ServerAction::<RevokeUserAuthorization>::new();
    // Loaded in the browser once the page is hydrated: this section sits inside the page's own
    // suspended details, and a resource created there on the server is not found again while
    // hydrating (the table and the fallback differed, hydration failed, every button was dead).
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let rows = LocalResource::new(move || {
        let version = revoke.version().get();
        async move {
            let _ = version;
            users_authorizations(ConnectionId(connection_id)).await
        }
    });
    Effect::new(move |_| match revoke.value().get() {
        Some(Ok(())) => toast::success("Authorization revoked."),
        Some(Err(e)) => toast::could_not("revoke the authorization", &e),
        None => {}
    });
    let error = move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    let title = if oversees { "Users' authorizations" } else { "Your authorizations" };
    view! {
        <section aria-label=title class="card">
            <h2>{title}</h2>
            {error}
            <Show when=move || mounted.get() fallback=|| view! { <Skeleton/> }>
            <Transition fallback=|| view! { <Skeleton/> }>
                {move || Suspend::new(async move {
                    match rows.await {
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"Nobody has authorized this connection yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="stack" aria-label=title>
                                <thead><tr><th>"User"</th><th>"Environment"</th><th>"Account"</th><th>"Authorized at"</th><th>"Status"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|a| {
                                        let label = format!("Revoke {}'s authorization ({})", a.user_name, a.environment.label());
                                        let (user_id, env) = (a.user_id, a.environment);
                                        view! {
                                            <tr>
                                                <th scope="row">{a.user_name.clone()}</th>
                                                <td data-label="Environment">{a.environment.label()}</td>
                                                <td data-label="Account">{a.account_name.clone().unwrap_or_else(|| "—".into())}</td>
                                                <td data-label="Authorized at">{format_ms(a.authorized_at_ms)}</td>
                                                <td data-label="Status">{a.status.describe(a.status_reason.as_deref())}</td>
                                                <td><button type="button" aria-label=label disabled=move || revoke.pending().get()
                                                    on:click=move |_| { revoke.dispatch(RevokeUserAuthorization { connection_id: ConnectionId(connection_id), user_id, environment: Some(env) }); }>"Revoke"</button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
            </Show>
        </section>
    }
}
