//! Environment promotion (issue 13), for builders: export an application's connections as a
//! JSON document (shown and downloadable), and import one — a preview that lists what would be
//! created, what matches, what needs authorizing and every conflict, then Apply.

use crate::applications::list_applications;
use crate::components::{ErrorMessage, Loaded, RequireUser, TopNav};
use crate::domain::Environment;
use crate::promotion::{ApplyImport, ExportConnections, ImportPlan, PlanAction, PlanImport};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn PromotionPage() -> impl IntoView {
    let query = use_query_map();
    view! {
        <RequireUser children=move |user| {
            let apps = Resource::new(|| (), |_| list_applications());
            let app = RwSignal::new(query.read_untracked().get("app").unwrap_or_default());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Export and import connections"</h1>
                    <p class="muted">
                        "Move an application's connections to another workspace or environment. The export names each "
                        "connection's connector, link name, type, scopes and access, and defines custom connectors — never a "
                        "secret or an authorization. An import matches connections by link name and creates the missing ones "
                        "unauthorized."
                    </p>
                    <Loaded resource=apps let:apps>
                        <label class="row">"Application "
                            <select aria-label="Application" on:change=move |ev| app.set(event_target_value(&ev))>
                                <option value="" selected=move || app.get().is_empty()>"Choose…"</option>
                                {apps.into_iter().map(|a| {
                                    let link = a.link_name.clone();
                                    view! { <option value=a.link_name.clone() selected=move || app.get() == link>{a.name}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                    </Loaded>
                    <Export app=app/>
                    <Import app=app/>
                </main>
            }
        }/>
    }
}

/// Percent-encodes `text` for a `data:` URL.
fn data_url(text: &str) -> String {
    let mut out = String::from("data:application/json;charset=utf-8,");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[component]
fn Export(app: RwSignal<String>) -> impl IntoView {
    let export = ServerAction::<ExportConnections>::new();
    let result = move || {
        export.value().get().map(|r| match r {
            Ok(json) => {
                let file = format!("{}-connections.json", app.get_untracked());
                view! {
                    <label for="export-json">"Export (no secrets)"</label>
                    <textarea id="export-json" readonly rows="12" prop:value=json.clone()></textarea>
                    <a class="button" href=data_url(&json) download=file>"Download"</a>
                }
                .into_any()
            }
            Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
        })
    };
    view! {
        <section class="card stack" aria-label="Export connections">
            <h2>"Export"</h2>
            <button type="button" disabled=move || app.get().is_empty() || export.pending().get()
                on:click=move |_| { export.dispatch(ExportConnections { app: app.get_untracked() }); }>"Export connections"</button>
            {result}
        </section>
    }
}

#[component]
fn Import(app: RwSignal<String>) -> impl IntoView {
    let plan = ServerAction::<PlanImport>::new();
    let apply = ServerAction::<ApplyImport>::new();
    let document = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let environment = move || Environment::parse(&env.get_untracked()).ok();
    let preview = move |_| {
        apply.clear();
        plan.dispatch(PlanImport {
            app: app.get_untracked(),
            document: document.get_untracked(),
            environment: environment(),
        });
    };
    let planned = move || {
        plan.value().get().map(|r| match r {
            Ok(p) => {
                let clean = p.conflicts.is_empty();
                view! {
                    <PlanView plan=p/>
                    <Show when=move || clean && apply.value().get().is_none()>
                        <button type="button" class="primary" disabled=move || apply.pending().get()
                            on:click=move |_| { apply.dispatch(ApplyImport { app: app.get_untracked(), document: document.get_untracked(), environment: environment() }); }>
                            "Apply"</button>
                    </Show>
                }
                .into_any()
            }
            Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
        })
    };
    let applied = move || {
        apply.value().get().map(|r| match r {
            Ok(p) => view! { <p role="status">"Imported."</p><PlanView plan=p/> }.into_any(),
            Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
        })
    };
    view! {
        <section class="card stack" aria-label="Import connections">
            <h2>"Import"</h2>
            <label for="import-json">"Paste an export"</label>
            <textarea id="import-json" rows="10" prop:value=move || document.get()
                on:input=move |ev| document.set(event_target_value(&ev))></textarea>
            <label class="row">"Needs authorizing in "
                <select aria-label="Environment" on:change=move |ev| env.set(event_target_value(&ev))>
                    <option value="">"Every environment"</option>
                    {Environment::ALL.map(|e| view! { <option value=e.as_str()>{e.label()}</option> }).collect_view()}
                </select>
            </label>
            <button type="button" disabled=move || app.get().is_empty() || plan.pending().get() on:click=preview>"Preview import"</button>
            {planned}
            {applied}
        </section>
    }
}

/// What an import would do or did: conflicts first, then connectors and connections.
#[component]
fn PlanView(plan: ImportPlan) -> impl IntoView {
    let ImportPlan { application, environments, connectors, connections, conflicts, applied } = plan;
    let envs = environments.iter().map(|e| e.label()).collect::<Vec<_>>().join(", ");
    let heading = if applied { "Imported into" } else { "Preview for" };
    let conflicts = (!conflicts.is_empty()).then(|| {
        view! {
            <div class="error" role="alert" aria-label="Conflicts">
                <p>{format!("{} conflict(s): nothing will be imported until they are resolved.", conflicts.len())}</p>
                <ul>{conflicts.into_iter().map(|c| view! { <li>{format!("{}: {}", c.subject, c.message)}</li> }).collect_view()}</ul>
            </div>
        }
    });
    let connectors = (!connectors.is_empty()).then(|| {
        view! {
            <table class="stack" aria-label="Custom connectors">
                <thead><tr><th>"Custom connector"</th><th>"Link name"</th><th>"Action"</th><th>"Client secret"</th></tr></thead>
                <tbody>{connectors.into_iter().map(|k| view! {
                    <tr><th scope="row">{k.name}</th><td data-label="Link name"><code>{k.link_name}</code></td><td data-label="Action">{k.action.label()}</td>
                        <td data-label="Client secret">{if k.needs_client_secret { "Needed: set it on the connector's Edit page" } else { "—" }}</td></tr>
                }).collect_view()}</tbody>
            </table>
        }
    });
    view! {
        <h3>{format!("{heading} {application} ({envs})")}</h3>
        {conflicts}
        {connectors}
        <table class="stack" aria-label="Connections to import">
            <thead><tr><th>"Connection"</th><th>"Link name"</th><th>"Service"</th><th>"Type"</th><th>"Action"</th><th>"Access"</th><th>"Needs authorizing"</th></tr></thead>
            <tbody>{connections.into_iter().map(|c| {
                let needs = c.needs_authorizing.iter().map(|e| e.label()).collect::<Vec<_>>().join(", ");
                let href = format!("/microservices/connections/{}", c.link_name);
                let created = c.action == PlanAction::Create;
                view! {
                    <tr>
                        <th scope="row">{c.display_name}{c.notes.into_iter().map(|n| view! { <br/><small class="muted">{n}</small> }).collect_view()}</th>
                        <td data-label="Link name"><code>{c.link_name}</code></td>
                        <td data-label="Service">{c.service}</td>
                        <td data-label="Type">{c.conn_type.label()}</td>
                        <td data-label="Action">{if created { "Create (unauthorized)" } else { "Matched" }}</td>
                        <td data-label="Access">{if c.grants_access { "Granted" } else { "—" }}</td>
                        <td data-label="Needs authorizing">{if needs.is_empty() { view! { "—" }.into_any() } else if applied { view! { <a href=href>{needs}</a> }.into_any() } else { view! { {needs} }.into_any() }}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table>
    }
}
