"""The nightly DAG end to end on Spark's Thrift server, over a `hiveserver2` connection: the second path
of docs/spark.md#thrift, with the same two nights and the same assertions as over Spark Connect
(test_airflow_nightly_spark_e2e.py, whose checks run here on this module's nights).

The operators reach the server through the Hive provider's HiveServer2Hook, and the DAG's dbt build runs
dbt-spark's `method: thrift` (the profile's spark_thrift target, chosen from the connection by
consentgate.airflow.hooks.dbt_env). The demo warehouse is copied into the server with SQL (a Thrift
session has no DataFrames): raw.* and default.consent_events, the Thrift session's current schema,
where the evidence and dbt's models live.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_airflow_nightly_spark_e2e as connect_nightly
from cg_airflow import build_demo, nightly_dag, read
from consentgate.engine.spark_thrift import SparkThriftConnection
from test_airflow_nightly_spark_e2e import OWN_RELATIONS, OWN_SCHEMAS, SCHEMA, night, opt_out, spark_tables

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CONN_ID = "warehouse_spark_thrift"
ROWS_PER_INSERT = 500


def _reset(con: Any) -> None:
    """Drop what this module, the Connect nightly's twin, or test_airflow_spark_thrift_e2e left."""
    cur = con.cursor()
    for schema in OWN_SCHEMAS:
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    views = {str(r[1]) for r in read(con, f"SHOW VIEWS IN {SCHEMA}")}
    for _ns, name, temporary in read(con, f"SHOW TABLES IN {SCHEMA}"):
        if not temporary and (
            name in OWN_RELATIONS or name.startswith(("_consentgate_", "ad_customer_features__"))
        ):
            cur.execute(f"DROP {'VIEW' if name in views else 'TABLE'} IF EXISTS `{SCHEMA}`.`{name}`")


def copy_demo_over_thrift(demo: Path, con: Any) -> dict[str, int]:
    """The demo's tables (same columns, types and rows) in the Thrift server's Spark; {table: rows}."""
    counts: dict[str, int] = {}
    cur = con.cursor()
    cur.execute("CREATE SCHEMA raw")
    for dst, ddl, rows in spark_tables(demo):
        cur.execute(f"CREATE TABLE {dst} ({ddl}) USING parquet")
        one = "(" + ", ".join(["?"] * len(rows[0])) + ")"
        for i in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[i : i + ROWS_PER_INSERT]
            cur.execute(
                f"INSERT INTO {dst} VALUES " + ", ".join([one] * len(chunk)), [v for r in chunk for v in r]
            )
        ((counts[dst],),) = read(con, f"SELECT count(*) FROM {dst}")
        assert counts[dst] == len(rows) > 0, dst
    return counts


@pytest.fixture(scope="module")
def thrift_nightly(airflow_db, spark_thrift_server, tmp_path_factory) -> Iterator[dict[str, Any]]:
    def connect() -> SparkThriftConnection:
        return SparkThriftConnection(spark_thrift_server.connect(), owned=True)

    tmp = tmp_path_factory.mktemp("thrift-nightly")
    con = connect()
    try:
        _reset(con)
        copied = copy_demo_over_thrift(build_demo(tmp / "warehouse.duckdb", subjects=300), con)
    finally:
        con.close()
    mp = pytest.MonkeyPatch()
    url = f"hiveserver2://{spark_thrift_server.host}:{spark_thrift_server.port}/{SCHEMA}"
    dag = nightly_dag(mp, tmp, CONN_ID, url, connect_nightly.spark_policy(tmp / "policy.yml"))
    # Thirty days after the Spark Connect nightly's nights: no shared run id.
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=50, hours=2)
    yield {
        "dag": dag,
        "connect": connect,
        "namespace": f"sc://{spark_thrift_server.host}:{spark_thrift_server.port}",
        "copied": copied,
        "days": [first, first + timedelta(days=1)],
        "started": time.perf_counter(),
    }
    mp.undo()
    con = connect()
    try:
        _reset(con)  # test_airflow_spark_thrift_e2e creates default.consent_events itself
    finally:
        con.close()


@pytest.fixture(scope="module")
def thrift_day1(thrift_nightly) -> dict[str, Any]:
    return night(thrift_nightly, 0)


@pytest.fixture(scope="module")
def thrift_opted_out(thrift_nightly, thrift_day1) -> dict[str, Any]:
    return opt_out(thrift_nightly)


@pytest.fixture(scope="module")
def thrift_day2(thrift_nightly, thrift_opted_out) -> dict[str, Any]:
    return night(thrift_nightly, 1)


def test_thrift_day1_every_target_holds_exactly_the_consented_rows(thrift_day1, thrift_nightly) -> None:
    connect_nightly.test_spark_day1_every_target_holds_exactly_the_consented_rows(thrift_day1, thrift_nightly)


def test_thrift_day1_dbt_models_and_audits_passed(thrift_day1, thrift_nightly) -> None:
    connect_nightly.test_spark_day1_dbt_models_on_spark_and_audits_passed(thrift_day1, thrift_nightly)


def test_thrift_day1_openlineage_names_the_dbt_models_on_the_server(thrift_day1, thrift_nightly) -> None:
    connect_nightly.test_spark_day1_openlineage_names_the_dbt_models_on_the_spark_server(
        thrift_day1, thrift_nightly
    )


def test_thrift_day1_run_evidence_says_success_with_the_counts(thrift_day1) -> None:
    connect_nightly.test_spark_day1_run_evidence_says_success_with_the_counts(thrift_day1)


def test_thrift_day2_opt_out_removes_the_subject_from_every_target_and_model(
    thrift_day1, thrift_day2, thrift_opted_out, thrift_nightly
) -> None:
    connect_nightly.test_spark_day2_opt_out_removes_the_subject_from_every_target_and_model(
        thrift_day1, thrift_day2, thrift_opted_out, thrift_nightly
    )
