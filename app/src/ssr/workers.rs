//! Background workers: periodic passes (revocation retries, sync dispatch, interrupted-refresh
//! recovery, re-encryption, expired sessions) through one helper. They are started by the
//! server's `main` (or a test that wants them), never by building the router, and share one
//! cancellation token: on graceful shutdown each finishes the pass it is in and stops.

use std::future::Future;
use std::time::Duration;
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
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            let mut wait = first;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
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
    use std::sync::Arc;

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
}
