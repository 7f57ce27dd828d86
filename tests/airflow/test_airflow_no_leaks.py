"""Airflow tasks that fail on a database error show no subject identifier (issue #9, part 3).

A real dag.test() run over a DuckDB warehouse whose every text column holds a marker value: the filter
and the audit tasks read views whose casts fail on it, and a dbt model does the same (DuckDB quotes the
value it cannot convert). The tasks fail without retry; the marker is in no task log line, XCom, run record, lineage row or
OpenLineage event (whose failure facet carries the stack trace).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from cg_airflow import (
    AIRFLOW_HOME,
    LOGICAL_DATE,
    OPENLINEAGE_EVENTS,
    duckdb_conn,
    run_dag,
    task_states,
    try_numbers,
)

pytestmark = pytest.mark.slow

MARKER = "MARKER-7f3a@leak.test"


def _warehouse(path: Path, csv: Path) -> None:
    csv.write_text(f"cid,amount\n{MARKER},notanumber\n")
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE consent_events (subject_id VARCHAR, purpose VARCHAR, status VARCHAR, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP, source VARCHAR, policy_version VARCHAR)"
    )
    con.execute(
        "INSERT INTO consent_events VALUES (?, 'ads', 'granted', TIMESTAMP '2026-01-01', NULL, NULL, ?, ?)",
        [MARKER, MARKER, MARKER],
    )
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.people (cid VARCHAR, note VARCHAR)")
    con.execute("INSERT INTO raw.people VALUES (?, ?)", [MARKER, MARKER])
    con.execute("CREATE VIEW raw.bigint_cast AS SELECT cid, CAST(note AS BIGINT) AS n FROM raw.people")
    con.execute(
        "CREATE VIEW raw.csv_rows AS SELECT * FROM read_csv("
        f"'{csv}', header = true, columns = {{'cid': 'VARCHAR', 'amount': 'INTEGER'}})"
    )
    con.execute(
        "CREATE VIEW raw.ts_cast AS SELECT CAST(CAST(note AS TIMESTAMP) AS VARCHAR) AS cid FROM raw.people"
    )
    con.close()


def _dbt_project(tmp_path: Path) -> Path:
    """A dbt model whose timestamp cast fails on the marker (DuckDB quotes it in double quotes)."""
    project = tmp_path / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        'name: leaky\nversion: "1.0"\nconfig-version: 2\nprofile: leaky\n'
    )
    (project / "profiles.yml").write_text(
        "leaky:\n  target: d\n  outputs:\n    d:\n      type: duckdb\n"
        "      path: \"{{ env_var('CONSENTGATE_DUCKDB') }}\"\n      schema: main\n"
    )
    (project / "models" / "seen.sql").write_text(
        "{{ config(materialized='table') }}\nselect cast(note as timestamp) as seen from raw.people\n"
    )
    return project


def test_failed_tasks_leak_no_value_to_logs_xcoms_records_or_lineage(
    airflow_db, tmp_path: Path, monkeypatch, capfd
) -> None:
    from airflow.sdk import DAG
    from consentgate.airflow.operators import ConsentAuditOperator, ConsentFilterOperator, DbtBuildOperator

    path = tmp_path / "leaky.duckdb"
    _warehouse(path, tmp_path / "people.csv")
    monkeypatch.setenv("AIRFLOW_CONN_CG_LEAKY", duckdb_conn(path))
    before = OPENLINEAGE_EVENTS.read_text() if OPENLINEAGE_EVENTS.exists() else ""
    common = {"conn_id": "cg_leaky", "consent_table": "consent_events", "as_of": "2026-03-01T00:00:00"}
    with DAG("cg_no_leaks", schedule=None, start_date=LOGICAL_DATE, default_args={"retries": 2}) as dag:
        for name in ("bigint_cast", "csv_rows"):
            ConsentFilterOperator(
                task_id=f"enforce_{name}",
                source=f"raw.{name}",
                target=f"out.{name}",
                subject_column="cid",
                purpose="ads",
                **common,
            )
        ConsentAuditOperator(
            task_id="audit_ts_cast", table="raw.ts_cast", subject_column="cid", purpose="ads", **common
        )
        DbtBuildOperator(
            task_id="dbt_cast",
            project_dir=str(_dbt_project(tmp_path)),
            command="run",
            conn_id="cg_leaky",
            target_path=str(tmp_path / "target"),
            log_path=str(tmp_path / "dbt_logs"),
        )
    dag_run = run_dag(dag, LOGICAL_DATE)
    captured = capfd.readouterr()

    states = task_states(dag_run)
    assert set(states.values()) == {"failed"}, states
    assert set(try_numbers(dag_run).values()) == {1}  # a data error is not transient: no retry
    task_log = captured.out + captured.err
    for log_file in (AIRFLOW_HOME / "logs").rglob("*"):
        if log_file.is_file() and "cg_no_leaks" in str(log_file):
            task_log += log_file.read_text(errors="replace")
    assert MARKER not in task_log  # the value never reaches the task log ...
    assert "duckdb.ConversionException" in task_log  # ... its class does

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id="cg_no_leaks", run_id=dag_run.run_id).all()
        assert MARKER not in json.dumps([str(XComModel.deserialize_value(r)) for r in rows])

    con = duckdb.connect(str(path), read_only=True)
    try:
        evidence = con.execute("SELECT * FROM consentgate_runs").fetchall()
        evidence += con.execute("SELECT * FROM consentgate_lineage").fetchall()
    finally:
        con.close()
    assert evidence and MARKER not in str(evidence)

    sent = OPENLINEAGE_EVENTS.read_text()[len(before) :] if OPENLINEAGE_EVENTS.exists() else ""
    fails = [e for e in map(json.loads, sent.splitlines()) if e.get("eventType") == "FAIL"]
    assert fails, "the OpenLineage listener sent no FAIL event"
    assert MARKER not in sent
