//! The Microservices page: every connection in the workspace (super admins, admins and
//! developers only; the server refuses anyone else).

use crate::components::panel::TypeIcon;
use crate::components::{Loaded, RequireUser, TopNav};
use crate::connections::workspace_connections;
use leptos::prelude::*;

#[component]
pub fn MicroservicesPage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let list = Resource::new(|| (), |_| workspace_connections());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Microservices"</h1>
                    <CreateNew/>
                    <h2>"Connections"</h2>
                    <Loaded resource=list let:list>
                            <table aria-label="Connections">
                                <thead><tr><th>"Type"</th><th>"Name"</th><th>"Link name"</th><th>"Service"</th><th>"Status"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|c| view! {
                                        <tr>
                                            <td><TypeIcon kind=c.conn_type/></td>
                                            <td><a href=format!("/microservices/connections/{}", c.link_name)>{c.display_name}</a></td>
                                            <td><code>{c.link_name}</code></td>
                                            <td>{c.service_name}</td>
                                            <td>{c.status.describe(c.status_reason.as_deref())}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                    </Loaded>
                </main>
            }
        }/>
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
