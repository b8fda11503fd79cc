# Sourced by the scripts: tools on PATH (wasm-opt from npm binaryen, cargo's bin dir).
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Starts the sandbox service on $1 (0 = any) and sets SANDBOX_URL once it is ready.
start_sandbox() {
  local log=$2
  (cd end2end && SANDBOX_PORT=$1 exec node sandbox/server.mjs) >"$log" 2>"$log.err" &
  SANDBOX_PID=$!
  for _ in $(seq 1 100); do
    if grep -q '^SANDBOX_READY' "$log" 2>/dev/null; then
      SANDBOX_URL=$(sed -n 's/^SANDBOX_READY .*"issuer":"\([^"]*\)".*/\1/p' "$log")
      export SANDBOX_URL
      return 0
    fi
    sleep 0.2
  done
  echo "the sandbox service did not start:" >&2; cat "$log" "$log.err" >&2; return 1
}
wait_http() {
  for _ in $(seq 1 150); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$1 did not answer" >&2; return 1
}
