#!/usr/bin/env bash
# Benchmarks (not tests), on SQLite and on a throwaway PostgreSQL; figures go to README:
# - the integration-fields sync of 100 000 sandbox records, next to a bulk insert of the same rows;
# - the Microservices list with 100 000 connections: pages of 50 next to the whole list at once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo bench -p server --bench sync 2>/dev/null | grep -E 'records/s' || cargo bench -p server --bench sync
scripts/with-postgres.sh cargo bench -p server --bench sync 2>/dev/null | grep -E 'records/s'
cargo bench -p server --bench microservices 2>/dev/null | grep -vE '^(running|test result)' || cargo bench -p server --bench microservices
scripts/with-postgres.sh cargo bench -p server --bench microservices 2>/dev/null | grep -vE '^(running|test result)'
