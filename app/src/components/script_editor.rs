//! The script editor of a workflow or function: its steps as text with a syntax check as it is
//! typed, Save, **Integrations** (the connections panel for the connections the script uses —
//! the help page's third entry point) and **Test** (one step run as the builder in Development,
//! showing the service's status, headers and body).

use super::{toast, ErrorMessage, Skeleton};
use crate::invoke::InvokeResponse;
use crate::scripts::{get_script, parse, SaveScript, StepTest, TestScriptStep};
use leptos::prelude::*;

#[component]
pub fn ScriptEditor(app: String, component: String, on_integrations: Callback<()>) -> impl IntoView {
    // Loaded in the browser: the text then changes under the builder's hands only.
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let target = StoredValue::new((app, component));
    let script = LocalResource::new(move || {
        let (app, component) = target.get_value();
        get_script(app, component)
    });
    view! {
        <Show when=move || mounted.get() fallback=|| view! { <Skeleton label="Loading the script…"/> }>
            <Transition fallback=|| view! { <Skeleton label="Loading the script…"/> }>
                {move || Suspend::new(async move {
                    let (app, component) = target.get_value();
                    match script.await {
                        Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                        Ok(s) => view! { <Editor app component name=s.name text=s.text on_integrations/> }.into_any(),
                    }
                })}
            </Transition>
        </Show>
    }
}

#[component]
fn Editor(app: String, component: String, name: String, text: String, on_integrations: Callback<()>) -> impl IntoView {
    let text = RwSignal::new(text);
    let saved = RwSignal::new(text.get_untracked());
    let save = ServerAction::<SaveScript>::new();
    let test = ServerAction::<TestScriptStep>::new();
    let step = RwSignal::new(0usize);
    let checked = Memo::new(move |_| parse(&text.get()));
    Effect::new(move |_| match save.value().get() {
        Some(Ok(n)) => {
            saved.set(text.get_untracked());
            toast::success(format!("Script saved ({}).", steps_count(n)));
        }
        Some(Err(e)) => toast::could_not("save the script", &e),
        None => {}
    });
    let dirty = move || text.get() != saved.get();
    let (app_save, component_save) = (app.clone(), component.clone());
    let on_save = move |_| {
        save.dispatch(SaveScript {
            app: app_save.clone(),
            component: component_save.clone(),
            text: text.get_untracked(),
        });
    };
    let on_test = move |_| {
        test.dispatch(TestScriptStep {
            app: app.clone(),
            component: component.clone(),
            text: text.get_untracked(),
            step: step.get_untracked(),
        });
    };
    let steps = move || checked.get().map(|s| s.into_iter().map(|s| s.title).collect::<Vec<_>>()).unwrap_or_default();
    let label = format!("Script of {name}");
    view! {
        <section class="script-editor" aria-label="Script editor">
            <div class="script-bar" role="toolbar" aria-label="Script editor">
                <strong>{name.clone()}</strong>
                <button type="button" class="primary" on:click=on_save
                    disabled=move || checked.get().is_err() || !dirty() || save.pending().get()>"Save"</button>
                <button type="button" aria-label="Integrations used by this script" on:click=move |_| on_integrations.run(())>
                    "Integrations"
                </button>
                <label for="test-step">"Step to test"</label>
                <select id="test-step" on:change=move |ev| step.set(event_target_value(&ev).parse().unwrap_or(0))>
                    {move || steps().into_iter().enumerate().map(|(i, title)| view! {
                        <option value=i.to_string() selected=move || step.get() == i>{title}</option>
                    }).collect_view()}
                </select>
                <button type="button" on:click=on_test
                    disabled=move || checked.get().map(|s| s.is_empty()).unwrap_or(true) || test.pending().get()>"Test"</button>
            </div>
            <label for="script-text">{label}</label>
            <textarea id="script-text" class="script-text" rows="10" spellcheck="false"
                aria-describedby="script-check" aria-invalid=move || checked.get().is_err().to_string()
                prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))>
            </textarea>
            <p class="muted">"One step per line: " <code>"<title>: GET <connection> {api_base}/<path>"</code> " (also POST, PUT or PATCH with a JSON body after the URL, and DELETE); lines starting with # are comments."</p>
            <div id="script-check" role="status" aria-label="Syntax check">
                {move || match checked.get() {
                    Ok(s) => view! { <p class="ok">{format!("Syntax OK — {}{}", steps_count(s.len()), if dirty() { ", not saved" } else { "" })}</p> }.into_any(),
                    Err(errors) => view! {
                        <ul class="error">{errors.into_iter().map(|e| view! { <li>{e.to_string()}</li> }).collect_view()}</ul>
                    }.into_any(),
                }}
            </div>
            {move || save.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage error=e/> })}
            {move || test.value().get().map(|r| match r {
                Err(e) => view! { <ErrorMessage error=e/> }.into_any(),
                Ok(StepTest::Answered(res)) => view! { <TestResult res/> }.into_any(),
                Ok(StepTest::AuthorizationRequired { connection, prompt, message }) => view! {
                    <section class="card test-result" aria-label="Test result">
                        <h3>"Authorization needed"</h3>
                        <p role="alert">{message}</p>
                        <p class="muted">{format!("The step uses '{connection}' in Development.")}</p>
                        {prompt.then(|| view! {
                            <button type="button" class="primary" on:click=move |_| on_integrations.run(())>
                                "Authorize in Integrations"
                            </button>
                        })}
                    </section>
                }.into_any(),
            })}
        </section>
    }
}

const BODY_SHOWN: usize = 20_000;

/// "1 step", "2 steps".
fn steps_count(n: usize) -> String {
    if n == 1 {
        "1 step".into()
    } else {
        format!("{n} steps")
    }
}

#[component]
fn TestResult(res: InvokeResponse) -> impl IntoView {
    let ok = (200..300).contains(&res.status);
    // Enough to read; a multi-megabyte answer would only slow the page down.
    let body: String = res.body.chars().take(BODY_SHOWN).collect();
    view! {
        <section class="card test-result" aria-label="Test result">
            <h3>"Test result"</h3>
            <p><span class=if ok { "status ok" } else { "status off" }>{format!("HTTP {}", res.status)}</span>
               " " <span class="muted">{format!("in {} ms", res.duration_ms)}</span></p>
            <details>
                <summary>{format!("Headers ({})", res.headers.len())}</summary>
                <table class="stack" aria-label="Response headers">
                    <tbody>{res.headers.into_iter().map(|(k, v)| view! { <tr><th scope="row">{k}</th><td>{v}</td></tr> }).collect_view()}</tbody>
                </table>
            </details>
            <pre class="body" aria-label="Response body">{body}</pre>
        </section>
    }
}
