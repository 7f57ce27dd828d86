"""ConsentFilterOperator and ConsentAuditOperator on an Airflow `spark_connect` connection, run by
Airflow (dag.test) against the suite's real Spark cluster over Spark Connect: the same rows kept, the
same counts and the same evidence as on DuckDB and PostgreSQL (tests/airflow/test_airflow_operators.py
builds the DAG), then an opt-out recorded between two nights is gone from the target on the next one.

The connection is an `AIRFLOW_CONN_*` URI of type spark_connect (`spark-connect://host:port`), opened by
consentgate.airflow.hooks without apache-airflow-providers-apache-spark (docs/spark.md#airflow).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cg_airflow import AS_OF, LOGICAL_DATE, SETUP, asset_events, events, read, run_dag, task_states, xcoms
from consentgate.engine.spark import SparkConnection
from reference import enforce as reference_enforce
from test_airflow_operators import check_against_reference, check_evidence, operator_dag, run_operators

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CONN_ID = "cg_spark"
# Tables the operator DAG reads and writes, in the session's default schema unless qualified.
OWN_SCHEMAS = ("raw", "consented")
EVIDENCE_VIEWS = ("consentgate_runs", "consentgate_lineage")  # views over *_log tables on Spark
OWN_TABLES = ("consent_events", "consentgate_runs_log", "consentgate_lineage_log")


def _connect(server: Any) -> SparkConnection:
    return SparkConnection(server.session(), owned=True)


def _fresh_warehouse(server: Any) -> None:
    """The operator tests' warehouse (cg_airflow.SETUP) on Spark, replacing a previous one."""
    con = _connect(server)
    try:
        cur = con.cursor()
        for schema in OWN_SCHEMAS:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for view in EVIDENCE_VIEWS:
            cur.execute(f"DROP VIEW IF EXISTS {view}")
        for table in OWN_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        for sql in SETUP:
            cur.execute(sql)
    finally:
        con.close()


@pytest.fixture(scope="module")
def spark_ops(airflow_db, spark_server, request) -> dict[str, Any]:
    _fresh_warehouse(spark_server)
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", f"spark-connect://{spark_server.host}:{spark_server.connect_port}"
    )
    first = run_operators("cg_ops_spark", CONN_ID, lambda: _connect(spark_server))
    return {"first": first}


def test_spark_connection_is_a_spark_connect_url(spark_ops, spark_server) -> None:
    from airflow.sdk import BaseHook
    from consentgate.airflow.hooks import dbt_env, dialect_of, spark_connect_url

    conn = BaseHook.get_connection(CONN_ID)
    assert conn.conn_type == "spark_connect" and dialect_of(conn.conn_type) == "spark"
    assert spark_connect_url(conn) == spark_server.url
    assert dbt_env(CONN_ID) == {"CONSENTGATE_DBT_TARGET": "spark", "SPARK_REMOTE": spark_server.url}


def test_filter_and_audit_on_spark_match_the_reference(spark_ops, spark_server) -> None:
    result = spark_ops["first"]
    check_against_reference(result)
    check_evidence(result, "cg_ops_spark")
    base = f"sc://{spark_server.host}:{spark_server.connect_port}"
    assert set(result["asset_events"]) == {
        f"{base}/consented/customers",
        f"{base}/consented/email_engagement",
    }


def test_an_opt_out_is_gone_from_the_target_on_the_next_night(spark_ops, spark_server) -> None:
    assert 1 in spark_ops["first"]["kept_customers"]
    night2 = LOGICAL_DATE + timedelta(days=1)
    con = _connect(spark_server)
    try:
        con.cursor().execute(
            "INSERT INTO consent_events VALUES ('1', 'ad_targeting', 'withdrawn', ?, NULL, NULL, 'settings', 'v2')",
            [AS_OF + timedelta(hours=1)],
        )
    finally:
        con.close()
    dag_run = run_dag(operator_dag("cg_ops_spark", CONN_ID), night2)
    assert task_states(dag_run) == {
        "enforce_customers": "success",
        "enforce_email": "success",
        "audit_customers": "success",
    }
    con = _connect(spark_server)
    try:
        kept = sorted(r[0] for r in read(con, "SELECT customer_id FROM consented.customers"))
        rows = read(con, "SELECT customer_id, customer_id FROM raw.customers")
        expected, _counts = reference_enforce(
            rows, events(con), "ad_targeting", AS_OF + timedelta(days=1), None
        )
    finally:
        con.close()
    assert 1 not in kept
    assert kept == sorted(expected)
    audit = xcoms(dag_run, "audit_customers")[0]
    assert audit["passed"] is True and audit["rows_checked"] == len(kept)
    assert asset_events(dag_run)
