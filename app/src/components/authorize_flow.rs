//! The OAuth2 part of the authorization dialog as a small state machine: idle → waiting for the
//! provider → connected, denied, expired, cancelled or popup closed. One place decides the
//! state ([`FlowState::tick`]); the dialog shows it in one status line with one countdown.
//!
//! While waiting, the dialog offers "Reopen sign-in window" and "Cancel"; when the window
//! expires or the flow is cancelled, the provider's popup is sent to `/oauth/ended`, which says
//! so and closes itself; a closed popup stops the wait and offers Retry.

use crate::authorizations::FlowStatus;
use leptos::prelude::*;

/// Where an OAuth2 authorization stands, as the dialog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowState {
    Idle,
    Waiting {
        seconds_left: i64,
    },
    Connected {
        account_name: String,
    },
    Denied,
    Expired,
    Cancelled,
    /// The person closed the provider's window before answering.
    PopupClosed,
    Failed {
        message: String,
    },
}

impl FlowState {
    pub fn from_status(status: FlowStatus) -> Self {
        match status {
            FlowStatus::Pending { seconds_left } => FlowState::Waiting { seconds_left },
            FlowStatus::Connected { account_name } => FlowState::Connected { account_name },
            FlowStatus::Denied => FlowState::Denied,
            FlowStatus::Expired => FlowState::Expired,
            FlowStatus::Cancelled => FlowState::Cancelled,
            FlowStatus::Failed { message } => FlowState::Failed { message },
        }
    }

    pub fn waiting(&self) -> bool {
        matches!(self, FlowState::Waiting { .. })
    }

    /// The next state after a poll: the server's answer, and whether the popup has been seen
    /// closed (at this poll and the one before: the popup closes itself once it has handed
    /// the answer over, so one sighting is not yet "closed by the person"). A state that
    /// ended stays as it is.
    pub fn tick(self, status: FlowStatus, popup_gone: bool) -> Self {
        if !self.waiting() {
            return self;
        }
        match status {
            FlowStatus::Pending { .. } if popup_gone => FlowState::PopupClosed,
            other => FlowState::from_status(other),
        }
    }

    /// The status line.
    pub fn message(&self) -> String {
        match self {
            FlowState::Idle => String::new(),
            FlowState::Waiting { .. } => "Waiting for you to sign in and grant access in the service's window.".into(),
            FlowState::Connected { account_name } => format!("Connected as {account_name}."),
            FlowState::Denied => FlowStatus::Denied.message(),
            FlowState::Expired => {
                "The 90-second authorization window expired, so nothing was saved. Click Retry to start again.".into()
            }
            FlowState::Cancelled => FlowStatus::Cancelled.message(),
            FlowState::PopupClosed => {
                "The service's window was closed before access was granted. Click Retry to open it again.".into()
            }
            FlowState::Failed { message } => message.clone(),
        }
    }

    /// How the status line looks.
    pub fn class(&self) -> &'static str {
        match self {
            FlowState::Connected { .. } => "flow ok",
            FlowState::Waiting { .. } => "flow pending",
            _ => "flow off",
        }
    }

    /// Whether the main button says Retry (a flow ended without a connection).
    pub fn retry(&self) -> bool {
        matches!(
            self,
            FlowState::Denied
                | FlowState::Expired
                | FlowState::Cancelled
                | FlowState::PopupClosed
                | FlowState::Failed { .. }
        )
    }
}

/// The running flow: its state, its id and the provider's URL, and the popup.
#[derive(Clone, Copy)]
pub struct Flow {
    pub state: RwSignal<FlowState>,
    current: RwSignal<Option<(String, String)>>,
    #[cfg(feature = "hydrate")]
    popup: StoredValue<Option<leptos::web_sys::Window>, LocalStorage>,
}

impl Flow {
    pub fn new() -> Self {
        Flow {
            state: RwSignal::new(FlowState::Idle),
            current: RwSignal::new(None),
            #[cfg(feature = "hydrate")]
            popup: StoredValue::new_local(None),
        }
    }

    /// Opens the provider's page and waits for the answer; `on_connected` gets the account name.
    pub fn start(self, flow: String, authorize_url: String, window_secs: u64, on_connected: Callback<String>) {
        self.state.set(FlowState::Waiting { seconds_left: window_secs as i64 });
        self.current.set(Some((flow.clone(), authorize_url.clone())));
        #[cfg(feature = "hydrate")]
        {
            self.open(&authorize_url);
            browser::watch(self, flow, on_connected);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (flow, authorize_url, on_connected);
    }

    /// "Reopen sign-in window": the same page again (the flow and its countdown go on).
    pub fn reopen(self) {
        if let Some((_, url)) = self.current.get_untracked() {
            #[cfg(feature = "hydrate")]
            self.open(&url);
            #[cfg(not(feature = "hydrate"))]
            let _ = url;
        }
    }

    /// "Cancel": the server refuses a later consent; the popup says so and closes.
    pub fn cancel(self) {
        let Some((flow, _)) = self.current.get_untracked() else { return };
        self.state.set(FlowState::Cancelled);
        #[cfg(feature = "hydrate")]
        {
            self.end_popup("cancelled");
            leptos::task::spawn_local(async move {
                if let Err(e) = crate::authorizations::cancel_authorization(flow).await {
                    leptos::logging::warn!("could not cancel the authorization: {e}");
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = flow;
    }

    /// The dialog closed: an unfinished flow is cancelled (nobody is left to see its answer).
    pub fn abandon(self) {
        if self.state.try_get_untracked().is_some_and(|s| s.waiting()) {
            self.cancel();
        }
    }

    #[cfg(feature = "hydrate")]
    fn open(self, url: &str) {
        let popup = window().open_with_url_and_target_and_features(url, "cm-authorize", "popup,width=520,height=720");
        self.popup.set_value(popup.ok().flatten());
    }

    /// Sends the popup to `/oauth/ended?why=…`, which says why and closes itself.
    #[cfg(feature = "hydrate")]
    fn end_popup(self, why: &str) {
        if let Some(p) = self.popup.try_get_value().flatten() {
            if !p.closed().unwrap_or(true) {
                let origin = window().location().origin().unwrap_or_default();
                if p.location().set_href(&format!("{origin}/oauth/ended?why={why}")).is_err() {
                    let _ = p.close();
                }
            }
        }
    }
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{Flow, FlowState};
    use crate::authorizations::{authorization_status, complete_authorization, FlowStatus};
    use leptos::prelude::*;

    /// Polls the flow once a second (the server's clock decides) until it ends, watching the
    /// popup; stops when a newer flow started or the dialog is gone.
    pub fn watch(flow: Flow, id: String, on_connected: Callback<String>) {
        let handoff = listen_for_handoff(flow, id.clone(), on_connected);
        leptos::task::spawn_local(async move {
            let mut closed_before = false;
            loop {
                gloo_timers::future::TimeoutFuture::new(1000).await;
                let still_ours = flow.current.try_get_untracked().flatten().is_some_and(|(f, _)| f == id);
                let Some(state) = flow.state.try_get_untracked() else { break };
                if !still_ours || !state.waiting() {
                    break;
                }
                let closed_now = flow.popup.try_get_value().flatten().is_none_or(|p| p.closed().unwrap_or(true));
                let status = match authorization_status(id.clone()).await {
                    Ok(s) => s,
                    Err(e) => FlowStatus::Failed { message: e.to_string() },
                };
                let Some(state) = flow.state.try_get_untracked() else { break };
                let next = state.tick(status, closed_now && closed_before);
                closed_before = closed_now;
                if flow.state.try_set(next.clone()).is_some() {
                    break;
                }
                match next {
                    FlowState::Waiting { .. } => continue,
                    FlowState::Connected { account_name } => on_connected.run(account_name),
                    FlowState::Expired => flow.end_popup("expired"),
                    // Nobody can consent in a closed window: end the flow at the server too.
                    FlowState::PopupClosed => {
                        if let Err(e) = crate::authorizations::cancel_authorization(id.clone()).await {
                            leptos::logging::warn!("could not end the abandoned authorization: {e}");
                        }
                    }
                    _ => {}
                }
                break;
            }
            handoff.remove();
        });
    }

    /// The popup hands the provider's answer back when it has no session for this flow (the
    /// panel embedded on another site); only a message from this origin for this flow counts.
    /// Finishing it answers the outcome at once.
    fn listen_for_handoff(flow: Flow, id: String, on_connected: Callback<String>) -> WindowListenerHandle {
        use leptos::wasm_bindgen::JsValue;
        use leptos::web_sys::js_sys::Reflect;
        window_event_listener(leptos::ev::message, move |ev| {
            if ev.origin() != window().location().origin().unwrap_or_default() {
                return;
            }
            let data = ev.data();
            let field = |k: &str| Reflect::get(&data, &JsValue::from_str(k)).ok().and_then(|v| v.as_string());
            if field("type").as_deref() != Some("connections:oauth_handoff") || field("flow").as_deref() != Some(&id) {
                return;
            }
            let (id, code, iss, error, error_description) =
                (id.clone(), field("code"), field("iss"), field("error"), field("error_description"));
            leptos::task::spawn_local(async move {
                let status = match complete_authorization(id, code, iss, error, error_description).await {
                    Ok(s) => s,
                    Err(e) => FlowStatus::Failed { message: e.to_string() },
                };
                let Some(state) = flow.state.try_get_untracked() else { return };
                let next = state.tick(status, false);
                if flow.state.try_set(next.clone()).is_none() {
                    if let FlowState::Connected { account_name } = next {
                        on_connected.run(account_name);
                    }
                }
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FlowState;
    use crate::authorizations::FlowStatus;

    fn waiting() -> FlowState {
        FlowState::Waiting { seconds_left: 80 }
    }

    #[test]
    fn a_closed_popup_ends_the_wait_only_while_the_server_still_waits() {
        assert_eq!(waiting().tick(FlowStatus::Pending { seconds_left: 70 }, true), FlowState::PopupClosed);
        assert_eq!(
            waiting().tick(FlowStatus::Pending { seconds_left: 70 }, false),
            FlowState::Waiting { seconds_left: 70 }
        );
        // The popup closes itself after handing the answer over: the answer wins.
        let connected = FlowStatus::Connected { account_name: "Alice".into() };
        assert_eq!(waiting().tick(connected, true), FlowState::Connected { account_name: "Alice".into() });
    }

    #[test]
    fn an_ended_flow_stays_ended() {
        let late = FlowStatus::Connected { account_name: "late".into() };
        for ended in [FlowState::Cancelled, FlowState::Expired, FlowState::PopupClosed, FlowState::Denied] {
            assert_eq!(ended.clone().tick(late.clone(), false), ended);
            assert!(ended.retry(), "{ended:?} offers Retry");
        }
        assert!(!waiting().retry());
        assert_eq!(waiting().tick(FlowStatus::Expired, false), FlowState::Expired);
    }

    #[test]
    fn the_status_line_counts_down_nowhere_but_in_the_timer() {
        assert!(!waiting().message().contains("80"), "{}", waiting().message());
        assert!(FlowState::Expired.message().contains("90-second"));
        assert!(FlowState::PopupClosed.message().contains("Retry"));
    }
}
