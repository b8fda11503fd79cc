#!/usr/bin/env bash
# Benchmarks (not tests); figures go to README. Each runs on SQLite, then on a throwaway PostgreSQL:
# - the hot paths under wrk next to nginx in the same run (invoke URL, a session read, the
#   connections panel with 10 and 10 000 connections, the Microservices first page with 100 000,
#   the server's peak RSS): `cargo bench -p server --bench http`;
# - the refresh storm on PostgreSQL: 2 replicas × 50 calls on an expiring token, one refresh;
# - the integration-fields sync of 100 000 sandbox records, next to a bulk insert of the same rows;
# - the Microservices list with 100 000 connections: pages of 50 next to the whole list at once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
. scripts/env.sh
quiet() { grep -vE '^(running|test result|\{)|Compiling|Finished|Running| INFO| WARN' || true; }
cargo bench -p server --bench http 2>/dev/null | quiet
scripts/with-postgres.sh cargo bench -p server --bench http 2>/dev/null | quiet
scripts/with-postgres.sh cargo bench -p server --bench storm 2>/dev/null | grep -E 'refresh storm'
cargo bench -p server --bench sync 2>/dev/null | grep -E 'records/s'
scripts/with-postgres.sh cargo bench -p server --bench sync 2>/dev/null | grep -E 'records/s'
cargo bench -p server --bench microservices 2>/dev/null | quiet
scripts/with-postgres.sh cargo bench -p server --bench microservices 2>/dev/null | quiet
