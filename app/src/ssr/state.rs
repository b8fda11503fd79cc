//! The application state handed to every handler, server function and SSR render.
//!
//! It is cloned several times per request (each middleware and extractor that takes it, the
//! server function's context), so it is one `Arc`: a clone is one reference count, not one
//! per field (cloning the fields one by one was 4 % of the invoke-URL bench's CPU).

use super::crypto::Cipher;
use super::db::Db;
use super::settings::Settings;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What Leptos' handlers take from the state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub settings: Arc<Settings>,
    pub cipher: Cipher,
    /// The one guarded client for every call to a third party (`ssr::outbound`).
    pub outbound: super::outbound::Outbound,
    /// Token refreshes in flight in this process (one per account).
    pub refreshes: Arc<crate::authorizations::ssr::Refreshes>,
    /// Passwords being checked in this process (`--login-hash-concurrency` permits): a sign-in
    /// that finds none free is refused at once instead of queueing Argon2 work.
    pub login_hashing: Arc<tokio::sync::Semaphore>,
    /// What the hot paths read and rarely changes, kept for a second (`ssr::cache`).
    pub caches: Arc<super::cache::Caches>,
    /// Operations entries of the hot paths, written in batches (`operations::queue`).
    pub operations: crate::operations::queue::Queue,
    /// Notified when this process queues a sync run, so its sync worker starts it at once
    /// rather than at its next tick.
    pub sync_queued: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("db", &self.db.backend).field("cipher", &self.cipher).finish_non_exhaustive()
    }
}
