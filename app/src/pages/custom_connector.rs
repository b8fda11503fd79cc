//! The custom connector builder: a General section, "Save & Continue", then a Security section
//! whose fields depend on the authentication type (R5.4
//! custom connectors").

use crate::components::{ErrorMessage, RequireUser, Skeleton, TopNav};
use crate::connectors::{
    custom_connector, validate_custom, CreateCustomConnector, CustomConnectorForm, CustomConnectorInput,
    DeleteCustomConnector, UpdateCustomConnector,
};
use crate::domain::{DisplayName, LinkName};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

#[component]
pub fn CustomConnectorPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| view! {
            <TopNav user=user/>
            <main class="page narrow-wide">
                <h1>"Create New Custom Connector"</h1>
                <Builder/>
            </main>
        }/>
    }
}

/// Editing a custom connector: the same sections, filled in; the client secret is write-only.
#[component]
pub fn EditCustomConnectorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|i| i.parse::<i64>().ok()).unwrap_or_default();
    view! {
        <RequireUser children=move |user| {
            let form = Resource::new(id, custom_connector);
            view! {
                <TopNav user=user/>
                <main class="page narrow-wide">
                    <Transition fallback=|| view! { <Skeleton/> }>
                        {move || Suspend::new(async move {
                            match form.await {
                                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                                Ok(f) => view! {
                                    <h1>{format!("Edit {}", f.input.name)}</h1>
                                    <Builder existing=f.clone()/>
                                    <DeleteConnector form=f/>
                                }.into_any(),
                            }
                        })}
                    </Transition>
                </main>
            }
        }/>
    }
}

/// Delete, offered only when no connection uses the connector.
#[component]
fn DeleteConnector(form: CustomConnectorForm) -> impl IntoView {
    let delete = ServerAction::<DeleteCustomConnector>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/microservices/connections/new?section=custom", Default::default());
        }
    });
    let error = move || delete.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    let id = form.id;
    let sure = RwSignal::new(false);
    view! {
        <section class="card" aria-label="Delete connector">
            <h2>"Delete connector"</h2>
            {if form.connections.is_empty() {
                view! {
                    <label class="check"><input type="checkbox" bind:checked=sure/>{format!("Delete {} for good", form.input.name)}</label>
                    <button type="button" class="danger" disabled=move || !sure.get() || delete.pending().get()
                        on:click=move |_| { delete.dispatch(DeleteCustomConnector { connector_id: id }); }>"Delete connector"</button>
                }.into_any()
            } else {
                view! { <p class="muted">{format!("Used by {}. Delete those connections first.", form.connections.join(", "))}</p> }.into_any()
            }}
            {error}
        </section>
    }
}

/// A labelled text input bound to a signal.
#[component]
fn Field(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] kind: &'static str,
) -> impl IntoView {
    let kind = if kind.is_empty() { "text" } else { kind };
    view! {
        <label for=id>{label}</label>
        <input id=id type=kind bind:value=value autocomplete="off"/>
    }
}

/// A labelled drop-down over fixed options, each (value, text).
#[component]
fn Choice(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    options: &'static [(&'static str, &'static str)],
) -> impl IntoView {
    view! {
        <label for=id>{label}</label>
        <select id=id bind:value=value>
            {options.iter().map(|&(v, text)| view! { <option value=v>{text}</option> }).collect_view()}
        </select>
    }
}

/// The builder's two sections; with `existing`, an Edit form of that connector.
#[component]
fn Builder(#[prop(optional)] existing: Option<CustomConnectorForm>) -> impl IntoView {
    let create = ServerAction::<CreateCustomConnector>::new();
    let update = ServerAction::<UpdateCustomConnector>::new();
    let editing = existing.as_ref().map(|f| f.id);
    let secret_set = existing.as_ref().is_some_and(|f| f.secret_set);
    let start = existing.map(|f| f.input).unwrap_or_else(|| CustomConnectorInput {
        auth_type: "oauth2".into(),
        grant_type: "authorization_code".into(),
        placement: "header".into(),
        scope_delimiter: "space".into(),
        ..Default::default()
    });
    let step = RwSignal::new(1u8);
    let (name, link, description) =
        (RwSignal::new(start.name), RwSignal::new(start.link_name), RwSignal::new(start.description));
    let auth_type = RwSignal::new(start.auth_type);
    let grant_type = RwSignal::new(start.grant_type);
    let (client_id, client_secret, authorize_url, token_url, refresh_url, revoke_url) = (
        RwSignal::new(start.client_id),
        RwSignal::new(String::new()),
        RwSignal::new(start.authorize_url),
        RwSignal::new(start.token_url),
        RwSignal::new(start.refresh_url),
        RwSignal::new(start.revoke_url),
    );
    let placement = RwSignal::new(start.placement);
    let scopes = RwSignal::new(start.scopes);
    let scope_delimiter = RwSignal::new(start.scope_delimiter);
    let test_url = RwSignal::new(start.test_url);
    let (key_name, username_label, password_label, api_base, logo_url) = (
        RwSignal::new(start.key_name),
        RwSignal::new(start.username_label),
        RwSignal::new(start.password_label),
        RwSignal::new(start.api_base),
        RwSignal::new(start.logo_url),
    );
    let (issuer, discovery_url) = (RwSignal::new(start.issuer), RwSignal::new(start.discovery_url));
    let local_error = RwSignal::new(None::<crate::error::AppError>);
    // The link name of a saved connector never changes.
    let link_edited = RwSignal::new(editing.is_some());
    let confirm_needed = RwSignal::new(false);
    let confirmed = RwSignal::new(false);
    let saved = RwSignal::new(false);
    Effect::new(move |_| match update.value().get() {
        Some(Ok(_)) => saved.set(true),
        Some(Err(crate::error::AppError::Conflict(_))) => confirm_needed.set(true),
        _ => {}
    });
    Effect::new(move |_| {
        if !link_edited.get() {
            link.set(LinkName::derive_from(&name.get()));
        }
    });
    let input = move || CustomConnectorInput {
        name: name.get_untracked(),
        link_name: link.get_untracked(),
        description: description.get_untracked(),
        auth_type: auth_type.get_untracked(),
        grant_type: grant_type.get_untracked(),
        client_id: client_id.get_untracked(),
        client_secret: client_secret.get_untracked(),
        authorize_url: authorize_url.get_untracked(),
        token_url: token_url.get_untracked(),
        refresh_url: refresh_url.get_untracked(),
        revoke_url: revoke_url.get_untracked(),
        placement: placement.get_untracked(),
        scopes: scopes.get_untracked(),
        scope_delimiter: scope_delimiter.get_untracked(),
        key_name: key_name.get_untracked(),
        username_label: username_label.get_untracked(),
        password_label: password_label.get_untracked(),
        api_base: api_base.get_untracked(),
        test_url: test_url.get_untracked(),
        logo_url: logo_url.get_untracked(),
        issuer: issuer.get_untracked(),
        discovery_url: discovery_url.get_untracked(),
    };
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            navigate("/microservices/connections/new?section=custom", Default::default());
        }
    });
    let error = move || {
        local_error
            .get()
            .or_else(|| create.value().get().and_then(|r| r.err()))
            .or_else(|| update.value().get().and_then(|r| r.err()))
            .map(|e| view! { <ErrorMessage error=e/> })
    };
    let general_next = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match DisplayName::parse("name", &name.get_untracked()).and_then(|_| LinkName::parse(&link.get_untracked())) {
            Ok(_) => {
                local_error.set(None);
                step.set(2);
            }
            Err(e) => local_error.set(Some(e)),
        }
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let i = input();
        // A blank secret keeps the stored one when editing.
        let checked = if secret_set && i.client_secret.is_empty() {
            CustomConnectorInput { client_secret: "unchanged".into(), ..i.clone() }
        } else {
            i.clone()
        };
        match validate_custom(&checked) {
            Ok(_) => {
                local_error.set(None);
                saved.set(false);
                match editing {
                    Some(id) => {
                        update.dispatch(UpdateCustomConnector {
                            connector_id: id,
                            input: i,
                            confirmed: confirmed.get_untracked(),
                        });
                    }
                    None => {
                        create.dispatch(CreateCustomConnector { input: i });
                    }
                }
            }
            Err(e) => local_error.set(Some(e)),
        }
    };
    view! {
        <Show when=move || step.get() == 1>
            <form class="card form" aria-label="General" on:submit=general_next>
                <h2>"General"</h2>
                <label for="cc-name">"Connector Name"</label>
                <input id="cc-name" bind:value=name maxlength="50"/>
                <p class="muted">"At most 50 characters; start with a letter, digit or underscore; special characters * _ - @ / ! : | & ~ \\ +"</p>
                <label for="cc-link">"Link Name"</label>
                <input id="cc-link" prop:value=move || link.get() readonly=editing.is_some() on:input=move |ev| { link_edited.set(true); link.set(event_target_value(&ev)); }/>
                <label for="cc-description">"Description"</label>
                <textarea id="cc-description" bind:value=description maxlength="500"></textarea>
                <Field id="cc-logo" label="Logo URL" value=logo_url/>
                {error}
                <button type="submit" class="primary">"Save & Continue"</button>
            </form>
        </Show>
        <Show when=move || step.get() == 2>
            <form class="card form" aria-label="Security" on:submit=save>
                <h2>"Security"</h2>
                <Choice id="cc-auth" label="Authentication Type" value=auth_type options={&[("oauth2", "OAuth2"), ("api_key", "API Key"), ("basic", "Basic Authentication")]}/>
                <Field id="cc-api-base" label="API base URL" value=api_base/>
                <Show when=move || auth_type.get() == "oauth2">
                    <Choice id="cc-grant" label="Grant Type" value=grant_type options={&[("authorization_code", "Authorization Code"), ("client_credentials", "Client Credentials")]}/>
                    <Field id="cc-client-id" label="Client ID" value=client_id/>
                    <Field id="cc-client-secret" label="Client Secret" value=client_secret kind="password"/>
                    {secret_set.then(|| view! { <p class="muted" id="cc-secret-hint">"Set — leave blank to keep it; type a new one to replace it."</p> })}
                    <Field id="cc-authorize-url" label="Authorize URL" value=authorize_url/>
                    <Field id="cc-token-url" label="Access Token URL" value=token_url/>
                    <Field id="cc-refresh-url" label="Refresh Token URL" value=refresh_url/>
                    <Field id="cc-revoke-url" label="Revoke Token URL" value=revoke_url/>
                    <Field id="cc-issuer" label="Issuer (optional)" value=issuer/>
                    <Field id="cc-discovery-url" label="Metadata URL (optional)" value=discovery_url/>
                    <p class="muted">
                        "With an issuer or a metadata URL (RFC 8414 / OpenID discovery), empty endpoints are filled from the service's metadata and every authorization answer must come from that issuer."
                    </p>
                    <label for="cc-scopes">"Scopes"</label>
                    <textarea id="cc-scopes" bind:value=scopes placeholder="files.read, files.write"></textarea>
                    <Choice id="cc-delimiter" label="Scope Delimiter" value=scope_delimiter options={&[("space", "Space"), ("comma", "Comma"), ("plus", "Plus")]}/>
                </Show>
                <Show when=move || auth_type.get() == "api_key">
                    <Field id="cc-key-name" label="Key Name" value=key_name/>
                </Show>
                <Show when=move || auth_type.get() == "basic">
                    <Field id="cc-username-label" label="Username field label" value=username_label/>
                    <Field id="cc-password-label" label="Password field label" value=password_label/>
                </Show>
                <Show when=move || auth_type.get() != "oauth2">
                    <Field id="cc-test-url" label="Test URL (optional)" value=test_url/>
                    <p class="muted" id="cc-test-url-hint">"A path under the API base URL that answers only valid credentials, e.g. /v1/me: new credentials are checked with it. Without one they are saved unverified."</p>
                </Show>
                <Show when=move || auth_type.get() != "basic">
                    <Choice id="cc-placement" label="Send parameters as" value=placement options={&[("header", "Header"), ("query", "Query string")]}/>
                </Show>
                {error}
                <Show when=move || confirm_needed.get()>
                    <label class="check"><input type="checkbox" bind:checked=confirmed/>"Save anyway: those authorizations will need reauthorization"</label>
                </Show>
                <Show when=move || saved.get()>
                    <p role="status" class="flow ok">"Saved."</p>
                </Show>
                <div class="row">
                    <button type="button" on:click=move |_| step.set(1)>"Back"</button>
                    <button type="submit" class="primary" disabled=move || create.pending().get() || update.pending().get()>"Save"</button>
                </div>
            </form>
        </Show>
    }
}
