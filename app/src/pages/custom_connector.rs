//! The custom connector builder: a General section, "Save & Continue", then a Security section
//! whose fields depend on the authentication type (R5.4
//! custom connectors").

use crate::components::{ErrorMessage, RequireUser, TopNav};
use crate::connectors::{validate_custom, CreateCustomConnector, CustomConnectorInput};
use crate::domain::{DisplayName, LinkName};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

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

#[component]
fn Builder() -> impl IntoView {
    let create = ServerAction::<CreateCustomConnector>::new();
    let step = RwSignal::new(1u8);
    let s = || RwSignal::new(String::new());
    let (name, link, description) = (s(), s(), s());
    let auth_type = RwSignal::new("oauth2".to_string());
    let grant_type = RwSignal::new("authorization_code".to_string());
    let (client_id, client_secret, authorize_url, token_url, refresh_url, revoke_url) = (s(), s(), s(), s(), s(), s());
    let placement = RwSignal::new("header".to_string());
    let scopes = s();
    let scope_delimiter = RwSignal::new("space".to_string());
    let (key_name, username_label, password_label, api_base, logo_url) = (s(), s(), s(), s(), s());
    let (issuer, discovery_url) = (s(), s());
    let local_error = RwSignal::new(None::<crate::error::AppError>);
    let link_edited = RwSignal::new(false);
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
        match validate_custom(&i) {
            Ok(_) => {
                local_error.set(None);
                create.dispatch(CreateCustomConnector { input: i });
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
                <input id="cc-link" prop:value=move || link.get() on:input=move |ev| { link_edited.set(true); link.set(event_target_value(&ev)); }/>
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
                <Show when=move || auth_type.get() != "basic">
                    <Choice id="cc-placement" label="Send parameters as" value=placement options={&[("header", "Header"), ("query", "Query string")]}/>
                </Show>
                {error}
                <div class="row">
                    <button type="button" on:click=move |_| step.set(1)>"Back"</button>
                    <button type="submit" class="primary" disabled=move || create.pending().get()>"Save"</button>
                </div>
            </form>
        </Show>
    }
}
