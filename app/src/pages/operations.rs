//! Operations: the log of connection events, refused attempts and sync runs. The log is a table
//! (time, event in words, result, who, connection, environment, detail) filtered by event and
//! connection through the URL (`?kind=revoked&connection=sales_crm`), successful sign-ins folded
//! away unless asked for (`sign_ins=1`); the filter form is a GET form that works before
//! hydration.

use crate::components::{Loaded, RequireUser, TopNav};
use crate::format::format_ms;
use crate::operations::{list_operations, OperationEntry, OperationFilter, OperationKind};
use crate::sync::list_sync_runs;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn OperationsPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let query = use_query_map();
            let filter = Memo::new(move |_| {
                let q = query.read();
                OperationFilter::from_query(q.get_str("kind"), q.get_str("connection"), q.get_str("sign_ins"))
            });
            let list = Resource::new(move || filter.get(), |f| async move {
                match f {
                    Ok(f) => list_operations(f).await,
                    Err(e) => Err(e),
                }
            });
            let runs = Resource::new(|| (), |_| list_sync_runs());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Operations"</h1>
                    <h2>"Sync runs"</h2>
                    <Loaded resource=runs let:runs>
                        {if runs.is_empty() {
                            view! { <p class="muted">"No datasource has been synced yet."</p> }.into_any()
                        } else { view! {
                            <table class="stack" aria-label="Sync runs">
                                <thead><tr><th>"Run"</th><th>"Datasource"</th><th>"Status"</th><th>"Initiated by"</th><th>"Queued at"</th><th>"Finished"</th><th>"Records"</th><th>"API calls"</th><th>"Error"</th></tr></thead>
                                <tbody>
                                    {runs.into_iter().map(|r| view! {
                                        <tr id=format!("sync-run-{}", r.id) class=format!("sync-{}", r.status.as_str())>
                                            <td data-label="Run">{r.id}</td>
                                            <td data-label="Datasource">{r.datasource}</td>
                                            <td data-label="Status">{r.status.label()}</td>
                                            <td data-label="Initiated by">{r.initiated_by}</td>
                                            <td data-label="Queued at">{format_ms(r.created_at_ms)}</td>
                                            <td data-label="Finished">{r.finished_at_ms.map(format_ms).unwrap_or_default()}</td>
                                            <td data-label="Records">{r.records}</td>
                                            <td data-label="API calls">{r.api_calls}</td>
                                            <td data-label="Error">{r.error.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any() }}
                    </Loaded>
                    <h2>"Connection events"</h2>
                    <FilterForm filter=filter.get_untracked().unwrap_or_default()/>
                    <Loaded resource=list let:list>
                        {if list.is_empty() {
                            let filtered = filter.get_untracked().is_ok_and(|f| f.kind.is_some() || f.connection.is_some());
                            if filtered {
                                view! { <p class="muted">"Nothing matches. Clear the filters to see every event."</p> }.into_any()
                            } else {
                                view! {
                                    <p class="muted">
                                        "No connection events yet: creating, authorizing, switching or revoking a connection is logged here. "
                                        <a href="/microservices">"Go to Microservices"</a>
                                    </p>
                                }.into_any()
                            }
                        } else {
                            view! { <OperationsTable list=list/> }.into_any()
                        }}
                    </Loaded>
                </main>
            }
        }/>
    }
}

/// Event, connection and "show sign-ins"; submitting reloads the page with them in the URL.
#[component]
fn FilterForm(filter: OperationFilter) -> impl IntoView {
    let chosen = filter.kind;
    view! {
        <form method="get" action="/operations" class="filters" aria-label="Filter the operations log">
            <label>"Event "
                <select name="kind">
                    <option value="" selected=chosen.is_none()>"All events"</option>
                    {OperationKind::ALL.into_iter().map(|k| view! {
                        <option value=k.as_str() selected=chosen == Some(k)>{k.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Connection (link name) "
                <input name="connection" value=filter.connection.unwrap_or_default() placeholder="e.g. sales_crm"/>
            </label>
            <label class="check"><input type="checkbox" name="sign_ins" value="1" checked=filter.sign_ins/>" Show sign-ins"</label>
            <button type="submit">"Filter"</button>
            <a href="/operations">"Clear"</a>
        </form>
    }
}

#[component]
fn OperationsTable(list: Vec<OperationEntry>) -> impl IntoView {
    view! {
        <table class="stack" aria-label="Operations log">
            <thead><tr><th>"Time"</th><th>"Event"</th><th>"Result"</th><th>"Who"</th><th>"Connection"</th><th>"Environment"</th><th>"Detail"</th></tr></thead>
            <tbody>
                {list.into_iter().map(|o| {
                    view! {
                        <tr class=format!("level-{}", o.level.as_str())>
                            <td data-label="Time">{format_ms(o.at_ms)}</td>
                            <td data-label="Event">{o.kind.label()}</td>
                            <td data-label="Result">{o.level.label()}</td>
                            <td data-label="Who">{o.actor.unwrap_or_else(|| "—".into())}</td>
                            <td data-label="Connection">{o.connection.unwrap_or_else(|| "—".into())}</td>
                            <td data-label="Environment">{o.environment.unwrap_or_else(|| "—".into())}</td>
                            <td data-label="Detail">{o.detail}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
