//! The one dialog and the one slide-over every page uses, and the confirmation destructive
//! actions ask for. Both are `role="dialog"` and `aria-modal`, over a backdrop: focus moves in
//! when they open and stays in (Tab and Shift+Tab wrap), Esc and ✕ close them, and focus goes
//! back to what opened them. A slide-over also closes on a click outside it and starts below
//! the page's top bar.

use leptos::html;
use leptos::prelude::*;

/// A centred dialog. The backdrop does not close it: what was typed in it is not lost to a
/// stray click.
#[component]
pub fn Modal(
    #[prop(into)] title: String,
    #[prop(into)] on_close: Callback<()>,
    /// The ✕ button's accessible name.
    #[prop(into, default = "Close".to_string())]
    close_label: String,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="backdrop"></div>
        <Surface class="dialog" title=title close_label=close_label on_close=on_close children=children/>
    }
}

/// A panel sliding in from the right, below the top bar; a click outside it closes it.
#[component]
pub fn SlideOver(
    #[prop(into)] title: String,
    #[prop(into)] close_label: String,
    #[prop(into)] on_close: Callback<()>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="backdrop slide-backdrop" on:click=move |_| on_close.run(())></div>
        <Surface class="slider" title=title close_label=close_label on_close=on_close children=children/>
    }
}

/// What [`Modal`] and [`SlideOver`] share: the labelled `role="dialog"` box with its title and
/// ✕, the keys, and the focus handling.
#[component]
fn Surface(
    class: &'static str,
    title: String,
    close_label: String,
    on_close: Callback<()>,
    children: Children,
) -> impl IntoView {
    let root = NodeRef::<html::Div>::new();
    focus_in_and_back(root);
    let label = title.clone();
    view! {
        <div class=class role="dialog" aria-modal="true" aria-label=label node_ref=root
            on:keydown=move |ev| on_key(&ev, root, on_close)>
            <header>
                <h2>{title}</h2>
                <button type="button" class="icon-button" aria-label=close_label data-dismiss="true"
                    on:click=move |_| on_close.run(())>
                    <CloseIcon/>
                </button>
            </header>
            {children()}
        </div>
    }
}

/// What a destructive action affects, read before it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The dialog's title, naming the action and the thing ("Revoke Sales CRM").
    pub title: String,
    /// Facts as label/value rows ("Environments" → "All environments").
    pub rows: Vec<(String, String)>,
    /// What uses it, listed under `items_label`.
    pub items_label: String,
    pub items: Vec<String>,
    /// What happens, in sentences.
    pub consequence: String,
    /// The confirming button's text ("Revoke").
    pub confirm: String,
}

/// Asks before a destructive action: names the thing, what it affects and what happens; the
/// dangerous button is not the one focused first (Cancel is).
#[component]
pub fn ConfirmDialog(
    confirmation: Confirmation,
    #[prop(into)] on_confirm: Callback<()>,
    #[prop(into)] on_close: Callback<()>,
) -> impl IntoView {
    let Confirmation { title, rows, items_label, items, consequence, confirm } = confirmation;
    view! {
        <Modal title=title on_close=on_close close_label="Cancel and close">
            <dl class="facts" aria-label="What it affects">
                {rows.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
            </dl>
            {(!items.is_empty()).then(|| view! {
                <h3>{items_label.clone()}</h3>
                <ul aria-label=items_label>{items.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul>
            })}
            <p>{consequence}</p>
            <div class="row dialog-actions">
                <button type="button" data-autofocus="true" on:click=move |_| on_close.run(())>"Cancel"</button>
                <button type="button" class="danger" on:click=move |_| {
                    on_close.run(());
                    on_confirm.run(());
                }>{confirm}</button>
            </div>
        </Modal>
    }
}

/// The ✕ of dialogs and panels (an inline SVG, hidden from assistive technology: the button
/// carries the name).
#[component]
pub fn CloseIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path d="M6 6l12 12M18 6L6 18" stroke="currentColor" stroke-width="2" stroke-linecap="round" fill="none"/>
        </svg>
    }
}

/// Esc closes; Tab and Shift+Tab wrap around inside `root`. Handled here, the key does not
/// reach an enclosing dialog (a confirmation opened from the slide-over closes alone).
fn on_key(ev: &leptos::ev::KeyboardEvent, root: NodeRef<html::Div>, on_close: Callback<()>) {
    match ev.key().as_str() {
        "Escape" => {
            ev.prevent_default();
            ev.stop_propagation();
            on_close.run(());
        }
        "Tab" => {
            ev.stop_propagation();
            #[cfg(feature = "hydrate")]
            if let Some(el) = root.get_untracked() {
                focus::wrap(ev, &el);
            }
        }
        _ => {}
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = root;
}

/// On open, remembers what had focus and focuses the first control (or one marked
/// `data-autofocus`); on close, gives focus back.
fn focus_in_and_back(root: NodeRef<html::Div>) {
    #[cfg(feature = "hydrate")]
    {
        let opener = StoredValue::new_local(None::<leptos::web_sys::HtmlElement>);
        Effect::new(move |done: Option<bool>| {
            if done == Some(true) {
                return true;
            }
            let Some(el) = root.get() else { return false };
            opener.set_value(focus::active());
            focus::first(&el);
            true
        });
        on_cleanup(move || {
            if let Some(opener) = opener.try_get_value().flatten() {
                if opener.is_connected() {
                    let _ = opener.focus();
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = root;
}

#[cfg(feature = "hydrate")]
mod focus {
    use leptos::prelude::document;
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::{Element, HtmlElement, KeyboardEvent};

    const FOCUSABLE: &str = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), \
                             select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

    pub fn active() -> Option<HtmlElement> {
        document().active_element().and_then(|e| e.dyn_into::<HtmlElement>().ok())
    }

    /// The visible controls inside `root`, in document order.
    fn controls(root: &Element) -> Vec<HtmlElement> {
        let Ok(list) = root.query_selector_all(FOCUSABLE) else { return Vec::new() };
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.dyn_into::<HtmlElement>().ok())
            .filter(|e| e.offset_width() > 0 || e.offset_height() > 0)
            .collect()
    }

    pub fn first(root: &Element) {
        let marked =
            root.query_selector("[data-autofocus]").ok().flatten().and_then(|e| e.dyn_into::<HtmlElement>().ok());
        let all = controls(root);
        // The first control that is not the ✕ (people start with the content, not with closing).
        let target = marked
            .or_else(|| all.iter().find(|e| !e.has_attribute("data-dismiss")).cloned())
            .or_else(|| all.first().cloned());
        if let Some(t) = target {
            let _ = t.focus();
        }
    }

    pub fn wrap(ev: &KeyboardEvent, root: &Element) {
        let all = controls(root);
        let (Some(first), Some(last)) = (all.first(), all.last()) else {
            ev.prevent_default();
            return;
        };
        let current = active();
        let inside = current.as_ref().is_some_and(|c| root.contains(Some(c)));
        let at = |e: &HtmlElement| current.as_ref().is_some_and(|c| c == e);
        if ev.shift_key() && (at(first) || !inside) {
            ev.prevent_default();
            let _ = last.focus();
        } else if !ev.shift_key() && (at(last) || !inside) {
            ev.prevent_default();
            let _ = first.focus();
        }
    }
}
