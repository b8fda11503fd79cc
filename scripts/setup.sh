#!/usr/bin/env bash
# Installs what the project needs and is missing, each at a pinned version; skips what is there.
# `--bench` also installs what only `scripts/bench.sh` needs (nginx-light and wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_pkgs=()
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || apt_pkgs+=(postgresql)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || apt_pkgs+=(python3)
if [ "${1:-}" = "--bench" ]; then
  command -v nginx >/dev/null 2>&1 || apt_pkgs+=(nginx-light)
  command -v wrk >/dev/null 2>&1 || apt_pkgs+=(wrk)
fi
if ((${#apt_pkgs[@]})); then
  say "apt-get install ${apt_pkgs[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q '0\.3\.10'; then
  say "cargo install cargo-leptos 0.3.10 (about 25 minutes on 2 cores)"
  cargo install cargo-leptos --version 0.3.10 --locked --features no_downloads
fi

wbg=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$"; then
  say "cargo install wasm-bindgen-cli $wbg (matches Cargo.lock)"
  # Not --locked: its own lockfile pins a crate the registry no longer has.
  cargo install wasm-bindgen-cli --version "$wbg"
fi

if [ ! -f end2end/node_modules/.package-lock.json ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "npm ci in end2end (oidc-provider, @playwright/test, binaryen for wasm-opt)"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi
