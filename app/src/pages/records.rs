//! `/app/:app/records/:form`: a form's records with their integration fields.

use crate::components::{Loaded, RequireUser, TopNav};
use crate::datasources::form_records;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// A form's records, with integration-field values as of the last sync.
#[component]
pub fn FormRecordsPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || (params.read().get("app").unwrap_or_default(), params.read().get("form").unwrap_or_default());
    view! {
        <RequireUser children=move |user| {
            let records = Resource::new(key, |(app, form)| form_records(app, form));
            view! {
                <TopNav user=user/>
                <main class="page">
                    <Loaded resource=records let:r>
                        {
                            let columns: Vec<String> = r.rows.first().map(|row| row.iter().map(|c| c.field.clone()).collect()).unwrap_or_default();
                            view! {
                                <h1>{format!("{} records", r.form)}</h1>
                                <table class="stack" aria-label=format!("{} records", r.form)>
                                    <thead><tr>{columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                                    <tbody>
                                        {r.rows.into_iter().map(|row| view! {
                                            <tr>{row.into_iter().map(|c| {
                                                let class = if c.integration { "integration" } else { "" };
                                                view! {
                                                    <td class=class data-label=c.field>{c.value}{c.missing.then_some(" (not found at the service)")}</td>
                                                }
                                            }).collect_view()}</tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }
                        }
                    </Loaded>
                </main>
            }
        }/>
    }
}
