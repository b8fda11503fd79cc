//! The authorization dialog: account name, the credentials the auth type needs, the
//! environments, "Reuse" of an account authorized before or "Link New Account"; for OAuth2 the
//! provider's page opens in a popup while a 90-second countdown runs ([`super::authorize_flow`]).
//! On success the dialog closes and a toast says "Connected as <account>".

use super::authorize_flow::{Flow, FlowState};
use super::dialog::Modal;
use super::toast;
use crate::authorizations::{reusable_accounts, AuthorizeConnection, AuthorizeOutcome, CredentialsInput, ReuseAccount};
use crate::domain::{AuthType, Environment};
use leptos::prelude::*;

/// What the dialog needs to know about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub connection_id: i64,
    pub display_name: String,
    /// The connection's link name (named in the embedded panel's events).
    pub link_name: String,
    pub auth_type: AuthType,
    pub same_for_all_envs: bool,
    pub username_label: String,
    pub password_label: String,
    /// Environments to preselect (the one whose Authorize was clicked).
    pub environments: Vec<Environment>,
    /// Reauthorize / Switch: replace the current authorization.
    pub replace: bool,
}

impl Target {
    /// The dialog for a panel entry in `environment` (`replace`: Switch rather than Authorize).
    pub fn for_entry(entry: &crate::connections::ConnectionEntry, environment: Environment, replace: bool) -> Self {
        Target {
            connection_id: entry.id,
            display_name: entry.display_name.clone(),
            link_name: entry.link_name.clone(),
            auth_type: entry.auth_type,
            same_for_all_envs: entry.same_for_all_envs,
            username_label: entry.username_label.clone(),
            password_label: entry.password_label.clone(),
            environments: vec![environment],
            replace,
        }
    }
}

#[component]
pub fn AuthorizeDialog(
    target: Target,
    #[prop(into)] on_done: Callback<()>,
    #[prop(into)] on_close: Callback<()>,
) -> impl IntoView {
    let authorize = ServerAction::<AuthorizeConnection>::new();
    let reuse = ServerAction::<ReuseAccount>::new();
    let account_name = RwSignal::new(String::new());
    let api_key = RwSignal::new(String::new());
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let envs: Vec<(Environment, RwSignal<bool>)> = Environment::ALL
        .into_iter()
        .map(|e| (e, RwSignal::new(target.same_for_all_envs || target.environments.contains(&e))))
        .collect();
    // Environments are the builders' concern: everyone else authorizes for the environment they
    // are in (live mode: production), without being shown the choice.
    let builder = use_context::<super::SessionCx>().map(|cx| cx.user);
    let builder =
        move || builder.and_then(|u| u.get()).and_then(Result::ok).flatten().is_some_and(|u| u.role.is_builder());
    let flow = Flow::new();
    // Closing the dialog while the service's window is open cancels that flow.
    on_cleanup(move || flow.abandon());
    let link_new = RwSignal::new(false);
    let reuse_choice = RwSignal::new(String::new());
    let reuse_name = RwSignal::new(String::new());
    let cid = target.connection_id;
    let options = Resource::new(move || cid, reusable_accounts);

    let chosen_envs = {
        let envs = envs.clone();
        move || envs.iter().filter(|(_, s)| s.get_untracked()).map(|(e, _)| *e).collect::<Vec<_>>()
    };
    let submit = {
        let chosen_envs = chosen_envs.clone();
        let replace = target.replace;
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            flow.state.set(FlowState::Idle);
            authorize.dispatch(AuthorizeConnection {
                connection_id: cid,
                account_name: account_name.get_untracked(),
                environments: chosen_envs(),
                credentials: CredentialsInput {
                    api_key: api_key.get_untracked(),
                    username: username.get_untracked(),
                    password: password.get_untracked(),
                },
                replace,
            });
        }
    };
    let do_reuse = {
        let chosen_envs = chosen_envs.clone();
        move |_| {
            let Ok(account_id) = reuse_choice.get_untracked().parse::<i64>().map(crate::domain::AccountId) else {
                return;
            };
            let name = reuse_name.get_untracked();
            reuse.dispatch(ReuseAccount {
                connection_id: cid,
                account_id,
                environments: chosen_envs(),
                account_name: (!name.trim().is_empty()).then_some(name),
            });
        }
    };

    // Done: say so in a toast, refresh what shows the connection, close.
    let finished = Callback::new(move |message: String| {
        toast::success(message);
        on_done.run(());
        on_close.run(());
    });
    let connected = Callback::new(move |account: String| finished.run(format!("Connected as {account}.")));
    // API key / basic: done at once. OAuth2: open the provider's page and count down.
    Effect::new(move |_| match authorize.value().get() {
        Some(Ok(AuthorizeOutcome::Authorized { account_name, verified })) => finished.run(if verified {
            format!("Connected as {account_name}.")
        } else {
            format!(
                "Connected as {account_name}. Saved — not verified: this service has no test request, so the \
                 credentials are checked when first used."
            )
        }),
        Some(Ok(AuthorizeOutcome::Redirect { flow: id, authorize_url, window_secs })) => {
            flow.start(id, authorize_url, window_secs, connected)
        }
        _ => {}
    });
    let display_name = target.display_name.clone();
    Effect::new(move |_| {
        if let Some(Ok(())) = reuse.value().get() {
            finished.run(format!("{display_name} now uses the chosen account."));
        }
    });

    let error = move || {
        authorize
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| reuse.value().get().and_then(|r| r.err()))
            .map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })
    };
    // One status line, one countdown; while waiting, reopen the service's window or cancel.
    let status_view = move || {
        let s = flow.state.get();
        (s != FlowState::Idle).then(|| {
            let waiting = match &s {
                FlowState::Waiting { seconds_left } => Some(view! {
                    <p class="countdown" role="timer" aria-label="Time left to authorize">{format!("{seconds_left} s")}</p>
                }),
                _ => None,
            };
            let controls = s.waiting().then(|| view! {
                <div class="row">
                    <button type="button" on:click=move |_| flow.reopen()>"Reopen sign-in window"</button>
                    <button type="button" on:click=move |_| flow.cancel()>"Cancel"</button>
                </div>
            });
            view! { <div class=s.class() role="status">{waiting}<p>{s.message()}</p>{controls}</div> }
        })
    };
    let submit_label = move || if flow.state.read().retry() { "Retry" } else { "Authorize" };
    let locked = target.same_for_all_envs;
    let auth_type = target.auth_type;
    let (ul, pl) = (target.username_label.clone(), target.password_label.clone());

    view! {
        <Modal title=format!("Authorize {}", target.display_name) on_close=on_close>
            <Transition fallback=|| ()>
                {move || {
                let do_reuse = do_reuse.clone();
                Suspend::new(async move {
                    let list = options.await.unwrap_or_default();
                    if list.is_empty() || link_new.get() {
                        return None;
                    }
                    let first = list.first().map(|o| o.id.to_string()).unwrap_or_default();
                    if reuse_choice.get_untracked().is_empty() {
                        reuse_choice.set(first);
                    }
                    let needs_name = {
                        let list = list.clone();
                        move || list.iter().any(|o| o.id.to_string() == reuse_choice.get() && o.needs_name)
                    };
                    Some(view! {
                        <section class="reuse" aria-label="Reuse authorization">
                            <label for="reuse-account">"Authorized Account"</label>
                            <select id="reuse-account" bind:value=reuse_choice>
                                {list.iter().map(|o| view! { <option value=o.id.to_string()>{o.label.clone()}</option> }).collect_view()}
                            </select>
                            <Show when=needs_name.clone()>
                                <label for="reuse-name">"Name this authorized account"</label>
                                <input id="reuse-name" bind:value=reuse_name maxlength="50"/>
                            </Show>
                            <div class="row">
                                <button type="button" class="primary" on:click=do_reuse.clone()>"Reuse"</button>
                                <button type="button" on:click=move |_| link_new.set(true)>"Link New Account"</button>
                            </div>
                        </section>
                    })
                })}}
            </Transition>
            <form class="form" on:submit=submit aria-label="New authorization">
                <label for="account-name">"Name of the Authorization Account"</label>
                <input id="account-name" bind:value=account_name maxlength="50" required/>
                {match auth_type {
                    AuthType::ApiKey => view! {
                        <label for="api-key">"API key"</label>
                        <input id="api-key" type="password" autocomplete="off" bind:value=api_key required/>
                    }.into_any(),
                    AuthType::Basic => view! {
                        <label for="basic-username">{ul}</label>
                        <input id="basic-username" autocomplete="off" bind:value=username required/>
                        <label for="basic-password">{pl}</label>
                        <input id="basic-password" type="password" autocomplete="off" bind:value=password required/>
                    }.into_any(),
                    AuthType::OAuth2 => view! {
                        <p class="muted">"You will sign in on the service's page and grant access within 90 seconds."</p>
                    }.into_any(),
                }}
                <fieldset hidden=move || !builder()>
                    <legend>"Environments"</legend>
                    {locked.then(|| view! { <p class="muted">"This connection uses the same authorization for all environments."</p> })}
                    {envs.iter().map(|(e, sig)| {
                        let id = format!("env-{}", e.as_str());
                        let for_id = id.clone();
                        let sig = *sig;
                        view! {
                            <label class="check" for=for_id>
                                <input id=id type="checkbox" bind:checked=sig disabled=locked/>
                                {e.label()}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                {error}
                {status_view}
                <Show when=move || !flow.state.read().waiting()>
                    <button type="submit" class="primary" disabled=move || authorize.pending().get()>{submit_label}</button>
                </Show>
            </form>
        </Modal>
    }
}
