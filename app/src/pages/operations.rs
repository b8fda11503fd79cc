//! Operations: the log of connection events, refused attempts and sync runs.

use super::{ErrorMessage, RequireUser, TopNav};
use crate::operations::list_operations;
use leptos::prelude::*;

#[component]
pub fn OperationsPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let list = Resource::new(|| (), |_| list_operations());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Operations"</h1>
                    <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match list.await {
                                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                                Ok(list) => view! {
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
                                }.into_any(),
                            }
                        })}
                    </Suspense>
                </main>
            }
        }/>
    }
}
