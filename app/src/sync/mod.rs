//! Integration-fields sync (R12.1): pull a datasource's module from the third-party
//! service, page by page, and update the integration-field values in the application's form
//! records. Pull-only: nothing is written back to the service.
//!
//! The rules hold across server replicas because they live in the database:
//! - one queued-or-ongoing run per datasource (a partial unique index): whoever presses while a
//!   run is active joins it instead of starting another (R12.5);
//! - one run per user per datasource per 24 hours (failed runs do not count) (R12.4);
//! - at most `--sync-max-running` runs execute at once in the deployment (10 by default): a run
//!   waits as "queued" until it leases one of that many rows of `sync_slots` (R12.6);
//! - a running sync heartbeats; a run whose process died stops heartbeating and any replica marks
//!   it failed with the reason after `--sync-stale-secs`, so nothing stays "ongoing" forever (R12.7).
//!
//! A run fetches every page first and applies the result in one transaction, so a failing or
//! garbage-answering service never leaves form records half updated (R12.3).

use crate::domain::Environment;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One sync every 24 hours per user per datasource.
pub const COOLDOWN_MS: i64 = 24 * 60 * 60 * 1000;

closed_set! {
    /// Where a sync run is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum SyncStatus ("status", "sync status") {
        Queued = "queued", "Queued";
        Ongoing = "ongoing", "Ongoing";
        Completed = "completed", "Completed";
        Failed = "failed", "Failed";
    }
}

impl SyncStatus {
    pub fn is_active(self) -> bool {
        matches!(self, SyncStatus::Queued | SyncStatus::Ongoing)
    }
}

/// One sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    pub id: i64,
    pub datasource_id: i64,
    pub datasource: String,
    pub status: SyncStatus,
    /// Records fetched so far (the progress while ongoing).
    pub records: i64,
    /// Calls made to the service's API (they count against the account's quota there).
    pub api_calls: i64,
    pub error: Option<String>,
    pub initiated_by: String,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// For a queued run: how many runs are ahead of it, plus one.
    pub queue_position: Option<i64>,
}

/// The sync state of a datasource as one user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    pub datasource_id: i64,
    /// The active run, or else the most recent one.
    pub latest: Option<SyncRun>,
    pub last_completed_at_ms: Option<i64>,
    /// When the caller may initiate again (None: now).
    pub next_allowed_at_ms: Option<i64>,
}

/// The answer to "Initiate".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initiated {
    pub view: SyncView,
    /// True when a sync of this datasource was already queued or running: the caller joined it
    /// and no second run was started.
    pub joined: bool,
}

#[server(prefix = "/api", endpoint = "initiate_sync")]
pub async fn initiate_sync(datasource_id: i64, environment: Environment) -> Result<Initiated, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("sync datasources").await?;
    ssr::initiate(&state, &user, datasource_id, environment).await
}

#[server(prefix = "/api", endpoint = "get_sync_status")]
pub async fn get_sync_status(datasource_id: i64) -> Result<SyncView, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("see datasource syncs").await?;
    crate::datasources::ssr::load(&state, user.workspace_id, datasource_id).await?;
    ssr::view(&state, &user, datasource_id).await
}

/// Recent sync runs of the workspace, for the Operations page.
#[server(prefix = "/api", endpoint = "list_sync_runs")]
pub async fn list_sync_runs() -> Result<Vec<SyncRun>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("view the operations log").await?;
    ssr::recent(&state, user.workspace_id, 100).await
}

#[cfg(feature = "ssr")]
mod fetch;
#[cfg(feature = "ssr")]
mod stage;
#[cfg(feature = "ssr")]
mod store;
#[cfg(feature = "ssr")]
mod worker;

/// The server side, split by concern (`store`: queries and the apply transaction, `worker`: slots,
/// leases and the sweep, `fetch`: paging over HTTP); other modules and the tests use these paths.
#[cfg(feature = "ssr")]
pub mod ssr {
    pub use super::fetch::{parse_page, Page};
    pub use super::store::{initiate, recent, run, view};
    pub use super::worker::{sweep, SyncWorker, TICK};
}
