use crate::applications::list_applications;
use crate::components::{Loaded, RequireUser, TopNav};
use leptos::prelude::*;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <RequireUser children=move |user| {
            let builder = user.role.is_builder();
            let apps = Resource::new(|| (), |_| list_applications());
            view! {
                <TopNav user=user/>
                <main class="page">
                    <h1>"Applications"</h1>
                    <Loaded resource=apps let:list>
                            <ul class="cards" aria-label="Applications">
                                {list.into_iter().map(|a| {
                                    let live = format!("/app/{}", a.link_name);
                                    let edit = format!("/app/{}/edit", a.link_name);
                                    view! {
                                        <li class="card">
                                            <h2>{a.name.clone()}</h2>
                                            {a.installed_from.clone().map(|f| view! { <p class="muted">"Installed from " {f}</p> })}
                                            <a href=live aria-label=format!("Open {} in live mode", a.name)>"Live mode"</a>
                                            {builder.then(|| view! {
                                                <a href=edit aria-label=format!("Edit {}", a.name)>"Edit mode"</a>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                    </Loaded>
                </main>
            }
        }/>
    }
}
