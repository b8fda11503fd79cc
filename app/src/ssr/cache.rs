//! In-process caches of what the hot paths read and rarely changes, each entry kept at most
//! [`TTL`]: another replica's change is seen within that. Changes made through this server
//! clear them at once ([`invalidate_on_writes`]: any request that may write, before it is
//! answered), and so does a token refresh.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an entry is trusted without asking the database again.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries at most per cache; a full cache starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// A small map whose entries expire after [`TTL`].
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Hash + Eq, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq, V> TtlCache<K, V> {
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, v)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), Arc::new(value)));
    }

    /// The entry for `key`, else what `load` answers (kept when it is `Ok`).
    pub async fn get_or_load<E, F>(&self, key: K, load: impl FnOnce() -> F) -> Result<V, E>
    where
        V: Clone,
        F: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key) {
            return Ok((*value).clone());
        }
        let value = load().await?;
        self.insert(key, value.clone());
        Ok(value)
    }

    pub fn remove(&self, key: &K) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// Every cache of the process (one in [`super::AppState`]).
#[derive(Default)]
pub struct Caches {
    /// What an invoke-URL call over a connection needs (`invoke::ssr::Plan`).
    pub plans: TtlCache<crate::invoke::ssr::PlanKey, crate::invoke::ssr::Plan>,
    /// Signed-in users by id, as every request's session check reads them
    /// (`auth::ssr::session_user`): their workspace, email, name and role.
    pub users: TtlCache<i64, crate::auth::SessionUser>,
    /// Applications by workspace and link name, for the connections panel
    /// (`applications::ssr::find_cached`).
    pub applications: TtlCache<(i64, String), crate::applications::ApplicationSummary>,
    /// The connections panel as one user sees it for one application (or one of its
    /// components) in one environment (`connections::list::for_application`).
    pub panels: TtlCache<PanelKey, Vec<crate::connections::ConnectionEntry>>,
}

/// Whose panel, of which application and component, in which environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PanelKey {
    pub user_id: i64,
    pub app: String,
    pub component: Option<String>,
    pub environment: crate::domain::Environment,
}

impl Caches {
    pub fn clear(&self) {
        self.plans.clear();
        self.users.clear();
        self.applications.clear();
        self.panels.clear();
    }
}

/// Server functions and `/api` reads that change nothing a cache holds. Every other request
/// that is not a GET, and every `/oauth/` request (the callback stores credentials), clears
/// the caches: a new write path is covered without being listed.
const READS: &[&str] = &[
    "/api/invoke_url",
    "/api/run_component",
    "/api/current_user",
    "/api/app_connections",
    "/api/connections_page",
    "/api/list_operations",
    "/api/list_connectors",
];

fn may_write(method: &Method, path: &str) -> bool {
    if path.starts_with("/oauth/") {
        return true;
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    !READS.contains(&path)
}

/// Clears the caches around a request that may write: before it runs (nothing it checks is
/// stale) and after (nothing read meanwhile outlives the write).
pub async fn invalidate_on_writes(State(state): State<super::AppState>, req: Request, next: Next) -> Response {
    let writes = may_write(req.method(), req.uri().path());
    if writes {
        state.caches.clear();
    }
    let res = next.run(req).await;
    if writes {
        state.caches.clear();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keep_the_caches_and_writes_clear_them() {
        assert!(!may_write(&Method::POST, "/api/invoke_url"));
        assert!(!may_write(&Method::GET, "/v1/connections"));
        assert!(may_write(&Method::POST, "/api/revoke_connection"));
        assert!(may_write(&Method::POST, "/api/a_server_function_added_later"));
        assert!(may_write(&Method::DELETE, "/v1/connections/sales_crm"));
        assert!(may_write(&Method::GET, "/oauth/callback"));
    }

    #[test]
    fn entries_expire() {
        let cache: TtlCache<u8, u8> = TtlCache::default();
        cache.insert(1, 2);
        assert_eq!(cache.get(&1).as_deref(), Some(&2));
        std::thread::sleep(TTL + Duration::from_millis(20));
        assert_eq!(cache.get(&1), None);
        cache.insert(1, 3);
        cache.clear();
        assert_eq!(cache.get(&1), None);
        cache.insert(1, 4);
        cache.insert(2, 5);
        cache.remove(&1);
        assert_eq!((cache.get(&1), cache.get(&2).as_deref()), (None, Some(&5)));
    }
}
