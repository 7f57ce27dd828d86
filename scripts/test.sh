#!/usr/bin/env bash
# Run the whole test suite: unit, property-based, DuckDB, a real PostgreSQL server, real dbt and Airflow.
# Creates .venv on first use and installs the system tools the tests need if the machine lacks them
# (PostgreSQL's server binaries, chromium, node + npm and the Node reference packages): scripts/ensure_tools.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/bootstrap.sh"
# shellcheck source=scripts/ensure_tools.sh
source "$ROOT/scripts/ensure_tools.sh"
cg_ensure_tools "$ROOT"
# Two workers (pytest-xdist): each test module on one worker, the Spark cluster's tests and those that
# run dbt in the repository's example project together on one (tests/conftest.py). -n 0 runs serially.
exec "$ROOT/.venv/bin/pytest" -n "${CONSENTGATE_TEST_WORKERS:-2}" "$@"
