#!/usr/bin/env bash
# Playwright against the release build: a fresh SQLite data dir, the sandbox on a free port,
# the server on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
work=$(mktemp -d /tmp/cm-e2e.XXXXXX)
start_sandbox 0 "$work/sandbox.log"
port=$(free_port)
LEPTOS_SITE_ROOT=target/site target/release/server --seed-demo --generate-key --data-dir "$work/data" \
  --listen "127.0.0.1:$port" --sandbox-url "$SANDBOX_URL" --outbound-allowlist "${SANDBOX_URL#http://}" \
  >"$work/server.log" 2>&1 &
SERVER_PID=$!
# A second server whose OAuth2 window is 4 seconds, for the expiry test (the product stays 90 s).
short=$(free_port)
LEPTOS_SITE_ROOT=target/site target/release/server --seed-demo --generate-key --data-dir "$work/data-short" \
  --listen "127.0.0.1:$short" --sandbox-url "$SANDBOX_URL" --outbound-allowlist "${SANDBOX_URL#http://}" \
  --oauth-window-secs 4 >"$work/server-short.log" 2>&1 &
SHORT_PID=$!
trap 'kill $SERVER_PID $SHORT_PID $SANDBOX_PID 2>/dev/null || true; rm -rf "$work"' EXIT
wait_http "http://127.0.0.1:$port/healthz" || { cat "$work/server.log"; exit 1; }
wait_http "http://127.0.0.1:$short/healthz" || { cat "$work/server-short.log"; exit 1; }
export BASE_URL="http://127.0.0.1:$port" SHORT_WINDOW_URL="http://127.0.0.1:$short" SANDBOX_URL
(cd end2end && npx playwright test "$@") || { echo "--- server log"; tail -50 "$work/server.log"; exit 1; }
