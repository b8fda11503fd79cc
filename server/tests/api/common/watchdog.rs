//! A hung test must not hold the whole run until CI's time limit: every [`TestApp`](super::TestApp)
//! registers its test (libtest names each test's thread after the test), and a watchdog thread
//! ends the binary, naming the tests still in flight, once one has run for [`HUNG_AFTER`] — far
//! longer than any test takes even on a slow machine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

const HUNG_AFTER: Duration = Duration::from_secs(420);

/// [`HUNG_AFTER`], or `TEST_HUNG_AFTER_SECS` (to see the watchdog work on one slow test).
fn hung_after() -> Duration {
    std::env::var("TEST_HUNG_AFTER_SECS").ok().and_then(|s| s.parse().ok()).map_or(HUNG_AFTER, Duration::from_secs)
}

static RUNNING: Mutex<BTreeMap<u64, (String, Instant)>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);
static START: Once = Once::new();

/// While alive, the current test counts as running.
pub struct Watched(u64);

impl Drop for Watched {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

/// Registers the current test (by its thread's name) and starts the watchdog once.
pub fn watch() -> Watched {
    START.call_once(|| {
        std::thread::Builder::new().name("test watchdog".into()).spawn(watchdog).expect("start the test watchdog");
    });
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = std::thread::current().name().unwrap_or("an unnamed test").to_string();
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (name, Instant::now()));
    Watched(id)
}

fn watchdog() {
    let limit = hung_after();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if running.values().any(|(_, since)| since.elapsed() > limit) {
            // Straight to the process's stderr: `eprintln!` here would be captured as output of
            // the test that started this thread, and lost with the exit.
            use std::io::Write;
            let mut report =
                format!("\nA test has run for over {} s; it is taken as hung. Tests in flight:\n", limit.as_secs());
            for (name, since) in running.values() {
                report.push_str(&format!("  {name}: {} s\n", since.elapsed().as_secs()));
            }
            report.push_str("Stopping the test binary so the run ends here instead of at CI's time limit.\n");
            let _ = std::io::stderr().lock().write_all(report.as_bytes());
            std::process::exit(3);
        }
    }
}
