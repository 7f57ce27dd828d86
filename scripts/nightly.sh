#!/usr/bin/env bash
# The main job on embedded defaults: run the nightly Airflow DAG `consent_enforcement_nightly` once, end to
# end, on a freshly built demo warehouse (DuckDB). Everything lives under .consentgate/; no server is started
# (`airflow dags test` runs the DAG in this process) and nothing keeps running afterwards.
#
#   scripts/nightly.sh                      # consent cut-off: the latest 02:00 UTC
#   scripts/nightly.sh 2026-11-29T02:00:00+00:00
#
# Environment: CONSENTGATE_DATABASE (warehouse file), CONSENTGATE_SUBJECTS (demo size, default 20000),
# CONSENTGATE_POLICY (policy file; default: the shipped example policy). See docs/airflow.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/bootstrap.sh"
BIN="$ROOT/.venv/bin"
STATE="$ROOT/.consentgate"
DB="${CONSENTGATE_DATABASE:-$STATE/warehouse.duckdb}"
case "$DB" in /*) ;; *) DB="$ROOT/$DB" ;; esac
EVENTS="$STATE/openlineage/events.jsonl"
LOG="$STATE/airflow/dags-test.log"
mkdir -p "$STATE/airflow" "$STATE/openlineage" "$STATE/dbt" "$(dirname "$DB")"

# A private Airflow: SQLite metadata DB in .consentgate/airflow, this repo's dags/. The consentgate plugin
# comes from its entry point (installed package); the plugins folder is a private one (empty).
export AIRFLOW_HOME="$STATE/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$AIRFLOW_HOME/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__OPENLINEAGE__NAMESPACE=consentgate
export AIRFLOW__OPENLINEAGE__TRANSPORT="{\"type\": \"file\", \"log_file_path\": \"$EVENTS\", \"append\": true}"
# The warehouse, as the DAG's default connection (duckdb_default).
export AIRFLOW_CONN_DUCKDB_DEFAULT="{\"conn_type\": \"duckdb\", \"host\": \"$DB\"}"
# dbt's artefacts and logs stay out of the dbt project.
export DBT_TARGET_PATH="$STATE/dbt/target" DBT_LOG_PATH="$STATE/dbt/logs" DBT_SEND_ANONYMOUS_USAGE_STATS=false

# The consent cut-off: the argument, else the latest 02:00 UTC (the DAG's schedule).
CUTOFF="${1:-$("$BIN/python" -c '
from datetime import UTC, datetime, timedelta
now = datetime.now(UTC)
t = now.replace(hour=2, minute=0, second=0, microsecond=0)
print((t if t <= now else t - timedelta(days=1)).isoformat())')}"

start=$SECONDS
echo "consentgate: preparing Airflow in $AIRFLOW_HOME" >&2
"$BIN/airflow" db migrate >"$STATE/airflow/db-migrate.log" 2>&1 || { cat "$STATE/airflow/db-migrate.log" >&2; exit 1; }
"$BIN/airflow" pools set consentgate_duckdb 1 "consentgate: one DuckDB writer at a time" >/dev/null 2>&1

echo "consentgate: building the demo warehouse $DB" >&2
"$BIN/consentgate" demo --database "$DB" --subjects "${CONSENTGATE_SUBJECTS:-20000}" --no-enforce

echo "consentgate: running DAG consent_enforcement_nightly for $CUTOFF (log: $LOG)" >&2
set +e
"$BIN/airflow" dags test consent_enforcement_nightly "$CUTOFF" >"$LOG" 2>&1
dags_rc=$?
set -e
# The run's summary lines, as the tasks logged them (counts only).
grep -E "\] (run [^ ]+: |  [a-z_]+ +(airflow|dbt) |audit passed|.*Error|.*failed: )" "$LOG" \
  | sed -E 's/^[0-9TZ:.-]+ \[[a-z ]+\] //; s/ \[[a-zA-Z_.]+\] loc=.*$//' | grep -v "^Task failed" | head -40 || true

# The run just recorded by the DAG (latest run with trigger airflow), as the CLI shows it.
RUN_ID="$("$BIN/python" - "$DB" <<'PY'
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
row = con.execute("SELECT run_id FROM consentgate_runs WHERE trigger = 'airflow' "
                  "ORDER BY started_at DESC LIMIT 1").fetchone()
print(row[0] if row else "")
PY
)"
if [ -z "$RUN_ID" ]; then
  echo "consentgate: the DAG recorded no run; see $LOG" >&2
  exit 1
fi
"$BIN/consentgate" lineage --database "$DB" --run-id "$RUN_ID"
STATUS="$("$BIN/consentgate" lineage --database "$DB" --run-id "$RUN_ID" --json \
  | "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["status"])')"

cat <<EOF

consentgate: DAG run $RUN_ID finished: $STATUS (in $((SECONDS - start))s)
  warehouse          $DB   (consented.* tables, dbt models in main, evidence in consentgate_runs / consentgate_lineage)
  Airflow log        $LOG
  OpenLineage events $EVENTS
  inspect            $BIN/consentgate lineage --database $DB --run-id '$RUN_ID'
EOF
[ "$STATUS" = "success" ] && [ "$dags_rc" -eq 0 ]
