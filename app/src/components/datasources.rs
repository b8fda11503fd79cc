//! "Associated Datasources" in the connections panel (R12.1): per datasource its name and
//! module, Configure / Reconfigure, and the integration-fields sync with a live status badge.

use super::embed_events::{emit, EmbedEvents};
use super::icons::{Glyph, Icon};
use super::ErrorMessage;
use crate::datasources::{associated_datasources, ConfigField, ConfigureDatasource, DatasourceView, FieldKind};
use crate::domain::Environment;
use crate::format::format_ms;
use crate::sync::{InitiateSync, SyncStatus, SyncView};
use leptos::prelude::*;
use std::collections::BTreeMap;

/// The section under a connection in the panel; renders nothing when the connection has no
/// datasources in this application (or the caller is not a builder).
#[component]
pub fn AssociatedDatasources(
    app: String,
    connection_id: i64,
    connection_link: String,
    environment: Environment,
) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let open = RwSignal::new(None::<bool>);
    let app_for_list = app.clone();
    let list = Resource::new(
        move || (app_for_list.clone(), version.get()),
        move |(app, _)| associated_datasources(app, connection_id, environment),
    );
    view! {
        <Transition fallback=|| ()>
            {move || {
                let (app, connection_link) = (app.clone(), connection_link.clone());
                Suspend::new(async move {
                    match list.await {
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                        Ok(items) if items.is_empty() => ().into_any(),
                        Ok(items) => {
                            // Folded unless one still needs configuring, so a card stays short;
                            // the person's own choice then holds across reloads of the list.
                            let attention = items.iter().any(|d| d.needs_configuration() && !d.configured);
                            // Decided once: saving a configuration reloads the list, and the
                            // section must not fold under the builder's hands.
                            open.update_untracked(|o| {
                                o.get_or_insert(attention);
                            });
                            let expanded = move || open.get().unwrap_or(attention);
                            let count = items.len();
                            view! {
                                <section class="datasources" aria-label="Associated Datasources">
                                    <h4>
                                        <button type="button" class="disclosure" aria-expanded=move || expanded().to_string()
                                            on:click=move |_| open.set(Some(!expanded()))>
                                            <Icon glyph=Glyph::Chevron size=16/>
                                            {format!("Associated Datasources ({count})")}
                                        </button>
                                    </h4>
                                    <div class="datasource-list" hidden=move || !expanded()>
                                        {items.into_iter().map(|d| view! {
                                            <DatasourceBlock ds=d app=app.clone() connection_link=connection_link.clone() environment version/>
                                        }).collect_view()}
                                    </div>
                                </section>
                            }.into_any()
                        }
                    }
                })
            }}
        </Transition>
    }
}

#[component]
fn DatasourceBlock(
    ds: DatasourceView,
    app: String,
    connection_link: String,
    environment: Environment,
    version: RwSignal<u32>,
) -> impl IntoView {
    let name = ds.name.clone();
    let configure = ds.needs_configuration().then(|| {
        let body = match ds.configure_blocked.clone() {
            Some(reason) => view! { <p class="notice">{reason}</p> }.into_any(),
            None => view! {
                <ConfigureForm
                    datasource_id=ds.id
                    name=name.clone()
                    fields=ds.config_fields.clone()
                    values=ds.config_values.clone()
                    configured=ds.configured
                    environment
                    version
                />
            }
            .into_any(),
        };
        view! {
            <div class="ds-config">
                <h5>"Datasource Configuration"</h5>
                {body}
            </div>
        }
    });
    let sync = (!ds.integration_fields.is_empty()).then(|| {
        let forms = ds
            .integration_fields
            .iter()
            .map(|f| {
                view! { <li><a href=format!("/app/{app}/records/{}", f.form_link)>{format!("{} › {}", f.form, f.field)}</a></li> }
            })
            .collect_view();
        view! {
            <div class="ds-sync">
                <h5>"Integration fields sync"</h5>
                <ul class="fields" aria-label=format!("Integration fields of {}", ds.name)>{forms}</ul>
                <SyncBadge datasource_id=ds.id name=ds.name.clone() connection_link=connection_link.clone() initial=ds.sync.clone() blocked=ds.sync_blocked.clone() environment/>
            </div>
        }
    });
    view! {
        <article class="datasource" aria-label=format!("Datasource {}", ds.name)>
            <p><strong>{ds.name.clone()}</strong><span class="muted">" · Module: " {ds.module.clone()}</span></p>
            {configure}
            {sync}
        </article>
    }
}

/// Configure (first time) or Reconfigure (later): one control per configuration field.
#[component]
fn ConfigureForm(
    datasource_id: i64,
    name: String,
    fields: Vec<ConfigField>,
    values: BTreeMap<String, String>,
    configured: bool,
    environment: Environment,
    version: RwSignal<u32>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let save = ServerAction::<ConfigureDatasource>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = save.value().get() {
            open.set(false);
            version.update(|v| *v += 1);
        }
    });
    let inputs: Vec<(ConfigField, RwSignal<String>)> = fields
        .into_iter()
        .map(|f| {
            let v = values.get(&f.name).cloned().unwrap_or_default();
            (f, RwSignal::new(v))
        })
        .collect();
    let for_submit = inputs.clone();
    let label = if configured { "Reconfigure" } else { "Configure" };
    let summary = values.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
    view! {
        {configured.then(|| view! { <p class="muted">"Configured — " {summary.clone()}</p> })}
        <Show when=move || !open.get()>
            <button type="button" aria-label=format!("{label} {name}") on:click=move |_| open.set(true)>{label}</button>
        </Show>
        <Show when=move || open.get()>
            <form class="stack" on:submit={
                let for_submit = for_submit.clone();
                move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    let values = for_submit.iter().map(|(f, v)| (f.name.clone(), v.get_untracked())).collect();
                    save.dispatch(ConfigureDatasource { datasource_id, environment, values });
                }
            }>
                {inputs.iter().map(|(f, value)| {
                    let id = format!("ds-{datasource_id}-{}", f.name);
                    let for_id = id.clone();
                    let value = *value;
                    let control = match f.kind {
                        FieldKind::Select => view! {
                            <select id=id prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
                                <option value="">"Choose…"</option>
                                {f.options.iter().map(|o| view! { <option value=o.clone()>{o.clone()}</option> }).collect_view()}
                            </select>
                        }.into_any(),
                        FieldKind::Number => view! { <input id=id type="number" step="any" bind:value=value/> }.into_any(),
                        FieldKind::Text => view! { <input id=id maxlength="200" bind:value=value/> }.into_any(),
                    };
                    view! {
                        <label for=for_id>{f.label.clone()}{f.required.then_some(" *")}</label>
                        {control}
                    }
                }).collect_view()}
                {move || save.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> })}
                <div class="row">
                    <button type="submit" class="primary" disabled=move || save.pending().get()>"Save configuration"</button>
                    <button type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                </div>
            </form>
        </Show>
    }
}

/// The sync badge (Queued → Ongoing → Completed / Failed), live while a run is active, with
/// progress, API calls, the last completed time and the Initiate button.
#[component]
fn SyncBadge(
    datasource_id: i64,
    name: String,
    /// For the embedded panel's `connections.sync_finished` event.
    connection_link: String,
    initial: SyncView,
    blocked: Option<String>,
    environment: Environment,
) -> impl IntoView {
    let view_sig = RwSignal::new(initial);
    let notice = RwSignal::new(None::<String>);
    let initiate = ServerAction::<InitiateSync>::new();
    let watching = StoredValue::new(false);
    let events = use_context::<EmbedEvents>();
    let on_finished =
        Callback::new(move |_: ()| emit(&events, "connections.sync_finished", &connection_link, environment));
    let watch = move || {
        if !watching.get_value() {
            watching.set_value(true);
            poll(datasource_id, view_sig, watching, on_finished);
        }
    };
    Effect::new(move |_| {
        if view_sig.with(|v| v.latest.as_ref().is_some_and(|r| r.status.is_active())) {
            watch();
        }
    });
    Effect::new(move |_| match initiate.value().get() {
        Some(Ok(out)) => {
            notice.set(out.joined.then(|| {
                let who = out.view.latest.as_ref().map(|r| r.initiated_by.clone()).unwrap_or_default();
                format!("A sync of this datasource is already running (initiated by {who}); its result shows here.")
            }));
            // A short run can end before Initiate answers: then there is nothing to watch.
            let ended = out.view.latest.as_ref().is_some_and(|r| !r.status.is_active());
            view_sig.set(out.view);
            if ended {
                on_finished.run(());
            }
        }
        Some(Err(e)) => notice.set(Some(e.to_string())),
        None => {}
    });
    let badge = move || {
        view_sig.with(|v| {
            v.latest.as_ref().map(|r| {
                let text = match r.status {
                    SyncStatus::Queued => {
                        format!("Queued{}", r.queue_position.map(|p| format!(" (position {p})")).unwrap_or_default())
                    }
                    SyncStatus::Ongoing => format!("Ongoing — {} records fetched", r.records),
                    s => s.label().to_string(),
                };
                let class = format!("badge sync-{}", r.status.as_str());
                view! { <span class=class>{text}</span> }
            })
        })
    };
    let details = move || {
        view_sig.with(|v| {
            let last = v.last_completed_at_ms.map(|t| view! { <p>"Last sync completed: " {format_ms(t)}</p> });
            let run = v.latest.as_ref().map(|r| {
                let failed = (r.status == SyncStatus::Failed).then(|| {
                    view! {
                        <p class="error">{r.error.clone().unwrap_or_default()}</p>
                        <a href=format!("/operations#sync-run-{}", r.id)>"See the log in Operations"</a>
                    }
                });
                view! {
                    <p class="muted">
                        {format!("{} records · {} API calls (they count against the service account's usage limits)", r.records, r.api_calls)}
                    </p>
                    {failed}
                }
            });
            view! { {last} {run} }
        })
    };
    let name_for_button = name.clone();
    let button = move || {
        if let Some(reason) = blocked.clone() {
            return view! { <p class="notice">{reason}</p> }.into_any();
        }
        let (active, next, failed) = view_sig.with(|v| {
            (
                v.latest.as_ref().is_some_and(|r| r.status.is_active()),
                v.next_allowed_at_ms,
                v.latest.as_ref().is_some_and(|r| r.status == SyncStatus::Failed),
            )
        });
        if active {
            return ().into_any();
        }
        if let Some(next) = next {
            return view! {
                <button type="button" disabled=true aria-label=format!("Initiate sync of {name_for_button}")>
                    {format!("Next sync allowed after {}", format_ms(next))}
                </button>
            }
            .into_any();
        }
        let label = if failed { "Initiate again" } else { "Initiate" };
        view! {
            <button type="button" class="primary" aria-label=format!("Initiate sync of {name_for_button}")
                disabled=move || initiate.pending().get()
                on:click=move |_| { initiate.dispatch(InitiateSync { datasource_id, environment }); }>
                {label}
            </button>
        }
        .into_any()
    };
    view! {
        <div class="sync" role="status" aria-live="polite" aria-label=format!("Sync status of {name}")>
            {badge}
            {details}
        </div>
        {button}
        {move || notice.get().map(|n| view! { <p class="notice" role="alert">{n}</p> })}
    }
}

/// Re-reads the sync state every second while a run is queued or ongoing.
#[cfg(feature = "hydrate")]
fn poll(datasource_id: i64, view_sig: RwSignal<SyncView>, watching: StoredValue<bool>, on_finished: Callback<()>) {
    leptos::task::spawn_local(async move {
        loop {
            gloo_timers::future::TimeoutFuture::new(1000).await;
            match crate::sync::get_sync_status(datasource_id).await {
                Ok(v) => {
                    let active = v.latest.as_ref().is_some_and(|r| r.status.is_active());
                    view_sig.set(v);
                    if !active {
                        on_finished.run(());
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        watching.set_value(false);
    });
}

#[cfg(not(feature = "hydrate"))]
fn poll(_datasource_id: i64, _view_sig: RwSignal<SyncView>, _watching: StoredValue<bool>, _on_finished: Callback<()>) {}
