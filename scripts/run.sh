#!/usr/bin/env bash
# Runs the product: SQLite in ./data, the sandbox third-party service, the demo workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo leptos build --release --split
node scripts/precompress.mjs target/site
mkdir -p data
start_sandbox "${SANDBOX_PORT:-4010}" data/sandbox.log
trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT
export LEPTOS_SITE_ROOT=target/site
target/release/server --seed-demo --generate-key --data-dir data \
  --listen "${LISTEN_ADDR:-127.0.0.1:3000}" --sandbox-url "$SANDBOX_URL" \
  --outbound-allowlist "${SANDBOX_URL#http://}" &
SERVER_PID=$!
trap 'kill $SERVER_PID $SANDBOX_PID 2>/dev/null || true' EXIT
wait_http "http://${LISTEN_ADDR:-127.0.0.1:3000}/healthz"
cat <<MSG

  The connections manager is running at  http://${LISTEN_ADDR:-127.0.0.1:3000}/
  Sandbox third-party service (OAuth2):   $SANDBOX_URL   (sign in there as alice / alice-password)

  Demo sign-ins (password for all: demo-password)
    superadmin@demo.test   Super admin
    admin@demo.test        Admin
    developer@demo.test    Developer
    user@demo.test         User

  Ctrl-C stops both.
MSG
wait $SERVER_PID
