#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: initdb in a temp dir, a free port on
# 127.0.0.1, TEST_DATABASE_URL exported; the cluster is stopped and deleted afterwards.
# Usage: scripts/with-postgres.sh cargo test
set -euo pipefail

PGBIN=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/cm-pg.XXXXXX)
# PostgreSQL refuses to run as root; use the postgres system user then.
as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as=(runuser -u postgres --)
fi
cleanup() {
  "${as[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as[@]}" "$PGBIN/initdb" -D "$dir/data" -U cm --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log"; exit 1; }
"${as[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
  || { cat "$dir/pg.log"; exit 1; }
export TEST_DATABASE_URL="postgres://cm@127.0.0.1:$port/postgres"
echo "throwaway PostgreSQL on 127.0.0.1:$port" >&2
"$@"
