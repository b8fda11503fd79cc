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
trap 'kill $SERVER_PID $SANDBOX_PID 2>/dev/null || true; rm -rf "$work"' EXIT
wait_http "http://127.0.0.1:$port/healthz" || { cat "$work/server.log"; exit 1; }
export BASE_URL="http://127.0.0.1:$port"
(cd end2end && npx playwright test) || { echo "--- server log"; tail -50 "$work/server.log"; exit 1; }
