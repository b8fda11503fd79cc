//! Background workers: periodic passes (revocation retries, sync dispatch, interrupted-refresh
//! recovery, re-encryption, expired sessions) through one helper. They are started by the
//! server's `main` (or a test that wants them), never by building the router, and share one
//! cancellation token: on graceful shutdown each finishes the pass it is in and stops.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The running workers of this process.
#[derive(Default)]
pub struct Workers {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Workers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `pass(context.clone())` after `first`, then every `every`, until shutdown. A failed
    /// pass is logged with the worker's name and tried again at the next tick; a pass is never
    /// cut short.
    pub fn every<C, F, Fut, E>(&mut self, name: &'static str, first: Duration, every: Duration, context: C, pass: F)
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.every_or_woken(name, first, every, None, context, pass);
    }

    /// [`Workers::every`], and also as soon as `wake` is notified (a wake during a pass starts
    /// the next pass when this one ends): work queued in this process starts without waiting
    /// for the next tick; work queued by another replica is found at the tick.
    pub fn every_or_woken<C, F, Fut, E>(
        &mut self,
        name: &'static str,
        first: Duration,
        every: Duration,
        wake: Option<Arc<Notify>>,
        context: C,
        pass: F,
    ) where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            let woken = || async {
                match &wake {
                    Some(wake) => wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            let mut wait = first;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                    _ = woken() => {}
                }
                wait = every;
                if let Err(e) = pass(context.clone()).await {
                    tracing::warn!(worker = name, error = %e, "background pass failed; trying again later");
                }
            }
            tracing::debug!(worker = name, "stopped");
        });
    }

    /// Asks every worker to stop and waits until they have.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn passes_repeat_survive_failures_and_stop_on_shutdown() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut workers = Workers::new();
        workers.every("test", Duration::ZERO, Duration::from_millis(5), runs.clone(), |counter| async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 0 {
                Err(format!("failure {n}"))
            } else {
                Ok(())
            }
        });
        while runs.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        workers.shutdown().await;
        let stopped_at = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(runs.load(Ordering::SeqCst), stopped_at, "no pass after shutdown");
    }

    #[tokio::test]
    async fn a_wake_runs_a_pass_before_the_next_tick() {
        let runs = Arc::new(AtomicUsize::new(0));
        let wake = Arc::new(Notify::new());
        let mut workers = Workers::new();
        let hour = Duration::from_secs(3600);
        workers.every_or_woken("test", hour, hour, Some(wake.clone()), runs.clone(), |counter| async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        });
        for expected in 1..=2 {
            wake.notify_one();
            let waited = tokio::time::timeout(Duration::from_secs(5), async {
                while runs.load(Ordering::SeqCst) < expected {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
            .await;
            assert!(waited.is_ok(), "pass {expected} did not run after a wake");
        }
        workers.shutdown().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "no pass without a wake within the hour");
    }
}
