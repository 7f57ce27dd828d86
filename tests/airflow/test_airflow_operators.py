"""ConsentFilterOperator and ConsentAuditOperator run by Airflow (dag.test) on a real DuckDB file and on a
real PostgreSQL server: same rows kept, same counts, checked against the reference implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cg_airflow import (
    AS_OF,
    IDENTIFIERS,
    LOGICAL_DATE,
    asset_events,
    duckdb_conn,
    events,
    read,
    run_dag,
    seed,
    task_states,
    try_numbers,
    xcoms,
)
from reference import REASONS
from reference import enforce as reference_enforce


def expected(con: Any, table: str, id_col: str, subject_col: str, purpose: str, normalize: str | None):
    rows = read(con, f"SELECT {id_col}, {subject_col} FROM {table}")
    kept, counts = reference_enforce(rows, events(con), purpose, AS_OF, normalize)
    return sorted(kept, key=str), counts


def operator_dag(dag_id: str, conn_id: str):
    from airflow.sdk import DAG
    from consentgate.airflow.operators import ConsentAuditOperator, ConsentFilterOperator

    with DAG(
        dag_id, schedule=None, start_date=LOGICAL_DATE, catchup=False, default_args={"retries": 2}
    ) as dag:
        customers = ConsentFilterOperator(
            task_id="enforce_customers",
            source="raw.customers",
            target="consented.customers",
            subject_column="customer_id",
            purpose="ad_targeting",
            conn_id=conn_id,
        )
        email = ConsentFilterOperator(
            task_id="enforce_email",
            source="raw.email_engagement",
            target="consented.email_engagement",
            subject_column="email",
            purpose="email_marketing",
            normalize="lower",
            dataset="email_engagement",
            conn_id=conn_id,
            as_of="{{ macros.consentgate.consent_cutoff(data_interval_end) }}",  # the plugin's macro
        )
        audit = ConsentAuditOperator(
            task_id="audit_customers",
            table="consented.customers",
            subject_column="customer_id",
            purpose="ad_targeting",
            conn_id=conn_id,
        )
        customers >> email >> audit
    return dag


def run_operators(dag_id: str, conn_id: str, con_factory) -> dict[str, Any]:
    """Run the operator DAG; return what it did, read back from Airflow and from the database."""
    dag_run = run_dag(operator_dag(dag_id, conn_id), LOGICAL_DATE)
    states = task_states(dag_run)
    assert states == {
        "enforce_customers": "success",
        "enforce_email": "success",
        "audit_customers": "success",
    }
    con = con_factory()
    try:
        result = {
            "customers": xcoms(dag_run, "enforce_customers")[0],
            "email": xcoms(dag_run, "enforce_email")[0],
            "audit": xcoms(dag_run, "audit_customers")[0],
            "kept_customers": sorted(r[0] for r in read(con, "SELECT customer_id FROM consented.customers")),
            "kept_messages": sorted(
                r[0] for r in read(con, "SELECT message_id FROM consented.email_engagement")
            ),
            "expected_customers": expected(
                con, "raw.customers", "customer_id", "customer_id", "ad_targeting", None
            ),
            "expected_email": expected(
                con, "raw.email_engagement", "message_id", "email", "email_marketing", "lower"
            ),
            "runs": read(
                con,
                "SELECT run_id, status, trigger, dag_id, task_id, airflow_run_id, as_of FROM consentgate_runs",
            ),
            "lineage": read(
                con, "SELECT run_id, dataset, task_id, trigger, rows_in, rows_out FROM consentgate_lineage"
            ),
            "airflow_run_id": dag_run.run_id,
            "asset_events": asset_events(dag_run),
        }
    finally:
        con.close()
    return result


def check_against_reference(result: dict[str, Any]) -> None:
    kept, counts = result["expected_customers"]
    assert result["kept_customers"] == sorted(kept)
    assert result["customers"]["rows_out"] == len(kept)
    assert result["customers"]["excluded"] == counts
    assert result["customers"]["rows_in"] == len(kept) + sum(counts.values())
    kept_m, counts_m = result["expected_email"]
    assert result["kept_messages"] == sorted(kept_m)
    assert result["email"]["excluded"] == counts_m
    # every exclusion reason decided at least one row: the fixture is not trivially passing
    assert all(counts[r] > 0 for r in REASONS), counts
    assert counts_m["null_subject"] == 2 and len(kept_m) == 2
    assert result["audit"]["passed"] is True
    assert result["audit"]["rows_checked"] == len(kept)
    assert sum(result["audit"]["violations"].values()) == 0


def check_evidence(result: dict[str, Any], dag_id: str) -> None:
    airflow_run_id = result["airflow_run_id"]
    # One run record: no task opened the run, so the first enforcement opened and closed it.
    assert result["runs"] == [
        (airflow_run_id, "success", "airflow", dag_id, "enforce_customers", airflow_run_id, AS_OF)
    ]
    assert sorted(result["lineage"]) == sorted(
        [
            (
                airflow_run_id,
                "consented.customers",
                "enforce_customers",
                "airflow",
                result["customers"]["rows_in"],
                result["customers"]["rows_out"],
            ),
            (
                airflow_run_id,
                "email_engagement",
                "enforce_email",
                "airflow",
                result["email"]["rows_in"],
                result["email"]["rows_out"],
            ),
        ]
    )
    # XComs hold counts only, never a subject identifier
    blob = json.dumps([result["customers"], result["email"], result["audit"]])
    assert not any(ident.lower() in blob.lower() for ident in IDENTIFIERS)


@pytest.fixture(scope="module")
def duckdb_result(airflow_db, tmp_path_factory, request) -> dict[str, Any]:
    import duckdb

    path = tmp_path_factory.mktemp("ops") / "ops.duckdb"
    con = duckdb.connect(str(path))
    seed(con)
    con.close()
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setenv("AIRFLOW_CONN_CG_DUCKDB", duckdb_conn(path))
    return run_operators("cg_ops_duckdb", "cg_duckdb", lambda: duckdb.connect(str(path)))


def test_filter_and_audit_on_duckdb_match_the_reference(duckdb_result) -> None:
    check_against_reference(duckdb_result)
    check_evidence(duckdb_result, "cg_ops_duckdb")
    assert sorted(uri.rsplit("/", 2)[-2:] for uri in duckdb_result["asset_events"]) == [
        ["consented", "customers"],
        ["consented", "email_engagement"],
    ]


@pytest.mark.postgres
def test_filter_and_audit_on_postgres_match_duckdb(airflow_db, pg_db, monkeypatch, duckdb_result) -> None:
    con = pg_db.connect()
    seed(con)
    con.close()
    monkeypatch.setenv(
        "AIRFLOW_CONN_CG_POSTGRES", f"postgresql://{pg_db.user}@{pg_db.host}:{pg_db.port}/{pg_db.dbname}"
    )
    result = run_operators("cg_ops_postgres", "cg_postgres", pg_db.connect)
    check_against_reference(result)
    check_evidence(result, "cg_ops_postgres")
    base = f"postgres://{pg_db.host}:{pg_db.port}/{pg_db.dbname}"
    assert set(result["asset_events"]) == {
        f"{base}/consented/customers",
        f"{base}/consented/email_engagement",
    }
    for key in ("kept_customers", "kept_messages"):
        assert result[key] == duckdb_result[key]
    for op in ("customers", "email"):
        for field in ("rows_in", "rows_out", "excluded", "as_of", "purpose", "source", "target"):
            assert result[op][field] == duckdb_result[op][field], (op, field)
    assert result["audit"]["violations"] == duckdb_result["audit"]["violations"]


def test_missing_consent_column_fails_without_retry_and_leaves_target_untouched(
    airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    path = tmp_path / "broken.duckdb"
    con = duckdb.connect(str(path))
    seed(con)
    con.execute("CREATE SCHEMA consented")
    con.execute("CREATE TABLE consented.customers AS SELECT 42 AS customer_id")
    con.execute("ALTER TABLE consent_events DROP COLUMN status")
    con.close()
    monkeypatch.setenv("AIRFLOW_CONN_CG_BROKEN", duckdb_conn(path))

    from airflow.sdk import DAG
    from consentgate.airflow.operators import ConsentFilterOperator

    with DAG("cg_ops_broken", schedule=None, start_date=LOGICAL_DATE, default_args={"retries": 3}) as dag:
        ConsentFilterOperator(
            task_id="enforce_customers",
            source="raw.customers",
            target="consented.customers",
            subject_column="customer_id",
            purpose="ad_targeting",
            conn_id="cg_broken",
        )
    dag_run = run_dag(dag, LOGICAL_DATE)
    assert task_states(dag_run) == {"enforce_customers": "failed"}
    assert try_numbers(dag_run) == {"enforce_customers": 1}  # a data error is never retried
    con = duckdb.connect(str(path))
    try:
        assert read(con, "SELECT customer_id FROM consented.customers") == [(42,)]
        runs = read(con, "SELECT run_id, status, error FROM consentgate_runs")
        assert len(runs) == 1 and runs[0][0] == dag_run.run_id and runs[0][1] == "failed"
        assert "no column 'status'" in runs[0][2]
    finally:
        con.close()


def test_a_locked_duckdb_file_is_retryable_and_data_errors_are_not(tmp_path: Path, monkeypatch) -> None:
    import duckdb
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
    from consentgate.airflow.common import fail_task
    from consentgate.airflow.hooks import open_warehouse
    from consentgate.errors import ConsentSourceError, DatabaseLockedError, retryable

    path = tmp_path / "locked.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setenv("AIRFLOW_CONN_CG_LOCKED", duckdb_conn(path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(DatabaseLockedError, match="locked by another process") as locked:
            with open_warehouse("cg_locked"):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert retryable(locked.value)
    with pytest.raises(AirflowException, match="may be transient") as transient:
        fail_task(locked.value)
    assert not isinstance(transient.value, AirflowFailException)
    with pytest.raises(AirflowFailException, match="has no column"):
        fail_task(ConsentSourceError("consent table 'consent_events' has no column 'status'"))


def test_database_errors_reach_airflow_without_the_values_they_quote() -> None:
    import duckdb
    from airflow.sdk.exceptions import AirflowFailException
    from consentgate.airflow.common import fail_task

    with pytest.raises(AirflowFailException) as failed:
        fail_task(duckdb.ConversionException("Could not convert string 'ann@example.com' to INT64"))
    assert "ann@example.com" not in str(failed.value)
    # The class is named, the engine's message withheld (docs/errors.md): pattern redaction was the leak.
    assert str(failed.value).startswith("duckdb.ConversionException (its message is withheld")
    assert failed.value.__suppress_context__  # the original message is not chained into the log
    assert failed.value.__context__ is None and failed.value.__cause__ is None


def test_an_in_memory_or_missing_duckdb_connection_is_refused(monkeypatch, tmp_path: Path) -> None:
    from consentgate.airflow.hooks import open_warehouse
    from consentgate.errors import UnsupportedConnectionError

    monkeypatch.setenv("AIRFLOW_CONN_CG_MEMORY", json.dumps({"conn_type": "duckdb"}))
    with pytest.raises(UnsupportedConnectionError, match="in memory"):
        with open_warehouse("cg_memory"):
            pass
    monkeypatch.setenv("AIRFLOW_CONN_CG_NOFILE", duckdb_conn(tmp_path / "absent.duckdb"))
    with pytest.raises(UnsupportedConnectionError, match="does not exist"):
        with open_warehouse("cg_nofile"):
            pass
    monkeypatch.setenv("AIRFLOW_CONN_CG_HTTP", json.dumps({"conn_type": "http", "host": "example.com"}))
    with pytest.raises(UnsupportedConnectionError, match="not supported"):
        with open_warehouse("cg_http"):
            pass
