//! Pick & Create (R5.2, R5.3): connector cards with a BUILT-IN / CUSTOM left pane and a
//! search box, then the connection form with scopes and the environments checkbox.

use crate::components::{ErrorMessage, RequireUser, Skeleton, TopNav};
use crate::connections::{CreateConnection, NewConnection};
use crate::connectors::{list_connectors, ConnectorKind, ConnectorSummary};
use crate::domain::{ConnectionType, DisplayName, LinkName};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn CreateConnectionPage() -> impl IntoView {
    let query = use_query_map();
    view! {
        <RequireUser children=move |user| {
            let connectors = Resource::new(|| (), |_| list_connectors());
            let custom_tab = RwSignal::new(query.read_untracked().get("section").as_deref() == Some("custom"));
            let search = RwSignal::new(String::new());
            let picked = RwSignal::new(None::<ConnectorSummary>);
            view! {
                <TopNav user=user/>
                <main class="page picker">
                    <h1>"Pick & Create"</h1>
                    <div class="picker-body">
                        <nav aria-label="Connector sections" class="left-pane">
                            <button type="button" aria-pressed=move || (!custom_tab.get()).to_string() on:click=move |_| { custom_tab.set(false); picked.set(None); }>"BUILT-IN CONNECTOR"</button>
                            <button type="button" aria-pressed=move || custom_tab.get().to_string() on:click=move |_| { custom_tab.set(true); picked.set(None); }>"CUSTOM CONNECTOR"</button>
                        </nav>
                        <section class="cards-area">
                            {move || match picked.get() {
                                Some(c) => view! { <ConnectionForm connector=c on_back=move |_| picked.set(None)/> }.into_any(),
                                None => view! {
                                    <label for="connector-search">"Search connectors"</label>
                                    <input id="connector-search" type="search" bind:value=search placeholder="Service name"/>
                                    <Show when=move || custom_tab.get()>
                                        <a class="button" href="/microservices/connectors/new">"Create New Custom Connector"</a>
                                    </Show>
                                    <Transition fallback=|| view! { <Skeleton/> }>
                                        {move || Suspend::new(async move {
                                            match connectors.await {
                                                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                                                Ok(list) => {
                                                    let kind = if custom_tab.get() { ConnectorKind::Custom } else { ConnectorKind::BuiltIn };
                                                    let needle = search.get().to_lowercase();
                                                    let shown: Vec<_> = list.into_iter()
                                                        .filter(|c| c.kind == kind && (needle.is_empty() || c.name.to_lowercase().contains(&needle)))
                                                        .collect();
                                                    if shown.is_empty() {
                                                        return view! { <p class="muted">"No connectors match."</p> }.into_any();
                                                    }
                                                    view! {
                                                        <ul class="cards" aria-label="Connectors">
                                                            {shown.into_iter().map(|c| {
                                                                let pick = c.clone();
                                                                view! {
                                                                    <li>
                                                                        <button type="button" class="card connector-card" aria-label=c.name.clone() on:click=move |_| picked.set(Some(pick.clone()))>
                                                                            {match c.logo_url.clone() {
                                                                                // The service's mark (public/logos/, see its LICENSE.md), else a monogram.
                                                                                Some(src) => view! { <img class="logo" src=src alt="" width="32" height="32"/> }.into_any(),
                                                                                None => view! { <span class="logo monogram" aria-hidden="true">{monogram(&c.name)}</span> }.into_any(),
                                                                            }}
                                                                            <strong>{c.name.clone()}</strong>
                                                                            <span class="muted">{c.description.clone()}</span>
                                                                            <span class="badge">{c.auth_type.label()}</span>
                                                                        </button>
                                                                    </li>
                                                                }
                                                            }).collect_view()}
                                                        </ul>
                                                    }.into_any()
                                                }
                                            }
                                        })}
                                    </Transition>
                                }.into_any(),
                            }}
                        </section>
                    </div>
                </main>
            }
        }/>
    }
}

#[component]
fn ConnectionForm(connector: ConnectorSummary, #[prop(into)] on_back: Callback<()>) -> impl IntoView {
    let create = ServerAction::<CreateConnection>::new();
    let name = RwSignal::new(String::new());
    let link = RwSignal::new(String::new());
    let link_edited = RwSignal::new(false);
    let same = RwSignal::new(true);
    let conn_type = RwSignal::new("admin".to_string());
    let then_authorize = RwSignal::new(true);
    let scopes: Vec<(String, bool, RwSignal<bool>, String)> = connector
        .scopes
        .iter()
        .map(|s| (s.name.clone(), s.required, RwSignal::new(s.required), s.description.clone()))
        .collect();
    let local_error = RwSignal::new(None::<crate::error::AppError>);
    Effect::new(move |_| {
        if !link_edited.get() {
            link.set(LinkName::derive_from(&name.get()));
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(d)) = create.value().get() {
            let suffix = if then_authorize.get_untracked() { "?authorize=1" } else { "" };
            navigate(&format!("/microservices/connections/{}{suffix}", d.link_name), Default::default());
        }
    });
    let connector_id = connector.id;
    let submit = {
        let scopes = scopes.clone();
        move |authorize: bool| {
            // The same checks the server makes, before the round trip.
            let checked = DisplayName::parse("display_name", &name.get_untracked())
                .and_then(|_| LinkName::parse(&link.get_untracked()))
                .and_then(|_| ConnectionType::parse(&conn_type.get_untracked()));
            let conn_type = match checked {
                Ok(t) => t,
                Err(e) => {
                    local_error.set(Some(e));
                    return;
                }
            };
            local_error.set(None);
            then_authorize.set(authorize);
            create.dispatch(CreateConnection {
                input: NewConnection {
                    connector_id,
                    display_name: name.get_untracked(),
                    link_name: link.get_untracked(),
                    scopes: scopes.iter().filter(|s| s.2.get_untracked()).map(|s| s.0.clone()).collect(),
                    same_for_all_envs: same.get_untracked(),
                    conn_type,
                },
            });
        }
    };
    let submit2 = submit.clone();
    let error = move || {
        local_error
            .get()
            .or_else(|| create.value().get().and_then(|r| r.err()))
            .map(|e| view! { <ErrorMessage error=e/> })
    };
    view! {
        <form class="card form" aria-label=format!("Create a {} connection", connector.name) on:submit=move |ev| { ev.prevent_default(); submit(true) }>
            <button type="button" class="link-button" on:click=move |_| on_back.run(())>"← All connectors"</button>
            <h2>{connector.name.clone()}</h2>
            <label for="connection-name">"Connection Name"</label>
            <input id="connection-name" bind:value=name maxlength="50" required/>
            <label for="link-name">"Link Name"</label>
            <input id="link-name" prop:value=move || link.get() maxlength="50"
                on:input=move |ev| { link_edited.set(true); link.set(event_target_value(&ev)); }/>
            <label for="connection-type">"Connection type"</label>
            <select id="connection-type" bind:value=conn_type>
                <option value="admin">"Admin connection (one authorization for everyone)"</option>
                <option value="user">"User connection (each user authorizes their own account)"</option>
            </select>
            {(!scopes.is_empty()).then(|| view! {
                <fieldset>
                    <legend>"Scopes"</legend>
                    {scopes.iter().map(|(s, required, sig, desc)| {
                        let id = format!("scope-{}", s.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
                        let for_id = id.clone();
                        let sig = *sig;
                        view! {
                            <label class="check" for=for_id>
                                <input id=id type="checkbox" bind:checked=sig disabled=*required/>
                                <code>{s.clone()}</code>
                                " " <span class="muted">{desc.clone()}{required.then_some(" (required)")}</span>
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
            })}
            <label class="check" for="same-auth">
                <input id="same-auth" type="checkbox" bind:checked=same/>
                "Always use the same authorization for all environments"
            </label>
            {error}
            <div class="row">
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create and Authorize"</button>
                <button type="button" disabled=move || create.pending().get() on:click=move |_| submit2(false)>"Create"</button>
            </div>
        </form>
    }
}

/// Up to two initials of a connector's name ("Sandbox CRM" → "SC"), for cards without a logo.
fn monogram(name: &str) -> String {
    name.split_whitespace().filter_map(|w| w.chars().next()).take(2).flat_map(char::to_uppercase).collect()
}
