"""ConsentFilterOperator and ConsentAuditOperator on an Airflow `hiveserver2` connection to Spark's Thrift
server (the suite's real one, tests/sparkserver.running_thrift_server), run by Airflow (dag.test()): the
same rows kept, counts and evidence as on DuckDB, PostgreSQL and Spark Connect (the DAG of
tests/airflow/test_airflow_operators.py), then an opt-out recorded between two nights is gone from the
target on the next one.

The connection opens through the Hive provider's HiveServer2Hook (a DbApiHook over PyHive), and the
engine takes the same Spark path as over Spark Connect (docs/spark.md#thrift).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cg_airflow import AS_OF, LOGICAL_DATE, SETUP, asset_events, events, read, run_dag, task_states, xcoms
from consentgate.engine.spark_thrift import SparkThriftConnection
from reference import enforce as reference_enforce
from test_airflow_operators import check_against_reference, check_evidence, operator_dag, run_operators

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CONN_ID = "cg_spark_thrift"
DAG_ID = "cg_ops_spark_thrift"


def _connect(server: Any) -> SparkThriftConnection:
    return SparkThriftConnection(server.connect(), owned=True)


@pytest.fixture(scope="module")
def thrift_ops(airflow_db, spark_thrift_server, request) -> dict[str, Any]:
    con = _connect(spark_thrift_server)
    try:
        cur = con.cursor()
        cur.execute("DROP SCHEMA IF EXISTS raw CASCADE")
        cur.execute("DROP SCHEMA IF EXISTS consented CASCADE")
        for sql in SETUP:
            cur.execute(sql)
    finally:
        con.close()
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        f"hiveserver2://{spark_thrift_server.host}:{spark_thrift_server.port}/default",
    )
    first = run_operators(DAG_ID, CONN_ID, lambda: _connect(spark_thrift_server))
    return {"first": first}


def test_a_hiveserver2_connection_is_spark(thrift_ops, spark_thrift_server) -> None:
    from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook
    from consentgate.airflow.hooks import dbt_env, dialect_of, spark_location

    conn = BaseHook.get_connection(CONN_ID)
    assert conn.conn_type == "hiveserver2" and dialect_of(conn.conn_type) == "spark"
    assert isinstance(conn.get_hook(), HiveServer2Hook) and isinstance(conn.get_hook(), DbApiHook)
    location = spark_location(conn)
    assert (location.host, location.port) == (spark_thrift_server.host, spark_thrift_server.port)
    # dbt-spark `method: thrift` on the same server, not a Spark Connect URL on the Thrift port
    assert dbt_env(CONN_ID) == {
        "CONSENTGATE_DBT_TARGET": "spark_thrift",
        "CONSENTGATE_SPARK_THRIFT_HOST": spark_thrift_server.host,
        "CONSENTGATE_SPARK_THRIFT_PORT": str(spark_thrift_server.port),
        "CONSENTGATE_SPARK_THRIFT_USER": "",
    }


def test_filter_and_audit_on_the_thrift_server_match_the_reference(thrift_ops, spark_thrift_server) -> None:
    result = thrift_ops["first"]
    check_against_reference(result)
    check_evidence(result, DAG_ID)
    base = f"sc://{spark_thrift_server.host}:{spark_thrift_server.port}"
    assert set(result["asset_events"]) == {
        f"{base}/consented/customers",
        f"{base}/consented/email_engagement",
    }


def test_an_opt_out_is_gone_from_the_target_on_the_next_night(thrift_ops, spark_thrift_server) -> None:
    assert 1 in thrift_ops["first"]["kept_customers"]
    night2 = LOGICAL_DATE + timedelta(days=1)
    con = _connect(spark_thrift_server)
    try:
        con.cursor().execute(
            "INSERT INTO consent_events VALUES ('1', 'ad_targeting', 'withdrawn', ?, NULL, NULL, 'settings', 'v2')",
            [AS_OF + timedelta(hours=1)],
        )
    finally:
        con.close()
    dag_run = run_dag(operator_dag(DAG_ID, CONN_ID), night2)
    assert task_states(dag_run) == {
        "enforce_customers": "success",
        "enforce_email": "success",
        "audit_customers": "success",
    }
    con = _connect(spark_thrift_server)
    try:
        kept = sorted(r[0] for r in read(con, "SELECT customer_id FROM consented.customers"))
        rows = read(con, "SELECT customer_id, customer_id FROM raw.customers")
        expected, _counts = reference_enforce(
            rows, events(con), "ad_targeting", AS_OF + timedelta(days=1), None
        )
        # readers see the view switched to this night's run table; the last night's is kept for them
        tables = [r[1] for r in read(con, "SHOW TABLES IN consented LIKE 'customers__cg_*'")]
    finally:
        con.close()
    assert 1 not in kept
    assert kept == sorted(expected)
    assert len(tables) == 2
    audit = xcoms(dag_run, "audit_customers")[0]
    assert audit["passed"] is True and audit["rows_checked"] == len(kept)
    assert asset_events(dag_run)
