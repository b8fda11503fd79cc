//! Toasts: short messages after an action succeeds or fails ("Connected as Alice.", "Access
//! saved."), shown at the bottom of the page in a live region, each closing by itself after a
//! few seconds or with its ✕.

use super::icons::{Glyph, Icon};
use leptos::prelude::*;

/// How a toast looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Toast {
    id: u64,
    tone: Tone,
    text: String,
}

/// The page's toasts (provided once by the app).
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next: StoredValue<u64>,
}

/// Seconds a toast stays.
const SHOWN_MS: u32 = 6_000;

impl Toasts {
    pub fn show(self, tone: Tone, text: impl Into<String>) {
        let id = self.next.get_value();
        self.next.set_value(id + 1);
        self.list.update(|l| l.push(Toast { id, tone, text: text.into() }));
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(SHOWN_MS).await;
            self.dismiss(id);
        });
    }

    fn dismiss(self, id: u64) {
        self.list.update(|l| l.retain(|t| t.id != id));
    }
}

pub fn provide_toasts() {
    provide_context(Toasts { list: RwSignal::new(Vec::new()), next: StoredValue::new(0) });
}

/// Shows a success toast (does nothing outside the app, e.g. in a test without the context).
pub fn success(text: impl Into<String>) {
    if let Some(t) = use_context::<Toasts>() {
        t.show(Tone::Success, text);
    }
}

/// Shows a failure toast.
pub fn failure(text: impl Into<String>) {
    if let Some(t) = use_context::<Toasts>() {
        t.show(Tone::Failure, text);
    }
}

/// Shows a failure toast saying what could not be done and why ("Could not revoke Sales CRM:
/// …"), for actions whose own place may be out of view (a confirmation that has closed).
pub fn could_not(what: &str, error: &crate::error::AppError) {
    failure(format!("Could not {what}: {error}"));
}

/// Where toasts appear: a polite live region, so screen readers read them without moving focus.
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let _ = SHOWN_MS;
    view! {
        <div class="toasts" role="status" aria-live="polite" aria-label="Notifications">
            <For each=move || toasts.list.get() key=|t| t.id let:t>
                <div class=match t.tone { Tone::Success => "toast ok", Tone::Failure => "toast off" }>
                    <span>{t.text.clone()}</span>
                    <button type="button" class="icon-button" aria-label="Dismiss notification"
                        on:click=move |_| toasts.dismiss(t.id)>
                        <Icon glyph=Glyph::Close/>
                    </button>
                </div>
            </For>
        </div>
    }
}
