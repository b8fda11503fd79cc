#!/usr/bin/env bash
# Every test: Rust unit and integration tests on SQLite and on a throwaway PostgreSQL, the
# sandbox service's self-test, then the release build and Playwright in Debian Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
# A clean clone (CI) gains nothing from incremental caches, which would double the size of
# target/ (CI once ran out of disk while linking the test binary).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
started=$SECONDS
say() { printf '\n\033[1m==> [%dm%02ds] %s\033[0m\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }
# A test binary that hangs is ended by its own watchdog (server/tests/api/common/watchdog.rs);
# this bounds anything else, so a run stops with a message long before CI's time limit.
bounded() {
  local limit=$1; shift
  timeout --kill-after=30 "$limit" "$@" || {
    local rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "TIMED OUT after $limit: $*" >&2; fi
    return "$rc"
  }
}

say "cargo fmt --check"
cargo fmt --all -- --check
say "clippy (server and client builds)"
cargo clippy -p app -p server --features app/ssr --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
say "Rust tests on SQLite"
bounded 40m cargo test -p app --features ssr
bounded 40m cargo test -p server
say "Rust tests on PostgreSQL"
bounded 40m scripts/with-postgres.sh cargo test -p server
say "sandbox service self-test"
(cd end2end && node sandbox/selftest.mjs)
say "release build"
cargo leptos build --release --split
node scripts/precompress.mjs target/site
say "Playwright"
bounded 30m scripts/e2e.sh
say "all passed"
