//! Widgets reused across pages: the connections panel and its details, the authorize dialog,
//! the datasources section, the runtime view, embed events, and the session helpers.

pub mod authorize;
pub mod authorize_flow;
pub mod canvas;
pub mod datasources;
pub mod dialog;
pub mod embed_events;
pub mod embed_settings;
pub mod icons;
pub mod panel;
pub mod panel_details;
pub mod runtime;
pub mod script_editor;
pub mod sign_in;
pub mod toast;

use crate::auth::{current_user, Login, Logout, SessionUser};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// The signed-in user and the sign-in action that changes it, shared by every page. Signing out
/// is a plain form post ([`SignOut`]): the browser loads the sign-in page afresh.
#[derive(Clone, Copy)]
pub struct SessionCx {
    pub user: Resource<Result<Option<SessionUser>, AppError>>,
    pub login: ServerAction<Login>,
}

pub fn provide_session() {
    let login = ServerAction::<Login>::new();
    let user = Resource::new(move || login.version().get(), |_| current_user());
    provide_context(SessionCx { user, login });
}

pub fn session() -> SessionCx {
    expect_context::<SessionCx>()
}

/// Renders `children` with the signed-in user, or sends the visitor to the sign-in page.
#[component]
pub fn RequireUser<F, V>(children: F) -> impl IntoView
where
    F: Fn(SessionUser) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    let cx = session();
    view! {
        <Suspense fallback=|| view! { <Skeleton/> }>
            {
                let children = children.clone();
                move || {
                    let children = children.clone();
                    Suspend::new(async move {
                        match cx.user.await {
                            Ok(Some(user)) => children(user).into_any(),
                            Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                            Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                        }
                    })
                }
            }
        </Suspense>
    }
}

/// A server function's answer: "Loading…" until it arrives, then the error, or what `children`
/// makes of the value (`<Loaded resource=list let:list>…</Loaded>`).
#[component]
pub fn Loaded<T, F, V>(resource: Resource<Result<T, AppError>>, children: F) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(T) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=|| view! { <Skeleton/> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match resource.await {
                        Ok(value) => children(value).into_any(),
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// Renders `children` in the browser only, once this part of the page has hydrated (the server
/// and the first client render show `fallback`). For content whose data may change between the
/// server's render and the browser's own fetch, which would otherwise break hydration.
#[component]
pub fn ClientOnly(children: ChildrenFn, #[prop(into)] fallback: ViewFn) -> impl IntoView {
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    view! { <Show when=move || mounted.get() fallback=fallback>{children()}</Show> }
}

/// A loading placeholder: grey bars shaped like the content to come, with `label` for assistive
/// technology (`aria-busy`, not a live region: answers arrive in their own place).
#[component]
pub fn Skeleton(
    #[prop(into, default = "Loading…".into())] label: String,
    #[prop(default = 3)] rows: usize,
) -> impl IntoView {
    view! {
        <div class="skeleton" aria-busy="true">
            <span class="sr-only">{label}</span>
            {(0..rows).map(|_| view! { <div class="sk-row" aria-hidden="true"></div> }).collect_view()}
        </div>
    }
}

/// An error shown to a person, announced to assistive technology.
#[component]
pub fn ErrorMessage(error: AppError) -> impl IntoView {
    view! { <p class="error" role="alert">{error.to_string()}</p> }
}

/// The sign-out button: a plain form posting to the `logout` server function, which answers a
/// form post with a redirect to the sign-in page. It works the same before and after hydration,
/// the new page starts with no client state of the signed-out user, and the pages that show it
/// need none of `ActionForm`'s code (form decoding, actions) in their download.
#[component]
pub fn SignOut() -> impl IntoView {
    use leptos::server_fn::ServerFn;
    view! {
        <form method="post" action=Logout::PATH class="inline">
            <button type="submit" class="link-button">"Sign out"</button>
        </form>
    }
}

/// Top navigation for pages outside an application.
#[component]
pub fn TopNav(user: SessionUser) -> impl IntoView {
    let builder = user.role.is_builder();
    let admin = crate::policy::decide_workspace(user.role, crate::policy::WorkspaceAction::ManageApiKeys);
    view! {
        <header class="topnav">
            <a href="/" class="brand">"Connections"</a>
            <nav aria-label="Main">
                <a href="/">"Applications"</a>
                {builder.then(|| view! {
                    <a href="/microservices">"Microservices"</a>
                    <a href="/operations">"Operations"</a>
                    <a href="/settings/webhooks">"Webhooks"</a>
                })}
                {admin.then(|| view! { <a href="/settings/api-keys">"API keys"</a> })}
            </nav>
            <span class="who">
                <span class="user-name">{user.name.clone()}</span>
                " · "
                <span class="role">{user.role.label()}</span>
            </span>
            <SignOut/>
        </header>
    }
}

/// What revoking asks before it is done: the connection, the environments it covers (one "All
/// environments" row when they share one authorization), the components that will ask for
/// authorization again and the datasources whose syncs stop, and what happens at the service.
pub fn revoke_confirmation(
    name: &str,
    service: &str,
    environment: &str,
    shared: bool,
    components: &[String],
    datasources: &[String],
) -> dialog::Confirmation {
    let environments = if shared {
        "All environments (Development, Stage and Production share one authorization)".to_string()
    } else {
        environment.to_string()
    };
    let syncs = if datasources.is_empty() { "" } else { " Syncing the datasources listed fails until then." };
    dialog::Confirmation {
        title: format!("Revoke {name}"),
        rows: vec![
            ("Connection".into(), name.to_string()),
            ("Service".into(), service.to_string()),
            ("Environments".into(), environments),
        ],
        lists: vec![
            ("Will ask for authorization again".into(), components.to_vec()),
            ("Datasources that cannot sync".into(), datasources.to_vec()),
        ],
        consequence: format!(
            "The authorization is revoked at {service} and the stored credentials are removed. \
             Authorize it again to restore it.{syncs}"
        ),
        confirm: "Revoke".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::revoke_confirmation;

    #[test]
    fn the_revoke_confirmation_names_the_connection_its_environments_its_users_and_the_service() {
        let shared = revoke_confirmation(
            "Sales CRM",
            "Sandbox CRM",
            "Development",
            true,
            &["Form Deal intake".into()],
            &["CRM Deals".into()],
        );
        assert_eq!(shared.title, "Revoke Sales CRM");
        let envs: Vec<_> = shared.rows.iter().filter(|(k, _)| k == "Environments").collect();
        assert_eq!(envs.len(), 1, "one row when the authorization is shared");
        assert!(envs[0].1.starts_with("All environments"), "{:?}", envs);
        assert_eq!(
            shared.lists,
            vec![
                ("Will ask for authorization again".to_string(), vec!["Form Deal intake".to_string()]),
                ("Datasources that cannot sync".to_string(), vec!["CRM Deals".to_string()]),
            ]
        );
        assert!(shared.consequence.contains("revoked at Sandbox CRM"), "{}", shared.consequence);
        assert!(shared.consequence.contains("Syncing the datasources listed fails"), "{}", shared.consequence);
        let one = revoke_confirmation("Sales CRM", "Sandbox CRM", "Stage", false, &[], &[]);
        assert!(one.rows.contains(&("Environments".into(), "Stage".into())), "{:?}", one.rows);
        assert!(one.lists.iter().all(|(_, items)| items.is_empty()));
        assert!(!one.consequence.contains("datasources"), "{}", one.consequence);
    }
}
