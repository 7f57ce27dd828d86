"""The nightly DAG's own run (engine datasets and the dbt models it builds, one run) verifies clean:
every lineage number, engine and dbt alike, means what `consentgate verify` checks it against
(docs/runs.md, "What the numbers mean"). Before, dbt's rows_out counted consented input rows, and
verify said "verified with warnings" with one false warning per aggregated model.

Kept beside the cosmos tests, which share its environment (Airflow and the dbt harness)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cg_airflow import REPO, build_demo, duckdb_conn

pytestmark = pytest.mark.slow


def test_the_nightly_run_verifies_clean(airflow_db, tmp_path, monkeypatch) -> None:
    import duckdb
    from airflow.dag_processing.dagbag import DagBag
    from consentgate.engine.session import session_for
    from consentgate.evidence.verification import verify_run

    path = build_demo(tmp_path / "warehouse.duckdb", subjects=200)
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", duckdb_conn(path))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt_target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt_logs"))
    for name in ("CONSENTGATE_POLICY", "CONSENTGATE_CONN_ID", "CONSENTGATE_POOL"):
        monkeypatch.delenv(name, raising=False)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    # A date no other test's nightly run uses (dag.test() runs of one DAG id must not share a DagRun).
    logical = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=40)
    dag_run = bag.dags["consent_enforcement_nightly"].test(logical_date=logical)
    assert str(dag_run.state) == "success"

    con = duckdb.connect(str(path))
    try:
        (run_id,) = con.execute("select run_id from consentgate_runs where trigger = 'airflow'").fetchone()
        triggers = {t for (t,) in con.execute("select distinct trigger from consentgate_lineage").fetchall()}
        result = verify_run(session_for(con, "duckdb"), run_id)
    finally:
        con.close()
    assert triggers == {"airflow", "dbt"}  # one run: the engine's datasets and the dbt models
    assert (result["status"], result["problems"], result["warnings"]) == ("verified", [], [])
    assert {d["status"] for d in result["datasets"]} == {"reproduced"}
