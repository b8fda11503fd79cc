//! In-process single flight: concurrent callers asking for the same key share one run of the
//! work instead of each doing it. The run is spawned, so it finishes even when every caller
//! gives up (a dropped request must not cut a token refresh between the provider's answer and
//! the commit). The entry is removed as soon as the run ends, successfully, with an error or by
//! panicking; callers arriving after that start a new run.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tracing::Instrument;

type Map<K, V> = Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>;

pub struct SingleFlight<K, V> {
    inflight: Map<K, V>,
    runs: AtomicU64,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight { inflight: Arc::new(Mutex::new(HashMap::new())), runs: AtomicU64::new(0) }
    }
}

impl<K, V> std::fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight").field("runs", &self.runs.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

fn lock<K, V>(map: &Map<K, V>) -> MutexGuard<'_, HashMap<K, watch::Receiver<Option<V>>>> {
    // The map is never left half-updated, so a poisoned lock is still usable.
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the run's entry when the run ends, however it ends.
struct Remove<K: Hash + Eq, V> {
    map: Map<K, V>,
    key: K,
    own: watch::Receiver<Option<V>>,
}

impl<K: Hash + Eq, V> Drop for Remove<K, V> {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        if map.get(&self.key).is_some_and(|rx| rx.same_channel(&self.own)) {
            map.remove(&self.key);
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key`, or waits for the run already in flight for it. `None` when the
    /// run ended without an answer (it panicked).
    pub async fn run<F, Fut>(&self, key: K, work: F) -> Option<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let mut rx = {
            let mut map = lock(&self.inflight);
            match map.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    map.insert(key.clone(), rx.clone());
                    self.runs.fetch_add(1, Ordering::Relaxed);
                    let guard = Remove { map: self.inflight.clone(), key, own: rx.clone() };
                    let fut = work();
                    tokio::spawn(
                        async move {
                            let value = fut.await;
                            drop(guard); // later callers start afresh
                            let _ = tx.send(Some(value));
                        }
                        .instrument(tracing::Span::current()),
                    );
                    rx
                }
            }
        };
        let answer = rx.wait_for(|v| v.is_some()).await.ok().and_then(|v| v.clone());
        answer
    }

    /// How many runs were started (not joined) so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// How many keys have a run in flight now.
    pub fn in_flight(&self) -> usize {
        lock(&self.inflight).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_the_entry_is_removed() {
        let flights: Arc<SingleFlight<i64, u32>> = Arc::default();
        let work_done = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = watch::channel(false);
        let mut callers = Vec::new();
        for _ in 0..20 {
            let (flights, work_done, mut release) = (flights.clone(), work_done.clone(), release_rx.clone());
            callers.push(tokio::spawn(async move {
                flights
                    .run(7, move || async move {
                        let _ = release.wait_for(|r| *r).await;
                        work_done.fetch_add(1, Ordering::SeqCst);
                        42
                    })
                    .await
            }));
        }
        // Every caller has joined before the work may finish.
        while flights.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        release_tx.send(true).unwrap();
        for c in callers {
            assert_eq!(c.await.unwrap(), Some(42));
        }
        // On this single-threaded test runtime every caller joined before the release.
        assert_eq!(flights.runs(), 1);
        assert_eq!(work_done.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0, "no entry left behind");
        // A later call runs again.
        assert_eq!(flights.run(7, || async { 43 }).await, Some(43));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_panicking_run_answers_none_and_leaves_no_entry() {
        let flights: SingleFlight<i64, u32> = SingleFlight::default();
        let answer = flights.run(1, || async { panic!("boom") }).await;
        assert_eq!(answer, None);
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run(1, || async { 5 }).await, Some(5));
    }

    #[tokio::test]
    async fn the_run_finishes_when_every_caller_gives_up() {
        let flights: Arc<SingleFlight<i64, u32>> = Arc::default();
        let (done_tx, mut done_rx) = watch::channel(false);
        let caller = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run(3, move || async move {
                        tokio::task::yield_now().await;
                        let _ = done_tx.send(true);
                        1
                    })
                    .await
            })
        };
        while flights.runs() == 0 {
            tokio::task::yield_now().await;
        }
        caller.abort();
        let _ = caller.await;
        done_rx.wait_for(|d| *d).await.unwrap();
    }
}
