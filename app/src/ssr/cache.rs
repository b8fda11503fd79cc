//! In-process caches of what the hot paths read and rarely changes, each entry kept at most
//! [`TTL`]: another replica's change is seen within that. Changes made through this server
//! clear them at once ([`invalidate_on_writes`]: any request that may write, before it is
//! answered), and so does a token refresh.
//!
//! An entry is renewed before it expires, by one caller: the first to ask once it is
//! [`RENEW_AFTER`] old is answered a miss and loads it again, while the others go on using the
//! entry until it is replaced (never past [`TTL`]). Without that, every concurrent caller
//! missed at the same moment each second and loaded the same rows at once (the invoke-URL
//! bench's p99 on PostgreSQL).

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
/// From this age on, one caller reloads the entry while the others still use it.
pub const RENEW_AFTER: Duration = Duration::from_millis(750);
/// Entries at most per cache; a full cache starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// A small map whose entries expire after [`TTL`].
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    at: Instant,
    /// A caller was answered a miss to renew this entry.
    renewing: bool,
    value: Arc<V>,
}

impl<K: Hash + Eq, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq, V> TtlCache<K, V> {
    /// The entry for `key` while it is younger than [`TTL`]; a miss (`None`) for the one caller
    /// that renews it once it is [`RENEW_AFTER`] old (it loads and [`insert`](Self::insert)s).
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &K, now: Instant) -> Option<Arc<V>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get_mut(key)?;
        let age = now.saturating_duration_since(entry.at);
        if age >= TTL || (age >= RENEW_AFTER && !std::mem::replace(&mut entry.renewing, true)) {
            return None;
        }
        Some(entry.value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        self.insert_at(key, value, Instant::now())
    }

    fn insert_at(&self, key: K, value: V, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.saturating_duration_since(e.at) < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, Entry { at: now, renewing: false, value: Arc::new(value) });
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
    fn one_caller_renews_an_entry_while_the_others_still_use_it() {
        let cache: TtlCache<u8, u8> = TtlCache::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        cache.insert_at(1, 2, t0);
        assert_eq!(cache.get_at(&1, at(700)).as_deref(), Some(&2));
        assert_eq!(cache.get_at(&1, t0 + RENEW_AFTER), None, "the first caller from RENEW_AFTER on reloads");
        for ms in [760, 900, 999] {
            assert_eq!(cache.get_at(&1, at(ms)).as_deref(), Some(&2), "the others keep the entry meanwhile");
        }
        assert_eq!(cache.get_at(&1, at(1000)), None, "never answered from TTL on, renewed or not");
        cache.insert_at(1, 3, at(800));
        assert_eq!(cache.get_at(&1, at(1500)).as_deref(), Some(&3));
        assert_eq!(cache.get_at(&1, at(1550)), None, "a renewed entry is renewed again");
        assert_eq!(cache.get_at(&1, at(1560)).as_deref(), Some(&3));
    }

    #[test]
    fn entries_expire() {
        let cache: TtlCache<u8, u8> = TtlCache::default();
        let t0 = Instant::now();
        cache.insert_at(1, 2, t0);
        assert_eq!(cache.get_at(&1, t0).as_deref(), Some(&2));
        assert_eq!(cache.get_at(&1, t0 + TTL), None);
        cache.insert(1, 3);
        cache.clear();
        assert_eq!(cache.get(&1), None);
        cache.insert(1, 4);
        cache.insert(2, 5);
        cache.remove(&1);
        assert_eq!((cache.get(&1), cache.get(&2).as_deref()), (None, Some(&5)));
    }
}
