//! The one dialog and the one slide-over every page uses, and the confirmation destructive
//! actions ask for. Both are `role="dialog"` and `aria-modal`, over a backdrop: focus moves in
//! when they open and stays in (Tab and Shift+Tab wrap), Esc and ✕ close them, and focus goes
//! back to what opened them. A slide-over also closes on a click outside it and starts below
//! the page's top bar.

use super::icons::{Glyph, Icon};
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
    // The stylesheet puts it a one-line bar's height down; where the bar is taller (it wraps on
    // a phone), it starts where the bar ends, measured once open and again on resize.
    let top = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    {
        let measure = move || top.set(bar_height().map(|h| format!("{h}px")));
        Effect::new(move |_| measure());
        let resized = window_event_listener(leptos::ev::resize, move |_| measure());
        on_cleanup(move || resized.remove());
    }
    view! {
        <div class="backdrop slide-backdrop" style:top=move || top.get() on:click=move |_| on_close.run(())></div>
        <Surface class="slider" top=top title=title close_label=close_label on_close=on_close children=children/>
    }
}

/// The height of the page's top bar (the builder's, an application's or the main one), if the
/// page has one.
#[cfg(feature = "hydrate")]
fn bar_height() -> Option<i32> {
    use leptos::wasm_bindgen::JsCast;
    let bar = document().query_selector("header.builder-header, header.app-header, header.topnav").ok().flatten()?;
    Some(bar.dyn_into::<leptos::web_sys::HtmlElement>().ok()?.offset_height())
}

/// What [`Modal`] and [`SlideOver`] share: the labelled `role="dialog"` box with its title and
/// ✕, the keys, and the focus handling.
#[component]
fn Surface(
    class: &'static str,
    /// Where it starts from the top, when not where the stylesheet says.
    #[prop(optional)]
    top: Option<RwSignal<Option<String>>>,
    title: String,
    close_label: String,
    on_close: Callback<()>,
    children: Children,
) -> impl IntoView {
    let root = NodeRef::<html::Div>::new();
    focus_in_and_back(root, on_close);
    let label = title.clone();
    view! {
        <div class=class role="dialog" aria-modal="true" aria-label=label node_ref=root
            style:top=move || top.and_then(|t| t.get())
            on:keydown=move |ev| on_key(&ev, root, on_close)>
            <header>
                <h2>{title}</h2>
                <button type="button" class="icon-button" aria-label=close_label data-dismiss="true"
                    on:click=move |_| on_close.run(())>
                    <Icon glyph=Glyph::Close/>
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
    /// What it affects, as labelled lists ("Will ask for authorization again" → the
    /// components); an empty list is left out.
    pub lists: Vec<(String, Vec<String>)>,
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
    let Confirmation { title, rows, lists, consequence, confirm } = confirmation;
    view! {
        <Modal title=title on_close=on_close close_label="Cancel and close">
            <dl class="facts" aria-label="What it affects">
                {rows.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
            </dl>
            {lists.into_iter().filter(|(_, items)| !items.is_empty()).map(|(label, items)| view! {
                <h3>{label.clone()}</h3>
                <ul aria-label=label>{items.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul>
            }).collect_view()}
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
/// `data-autofocus`); on close, gives focus back. When focus was lost to the page (the control
/// that had it was re-rendered away), Tab brings it back into the topmost dialog and Esc closes
/// that one.
fn focus_in_and_back(root: NodeRef<html::Div>, on_close: Callback<()>) {
    #[cfg(feature = "hydrate")]
    {
        let opener = StoredValue::new_local(None::<leptos::web_sys::HtmlElement>);
        // The dialog the opener sits in (a confirmation opened from the slider): where focus
        // goes when the opener itself is gone (the list it was in was refreshed).
        let around = StoredValue::new_local(None::<leptos::web_sys::Element>);
        Effect::new(move |done: Option<bool>| {
            if done == Some(true) {
                return true;
            }
            let Some(el) = root.get() else { return false };
            let active = focus::active();
            around.set_value(active.as_ref().and_then(|a| a.closest("[role=dialog]").ok().flatten()));
            opener.set_value(active);
            focus::first(&el);
            true
        });
        let lost = window_event_listener(leptos::ev::keydown, move |ev| {
            let Some(el) = root.get_untracked() else { return };
            if !focus::lost() || !focus::topmost(&el) {
                return;
            }
            match ev.key().as_str() {
                "Escape" => on_close.run(()),
                "Tab" => {
                    ev.prevent_default();
                    focus::first(&el);
                }
                _ => {}
            }
        });
        on_cleanup(move || {
            lost.remove();
            match (opener.try_get_value().flatten(), around.try_get_value().flatten()) {
                (Some(opener), _) if opener.is_connected() => {
                    let _ = opener.focus();
                }
                (_, Some(around)) if around.is_connected() => focus::first(&around),
                _ => {}
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (root, on_close);
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

    /// Focus is nowhere in particular (on the page's body).
    pub fn lost() -> bool {
        let body = document().body();
        match document().active_element() {
            None => true,
            Some(a) => body.is_some_and(|b| AsRef::<Element>::as_ref(&b) == &a),
        }
    }

    /// `root` is the last open modal dialog in the page (the one on top).
    pub fn topmost(root: &Element) -> bool {
        let Ok(all) = document().query_selector_all("[role=dialog][aria-modal=true]") else { return false };
        all.length() > 0
            && all.item(all.length() - 1).is_some_and(|n| AsRef::<leptos::web_sys::Node>::as_ref(root) == &n)
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
