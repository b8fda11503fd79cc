//! The Microservices page: every connection in the workspace (super admins, admins and
//! developers only; the server refuses anyone else).

use crate::components::panel::TypeIcon;
use crate::components::{Loaded, RequireUser, TopNav};
use crate::connections::{connections_page, ConnectionPage, ConnectionQuery, Status, PAGE_SIZE};
use crate::domain::{ConnectionType, Environment};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// The query of a Microservices URL (`?q=&type=&status=&env=&after=`).
fn query_from_url() -> Memo<ConnectionQuery> {
    let params = use_query_map();
    Memo::new(move |_| {
        params.with(|p| {
            let get = |k: &str| p.get(k).unwrap_or_default();
            ConnectionQuery {
                q: get("q"),
                conn_type: get("type"),
                status: get("status"),
                env: get("env"),
                after: get("after"),
            }
        })
    })
}

/// The same view starting after `after` (or from the start), as a link.
fn href(query: &ConnectionQuery, after: &str) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    let pairs = [("q", query.q.as_str()), ("type", &query.conn_type), ("status", &query.status), ("env", &query.env)];
    for (k, v) in pairs.into_iter().chain([("after", after)]) {
        if !v.is_empty() {
            form.append_pair(k, v);
        }
    }
    match form.finish() {
        q if q.is_empty() => "/microservices".into(),
        q => format!("/microservices?{q}"),
    }
}

#[component]
pub fn MicroservicesPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let query = query_from_url();
            let page = Resource::new(move || query.get(), connections_page);
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Microservices"</h1>
                    <div class="row">
                        <CreateNew/>
                        <a href="/microservices/promotion">"Export / import connections"</a>
                    </div>
                    <h2>"Connections"</h2>
                    <Filters query=query/>
                    <Loaded resource=page let:page>
                        <ConnectionsTable page=page query=query.get_untracked()/>
                    </Loaded>
                </main>
            }
        }/>
    }
}

/// Search and filters: a GET form, so a filtered view is a link (and works before hydration).
#[component]
fn Filters(query: Memo<ConnectionQuery>) -> impl IntoView {
    let q = move || query.get();
    let option = move |value: &'static str, text: &'static str, current: fn(&ConnectionQuery) -> String| {
        view! { <option value=value selected=move || current(&q()) == value>{text}</option> }
    };
    view! {
        <Form method="GET" action="/microservices">
            <div class="filters" role="search" aria-label="Filter connections">
                <div class="field">
                    <label for="ms-q">"Search connections"</label>
                    <input id="ms-q" name="q" type="search" placeholder="Name, link name or service" value=move || q().q/>
                </div>
                <div class="field">
                    <label for="ms-type">"Type"</label>
                    <select id="ms-type" name="type">
                        {option("", "Any type", |q| q.conn_type.clone())}
                        {ConnectionType::ALL.map(|t| option(t.as_str(), t.label(), |q| q.conn_type.clone())).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="ms-status">"Status"</label>
                    <select id="ms-status" name="status">
                        {option("", "Any status", |q| q.status.clone())}
                        {Status::ALL.map(|s| option(s.as_str(), s.label(), |q| q.status.clone())).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="ms-env">"Environment"</label>
                    <select id="ms-env" name="env">
                        {Environment::ALL.map(|e| option(e.as_str(), e.label(), |q| if q.env.is_empty() { "development".into() } else { q.env.clone() })).collect_view()}
                    </select>
                </div>
                <button type="submit">"Apply"</button>
            </div>
        </Form>
    }
}

#[component]
fn ConnectionsTable(page: ConnectionPage, query: ConnectionQuery) -> impl IntoView {
    let ConnectionPage { entries, environment, next_after, matching, total, by_type, attention } = page;
    let shown = entries.len();
    let types = by_type.iter().map(|(t, n)| format!("{} {n}", t.label())).collect::<Vec<_>>().join(" · ");
    let summary = if matching == total {
        format!("{total} connections ({types}).")
    } else {
        format!("{matching} of {total} connections match ({types}).")
    };
    let first = (!query.after.is_empty()).then(|| href(&query, ""));
    let next = next_after.map(|after| href(&query, &after));
    let banner = (attention > 0).then(|| {
        let text = if attention == 1 {
            "1 connection needs reauthorization.".to_string()
        } else {
            format!("{attention} connections need reauthorization.")
        };
        view! {
            <p class="banner warn" role="alert">{text}" "
                <a href="/microservices?status=needs_reauthorization&env=production">"Show them"</a></p>
        }
    });
    view! {
        {banner}
        <p class="muted" role="status">{summary}</p>
        <table class="stack" aria-label="Connections">
            <caption class="muted">{format!("Statuses in {}", environment.label())}</caption>
            <thead><tr><th>"Type"</th><th>"Name"</th><th>"Link name"</th><th>"Service"</th><th>"Status"</th></tr></thead>
            <tbody>
                {entries.into_iter().map(|c| view! {
                    <tr>
                        <td data-label="Type"><TypeIcon kind=c.conn_type/></td>
                        <td data-label="Name"><a href=format!("/microservices/connections/{}", c.link_name)>{c.display_name}</a></td>
                        <td data-label="Link name"><code>{c.link_name}</code></td>
                        <td data-label="Service">{c.service_name}</td>
                        <td data-label="Status">{c.status.describe(c.status_reason.as_deref())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <nav class="row" aria-label="Pages">
            {(shown == 0).then(|| if total == 0 {
                // An empty workspace: say what to do next.
                view! { <div class="empty"><p>"No connections yet."</p>
                    <a class="button" href="/microservices/connections/new">"Create a connection"</a></div> }.into_any()
            } else {
                view! { <div class="empty"><p>"No connection matches."</p>
                    <a class="button" href="/microservices">"Clear the filters"</a></div> }.into_any()
            })}
            {first.map(|href| view! { <a href=href>"First page"</a> })}
            {next.map(|href| view! { <a href=href>{format!("Next {PAGE_SIZE}")}</a> })}
        </nav>
    }
}

/// "Create New" → "Pick & Create" under Connections (R1.3).
#[component]
fn CreateNew() -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <div class="menu-anchor">
            <button type="button" class="primary" aria-haspopup="menu" aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)>"Create New"</button>
            <Show when=move || open.get()>
                <div class="menu create-menu" role="menu" aria-label="Create New">
                    <p class="menu-heading">"Connections"</p>
                    <a role="menuitem" href="/microservices/connections/new">"Pick & Create"</a>
                    <p class="menu-heading">"Custom connectors"</p>
                    <a role="menuitem" href="/microservices/connectors/new">"Create New Custom Connector"</a>
                </div>
            </Show>
        </div>
    }
}
