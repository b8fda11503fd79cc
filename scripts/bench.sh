#!/usr/bin/env bash
# Benchmarks (not tests): the integration-fields sync of 100 000 sandbox records, next to a bulk
# insert of the same rows, on SQLite and on a throwaway PostgreSQL. Figures go to README.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo bench -p server --bench sync 2>/dev/null | grep -E 'records/s' || cargo bench -p server --bench sync
scripts/with-postgres.sh cargo bench -p server --bench sync 2>/dev/null | grep -E 'records/s'
