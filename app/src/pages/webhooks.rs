//! Webhooks (builders): register an endpoint for connection-health and sync events (its signing
//! secret is shown once), send it a test event, read its delivery log, turn it off or delete it.

use crate::components::dialog::{ConfirmDialog, Confirmation};
use crate::components::{ErrorMessage, Loaded, RequireUser, TopNav};
use crate::format::format_ms;
use crate::webhooks::{
    webhook_endpoints, CreateWebhookEndpoint, DeleteWebhookEndpoint, DeliveryInfo, DeliveryState, EndpointInfo,
    EventType, SendTestWebhook, SetWebhookEndpointEnabled, WebhookDeliveries,
};
use leptos::prelude::*;

#[component]
pub fn WebhooksPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let version = RwSignal::new(0u32);
            let list = Resource::new(move || version.get(), |_| webhook_endpoints());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Webhooks"</h1>
                    <p class="muted">
                        "Your endpoints hear when a connection is authorized, switched, revoked, needs reauthorization, "
                        "recovers or is deleted, and when a sync completes or fails. Deliveries are signed by the "
                        <a href="https://www.standardwebhooks.com/">"Standard Webhooks"</a>
                        " specification and retried for a day."
                    </p>
                    <CreateEndpoint version=version/>
                    <h2>"Endpoints"</h2>
                    <Loaded resource=list let:endpoints>
                        {if endpoints.is_empty() {
                            view! { <p class="muted">"No endpoint yet. Register one above to be told when a connection breaks."</p> }.into_any()
                        } else {
                            endpoints.into_iter().map(|e| view! { <EndpointCard endpoint=e version=version/> }).collect_view().into_any()
                        }}
                    </Loaded>
                </main>
            }
        }/>
    }
}

#[component]
fn CreateEndpoint(version: RwSignal<u32>) -> impl IntoView {
    let create = ServerAction::<CreateWebhookEndpoint>::new();
    let url = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let chosen = RwSignal::new(EventType::subscribable().collect::<Vec<_>>());
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            url.set(String::new());
            description.set(String::new());
            version.update(|v| *v += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let events = chosen.get().iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" ");
        create.dispatch(CreateWebhookEndpoint { url: url.get(), description: description.get(), events });
    };
    let created = move || {
        match create.value().get() {
        Some(Ok(c)) => Some(
            view! {
                <div class="secret-once" role="status">
                    <p>"Copy the signing secret now: it is not shown again. Verify each delivery with it (see the README)."</p>
                    <label>"Signing secret "<input readonly value=c.secret size="56" aria-label="Signing secret"/></label>
                </div>
            }
            .into_any(),
        ),
        Some(Err(e)) => Some(view! { <ErrorMessage error=e/> }.into_any()),
        None => None,
    }
    };
    view! {
        <form class="card" aria-label="Register a webhook endpoint" on:submit=submit>
            <label>"Endpoint URL "<input required type="url" size="50" prop:value=move || url.get()
                on:input=move |ev| url.set(event_target_value(&ev)) placeholder="https://example.com/hooks/connections"/></label>
            <label>"Description "<input maxlength="200" prop:value=move || description.get()
                on:input=move |ev| description.set(event_target_value(&ev)) placeholder="e.g. On-call alerts"/></label>
            <fieldset>
                <legend>"Events"</legend>
                {EventType::subscribable().map(|event| view! {
                    <label class="check">
                        <input type="checkbox" prop:checked=move || chosen.get().contains(&event)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                chosen.update(|c| { c.retain(|e| *e != event); if on { c.push(event); } });
                            }/>
                        " "<code>{event.as_str()}</code>{format!(" — {}", event.label())}
                    </label>
                }).collect_view()}
            </fieldset>
            <button type="submit" disabled=move || create.pending().get()>"Register endpoint"</button>
        </form>
        {created}
    }
}

#[component]
fn EndpointCard(endpoint: EndpointInfo, version: RwSignal<u32>) -> impl IntoView {
    let id = endpoint.id;
    let test = ServerAction::<SendTestWebhook>::new();
    let log = ServerAction::<WebhookDeliveries>::new();
    let toggle = ServerAction::<SetWebhookEndpointEnabled>::new();
    let delete = ServerAction::<DeleteWebhookEndpoint>::new();
    Effect::new(move |_| {
        if matches!(toggle.value().get(), Some(Ok(()))) || matches!(delete.value().get(), Some(Ok(()))) {
            version.update(|v| *v += 1);
        }
    });
    // A test delivery refreshes the log when it is open.
    Effect::new(move |_| {
        if test.value().get().is_some() && log.value().get_untracked().is_some() {
            log.dispatch(WebhookDeliveries { id });
        }
    });
    let enabled = endpoint.enabled;
    let status = if enabled {
        "On".to_string()
    } else {
        format!("Off — {}", endpoint.disabled_reason.clone().unwrap_or_default())
    };
    let events = endpoint.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    let title = if endpoint.description.is_empty() { endpoint.url.clone() } else { endpoint.description.clone() };
    let ask = Confirmation {
        title: format!("Delete webhook endpoint {}", endpoint.url),
        rows: vec![("Endpoint".into(), endpoint.url.clone()), ("Events".into(), events.clone())],
        lists: Vec::new(),
        consequence: "No more events are sent to it, and its delivery log is deleted. This cannot be undone.".into(),
        confirm: "Delete endpoint".into(),
    };
    let asking = RwSignal::new(false);
    let test_result = move || {
        test.value().get().map(|r| match r {
            Ok(d) => view! { <p role="status">{format!("Test event {}: {}", d.event_id, describe(&d))}</p> }.into_any(),
            Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
        })
    };
    let errors = move || {
        [toggle.value().get(), delete.value().get()]
            .into_iter()
            .flatten()
            .filter_map(Result::err)
            .map(|e| view! { <ErrorMessage error=e/> })
            .collect_view()
    };
    view! {
        <section class="card" aria-label=format!("Endpoint {}", endpoint.url)>
            <h3>{title}</h3>
            <p><code>{endpoint.url.clone()}</code></p>
            <p class="muted">{format!("Events: {events} · created {} by {} · ", format_ms(endpoint.created_at_ms), endpoint.created_by)}
                <span class="pill">{status}</span></p>
            <div class="actions">
                <button type="button" disabled=move || test.pending().get()
                    on:click=move |_| { test.dispatch(SendTestWebhook { id }); }>"Send test event"</button>
                <button type="button" on:click=move |_| { log.dispatch(WebhookDeliveries { id }); }>"Show deliveries"</button>
                <button type="button" on:click=move |_| { toggle.dispatch(SetWebhookEndpointEnabled { id, enabled: !enabled }); }>
                    {if enabled { "Turn off" } else { "Turn on" }}
                </button>
                <button type="button" class="danger" on:click=move |_| asking.set(true)>"Delete"</button>
            </div>
            {move || asking.get().then(|| view! {
                <ConfirmDialog confirmation=ask.clone() on_close=move |_| asking.set(false)
                    on_confirm=move |_| { delete.dispatch(DeleteWebhookEndpoint { id }); }/>
            })}
            {test_result}
            {errors}
            {move || log.value().get().map(|r| match r {
                Ok(rows) => view! { <DeliveryLog rows=rows/> }.into_any(),
                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
            })}
        </section>
    }
}

/// "Delivered (200)", "Will retry — the endpoint answered 503 (2 attempts)", "Failed — …".
fn describe(d: &DeliveryInfo) -> String {
    let code = d.last_status.map(|s| format!(" ({s})")).unwrap_or_default();
    let why = d.last_error.clone().unwrap_or_default();
    match d.state() {
        DeliveryState::Delivered => format!("Delivered{code}"),
        DeliveryState::Pending if d.attempts == 0 => "Pending".into(),
        DeliveryState::Pending => format!("Will retry — {why} ({} attempts)", d.attempts),
        DeliveryState::Failed => format!("Failed — {why} ({} attempts)", d.attempts),
    }
}

#[component]
fn DeliveryLog(rows: Vec<DeliveryInfo>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No delivery yet."</p> }.into_any();
    }
    view! {
        <table class="stack" aria-label="Deliveries">
            <thead><tr><th>"Event"</th><th>"Type"</th><th>"Created"</th><th>"Last attempt"</th><th>"Result"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|d| view! {
                    <tr>
                        <td data-label="Event"><code>{d.event_id.clone()}</code></td>
                        <td data-label="Type">{d.kind.clone()}</td>
                        <td data-label="Created">{format_ms(d.created_at_ms)}</td>
                        <td data-label="Last attempt">{d.last_attempt_at_ms.map(format_ms).unwrap_or_else(|| "—".into())}</td>
                        <td data-label="Result">{describe(&d)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
