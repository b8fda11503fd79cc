//! A component opened in live mode. When one of its connections is not authorized the server
//! says so (`ComponentRun::AuthorizationRequired`): the authorization prompt (the authorization dialog for that connection) opens at
//! once for those the policy lets authorize; others are told whom to contact and cannot use the
//! component. After authorizing, the component loads again without a page reload.

use super::authorize::{AuthorizeDialog, Target};
use super::{ErrorMessage, Skeleton};
use crate::connections::app_connections;
use crate::domain::{ComponentKind, Environment};
use crate::runtime::{run_component, ComponentOutput, ComponentRun, DataSection};
use leptos::prelude::*;

#[component]
pub fn ComponentView(app: String, component: String) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let dialog = RwSignal::new(None::<Target>);
    // The connection whose prompt was closed by the person: not reopened until they ask.
    let dismissed = RwSignal::new(None::<String>);
    let prompting = RwSignal::new(None::<String>);
    let (a, c) = (app.clone(), component.clone());
    let output = Resource::new(move || (a.clone(), c.clone(), version.get()), |(a, c, _)| run_component(a, c));
    let app_for_prompt = app.clone();
    let open_prompt = Callback::new(move |connection: String| {
        let app = app_for_prompt.clone();
        prompting.set(Some(connection.clone()));
        leptos::task::spawn_local(async move {
            // The dialog needs the connection's auth type and labels, as the panel lists them.
            if let Ok(list) = app_connections(app, None, Environment::Production).await {
                if let Some(e) = list.into_iter().find(|e| e.link_name == connection) {
                    dialog.set(Some(Target {
                        connection_id: e.id,
                        display_name: e.display_name,
                        link_name: e.link_name,
                        auth_type: e.auth_type,
                        same_for_all_envs: e.same_for_all_envs,
                        username_label: e.username_label,
                        password_label: e.password_label,
                        environments: vec![Environment::Production],
                        replace: false,
                    }));
                }
            }
        });
    });
    view! {
        <section class="component-view" aria-label=format!("Component {component}")>
            <Transition fallback=|| view! { <Skeleton/> }>
                {move || Suspend::new(async move {
                    match output.await {
                        Ok(ComponentRun::Ready(out)) => view! { <Output out=out/> }.into_any(),
                        Ok(ComponentRun::AuthorizationRequired { connection, prompt, message }) => {
                            let again = connection.clone();
                            if prompt {
                                // Prompt at once (after hydration too), unless the person closed it.
                                let connection = connection.clone();
                                Effect::new(move |_| {
                                    if dismissed.get_untracked().as_deref() != Some(connection.as_str())
                                        && dialog.get_untracked().is_none()
                                    {
                                        open_prompt.run(connection.clone());
                                    }
                                });
                            }
                            view! {
                                <div class="auth-prompt" role="alert" aria-label="Authorization required">
                                    <p>{message}</p>
                                    {prompt.then(|| view! {
                                        <button type="button" class="primary" on:click=move |_| {
                                            dismissed.set(None);
                                            open_prompt.run(again.clone());
                                        }>"Authorize now"</button>
                                    })}
                                </div>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        {move || dialog.get().map(|t| {
            view! {
                <AuthorizeDialog
                    target=t
                    on_done=move |_| {
                        dialog.set(None);
                        version.update(|v| *v += 1);
                    }
                    on_close=move |_| {
                        dismissed.set(prompting.get_untracked());
                        dialog.set(None);
                    }
                />
            }
        })}
    }
}

#[component]
fn Output(out: ComponentOutput) -> impl IntoView {
    let sections = out.sections.into_iter().map(|s| view! { <Section s=s/> }).collect_view();
    match out.kind {
        ComponentKind::Form => view! {
            <form class="form live-form" aria-label=out.name.clone() on:submit=|ev| ev.prevent_default()>
                <h2>{out.name.clone()}</h2>
                {sections}
                <label for="live-form-note">"Note"</label>
                <input id="live-form-note" name="note"/>
                <button type="submit" class="primary">"Submit"</button>
            </form>
        }
        .into_any(),
        _ => view! {
            <article aria-label=out.name.clone()>
                <h2>{out.name.clone()}</h2>
                {sections}
            </article>
        }
        .into_any(),
    }
}

#[component]
fn Section(s: DataSection) -> impl IntoView {
    view! {
        <section class="panel-data" aria-label=s.title.clone()>
            <h3>{s.title.clone()}</h3>
            {if s.rows.is_empty() {
                view! { <p class="muted">"No records."</p> }.into_any()
            } else {
                view! {
                    <table class="stack" aria-label=s.title.clone()>
                        <thead><tr>{s.columns.iter().map(|c| view! { <th scope="col">{c.clone()}</th> }).collect_view()}</tr></thead>
                        <tbody>
                            {s.rows.iter().map(|r| view! {
                                <tr>{r.iter().zip(&s.columns).map(|(v, c)| view! { <td data-label=c.clone()>{v.clone()}</td> }).collect_view()}</tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
