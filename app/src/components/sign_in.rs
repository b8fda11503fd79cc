use super::session;
use leptos::prelude::*;

/// The sign-in form (an ActionForm, so it works before hydration), going to `next` after.
/// Used by the sign-in page and by the embedded panel, which signs in inside its frame.
#[component]
pub fn SignInForm(#[prop(into)] next: Signal<String>) -> impl IntoView {
    let cx = session();
    let error = move || cx.login.value().get().and_then(|r| r.err());
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
