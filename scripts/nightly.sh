#!/usr/bin/env bash
# The main job on embedded defaults: build the demo warehouse (DuckDB) and enforce it with the example policy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/consentgate" demo --database "${CONSENTGATE_DATABASE:-$ROOT/.consentgate/warehouse.duckdb}" "$@"
