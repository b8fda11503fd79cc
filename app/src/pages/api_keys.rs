//! API keys (admins): create one for a host product's backend (its secret is shown once),
//! see when each was last used, revoke it. The embedding guide links here.

use crate::components::dialog::{ConfirmDialog, Confirmation};
use crate::components::{ErrorMessage, Loaded, RequireUser, TopNav};
use crate::format::format_ms;
use crate::platform::{api_keys, ApiKeyInfo, ApiScope, CreateApiKey, RevokeApiKey};
use leptos::prelude::*;

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let version = RwSignal::new(0u32);
            let list = Resource::new(move || version.get(), |_| api_keys());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"API keys"</h1>
                    <p class="muted">
                        "Keys let your product's backend create connect sessions (the embedded panel opens signed in as your user), "
                        "read connections and call services over them. See the "
                        <a href="/v1/docs">"API reference"</a>"."
                    </p>
                    <CreateKey version=version/>
                    <h2>"Keys"</h2>
                    <Loaded resource=list let:keys>
                        {if keys.is_empty() {
                            view! { <p class="muted">"No API key yet."</p> }.into_any()
                        } else {
                            view! { <KeyTable keys=keys version=version/> }.into_any()
                        }}
                    </Loaded>
                </main>
            }
        }/>
    }
}

#[component]
fn CreateKey(version: RwSignal<u32>) -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let name = RwSignal::new(String::new());
    let chosen = RwSignal::new(vec![ApiScope::ConnectSessions]);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            name.set(String::new());
            version.update(|v| *v += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let scopes = chosen.get().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        create.dispatch(CreateApiKey { name: name.get(), scopes });
    };
    let created = move || match create.value().get() {
        Some(Ok(k)) => Some(
            view! {
                <div class="secret-once" role="status">
                    <p>"Copy the key now: it is not shown again."</p>
                    <label>"New API key "<input readonly value=k.secret size="50" aria-label="New API key"/></label>
                </div>
            }
            .into_any(),
        ),
        Some(Err(e)) => Some(view! { <ErrorMessage error=e/> }.into_any()),
        None => None,
    };
    view! {
        <form class="card" aria-label="Create an API key" on:submit=submit>
            <label>"Name "<input required maxlength="80" prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev)) placeholder="e.g. Production backend"/></label>
            <fieldset>
                <legend>"Scopes"</legend>
                {ApiScope::ALL.into_iter().map(|scope| view! {
                    <label class="check">
                        <input type="checkbox" prop:checked=move || chosen.get().contains(&scope)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                chosen.update(|c| { c.retain(|s| *s != scope); if on { c.push(scope); } });
                            }/>
                        {format!(" {} ({})", scope.label(), scope.as_str())}
                    </label>
                }).collect_view()}
            </fieldset>
            <button type="submit" disabled=move || create.pending().get()>"Create key"</button>
        </form>
        {created}
    }
}

#[component]
fn KeyTable(keys: Vec<ApiKeyInfo>, version: RwSignal<u32>) -> impl IntoView {
    let revoke = ServerAction::<RevokeApiKey>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            version.update(|v| *v += 1);
        }
    });
    let error = move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> });
    view! {
        {error}
        <table class="stack" aria-label="API keys">
            <thead><tr><th>"Name"</th><th>"Key"</th><th>"Scopes"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th></th></tr></thead>
            <tbody>
                {keys.into_iter().map(|k| {
                    let id = k.id;
                    let label = format!("Revoke {}", k.name);
                    let ask = Confirmation {
                        title: format!("Revoke API key {}", k.name),
                        rows: vec![("API key".into(), k.name.clone()), ("Key".into(), format!("{}…", k.prefix))],
                        lists: Vec::new(),
                        consequence: "Every call with this key is refused from now on. This cannot be undone.".into(),
                        confirm: "Revoke key".into(),
                    };
                    let asking = RwSignal::new(false);
                    let scopes = k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                    view! {
                        <tr>
                            <th scope="row">{k.name.clone()}</th>
                            <td data-label="Key"><code>{format!("{}…", k.prefix)}</code></td>
                            <td data-label="Scopes">{scopes}</td>
                            <td data-label="Created">{format!("{} by {}", format_ms(k.created_at_ms), k.created_by)}</td>
                            <td data-label="Last used">{k.last_used_at_ms.map(format_ms).unwrap_or_else(|| "Never".into())}</td>
                            <td data-label="Status">{k.revoked_at_ms.map(|t| format!("Revoked {}", format_ms(t))).unwrap_or_else(|| "Active".into())}</td>
                            <td>
                                <Show when=move || k.revoked_at_ms.is_none()>
                                    <button type="button" class="danger" aria-label=label.clone()
                                        on:click=move |_| asking.set(true)>"Revoke"</button>
                                </Show>
                                {move || asking.get().then(|| view! {
                                    <ConfirmDialog confirmation=ask.clone() on_close=move |_| asking.set(false)
                                        on_confirm=move |_| { revoke.dispatch(RevokeApiKey { id }); }/>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
