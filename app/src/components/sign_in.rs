use super::session;
use crate::auth::Login;
use crate::error::AppError;
use leptos::prelude::*;

/// The sign-in form (an ActionForm, so it works before hydration), going to `next` after.
/// Used by the sign-in page and by the embedded panel, which signs in inside its frame.
#[component]
pub fn SignInForm(#[prop(into)] next: Signal<String>) -> impl IntoView {
    let cx = session();
    // A form posted before hydration (or without JavaScript) comes back to this page with the
    // error in the URL (`__path`, `__err`). The session's action is made above the router, which
    // provides that error, so it is read here: shown until the client's own first answer arrives.
    let posted = use_context::<leptos::server::ServerActionError>()
        .filter(|e| e.path() == <Login as leptos::server_fn::ServerFn>::PATH)
        .map(|e| leptos::server_fn::error::ServerFnUrlError::<AppError>::decode_err(e.err()));
    let error = move || match cx.login.value().get() {
        Some(result) => result.err(),
        None if cx.login.version().get() == 0 => posted.clone(),
        None => None,
    };
    view! {
        <ActionForm action=cx.login attr:class="card form" attr:aria-label="Sign in">
            <input type="hidden" name="next" prop:value=next/>
            <label for="email">"Email"</label>
            <input id="email" name="email" type="email" autocomplete="username" required maxlength="254"/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"/>
            {move || error().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
            <button type="submit" class="primary" disabled=move || cx.login.pending().get()>"Sign in"</button>
        </ActionForm>
    }
}
