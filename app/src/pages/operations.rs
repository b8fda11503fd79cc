//! Operations: the log of connection events, refused attempts and sync runs.

use crate::components::{Loaded, RequireUser, TopNav};
use crate::format::format_ms;
use crate::operations::list_operations;
use crate::sync::list_sync_runs;
use leptos::prelude::*;

#[component]
pub fn OperationsPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let list = Resource::new(|| (), |_| list_operations());
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
                            <table aria-label="Sync runs">
                                <thead><tr><th>"Run"</th><th>"Datasource"</th><th>"Status"</th><th>"Initiated by"</th><th>"Queued at"</th><th>"Finished"</th><th>"Records"</th><th>"API calls"</th><th>"Error"</th></tr></thead>
                                <tbody>
                                    {runs.into_iter().map(|r| view! {
                                        <tr id=format!("sync-run-{}", r.id) class=format!("sync-{}", r.status.as_str())>
                                            <td>{r.id}</td>
                                            <td>{r.datasource}</td>
                                            <td>{r.status.label()}</td>
                                            <td>{r.initiated_by}</td>
                                            <td>{format_ms(r.created_at_ms)}</td>
                                            <td>{r.finished_at_ms.map(format_ms).unwrap_or_default()}</td>
                                            <td>{r.records}</td>
                                            <td>{r.api_calls}</td>
                                            <td>{r.error.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any() }}
                    </Loaded>
                    <h2>"Connection events"</h2>
                    <Loaded resource=list let:list>
                            <table aria-label="Operations log">
                                <thead><tr><th>"Level"</th><th>"Event"</th><th>"Who"</th><th>"Connection"</th><th>"Detail"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|o| {
                                        let class = format!("level-{}", o.level);
                                        view! {
                                        <tr class=class>
                                            <td>{o.level}</td>
                                            <td>{o.kind}</td>
                                            <td>{o.actor.unwrap_or_default()}</td>
                                            <td>{o.connection.unwrap_or_default()}</td>
                                            <td>{o.detail}</td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                    </Loaded>
                </main>
            }
        }/>
    }
}
