"""Every shared decision case (tests/cases/decision_cases.yaml) through the dbt macros on dbt-spark over
Spark Connect, on the real cluster: consented(), consent_counts() and the only_consented test, checked
against the case's expectations exactly as tests/dbt/test_dbt_decision_cases.py does on DuckDB and
PostgreSQL (that module writes the project; this one loads the cases into Spark and reads the results).

dbt runs with a non-UTC session time zone: the macros' literals and epoch_us are zone-independent.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))

import test_dbt_decision_cases as cases  # noqa: E402
from dbt_harness import Backend, run_dbt  # noqa: E402
from sparkserver import fresh_schema  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SESSION_TZ = cases.SESSION_TZ


def spark_profile(profile: str, schema: str, *, time_zone: str = "UTC") -> dict[str, Any]:
    """A dbt-spark profile over Spark Connect: `method: session` with $SPARK_REMOTE set (env of run_dbt)."""
    return {
        profile: {
            "target": "spark",
            "outputs": {
                "spark": {
                    "type": "spark",
                    "method": "session",
                    "host": "NA",
                    "schema": schema,
                    "threads": 1,
                    "server_side_parameters": {"spark.sql.session.timeZone": time_zone},
                }
            },
        }
    }


def spark_backend(server: Any, schema: str) -> Backend:
    return Backend("spark", {"SPARK_REMOTE": server.url, "CONSENTGATE_DBT_TARGET": "spark"}, schema)


def _spark_type(kind: str | None) -> str:
    if kind == "text_ci":
        return "string collate UTF8_LCASE"
    return "bigint" if kind == "integer" else "string"


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # the cases' naive instants are UTC
    return value


def _load(spark: Any, schema: str, selected: Sequence[int] | None = None) -> None:
    for i, case in cases.chosen(selected):
        events_type = _spark_type(case.get("consent_subject_type"))
        rows_type = _spark_type(case.get("subject_type"))
        spark.sql(
            f"create table {schema}.events_{i} (subject_id {events_type}, purpose string, status string, "
            "event_ts timestamp, recorded_at timestamp, expires_at timestamp, source string, policy_version string) "
            "using parquet"
        )
        spark.sql(f"create table {schema}.rows_{i} (row_id int, subject {rows_type}) using parquet")
        events = cases._events(case)
        if events:
            marks = ", ".join(
                f"(cast(? as {events_type}), ?, ?, ?, ?, ?, 'test', 'v1')".replace(" collate UTF8_LCASE", "")
                for _ in events
            )
            spark.sql(
                f"insert into {schema}.events_{i} values {marks}",
                args=[_utc(v) for event in events for v in event],
            )
        if case["rows"]:
            marks = ", ".join(
                f"(?, cast(? as {rows_type.replace(' collate UTF8_LCASE', '')}))" for _ in case["rows"]
            )
            spark.sql(
                f"insert into {schema}.rows_{i} values {marks}", args=[v for row in case["rows"] for v in row]
            )


def _collect(spark: Any, schema: str, selected: Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {
        case["name"]: {"kept": set(), "counts": None, "failures": {}} for _i, case in cases.chosen(selected)
    }
    for name, row_id in spark.sql(f"select case_name, row_id from {schema}.case_kept").collect():
        results[name]["kept"].add(row_id)
    columns = ["rows_in", "rows_out", *[f"excluded_{reason}" for reason in cases.REASONS]]
    for row in spark.sql(f"select case_name, {', '.join(columns)} from {schema}.case_counts").collect():
        results[row[0]]["counts"] = dict(zip(columns, (int(v) for v in row[1:]), strict=True))
    audit = f"{schema}_dbt_test__audit"
    present = {str(r[1]) for r in spark.sql(f"show tables in {audit}").collect()}
    for i, case in cases.chosen(selected):
        if f"fail_{i}" in present:
            for reason, failing in spark.sql(
                f"select consentgate_reason, failing_rows from {audit}.fail_{i}"
            ).collect():
                results[case["name"]]["failures"][reason] = int(failing)
    return results


@pytest.fixture(scope="module")
def case_results(spark_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("spark_cases")
    spark, schema = fresh_schema(spark_server, "dbt_cases")
    try:
        spark.sql(f"drop schema if exists {schema}_dbt_test__audit cascade")
        _load(spark, schema)
        backend = spark_backend(spark_server, schema)
        project = base / "project"
        cases._write_project(project, backend)
        (project / "profiles.yml").write_text(
            yaml.safe_dump(spark_profile("consentgate_cases", schema, time_zone=SESSION_TZ))
        )
        run_dbt(project, ["run"], backend)  # two invocations: each stays inside run_dbt's time limit
        run_dbt(project, ["test"], backend)
        return _collect(spark, schema)
    finally:
        spark.stop()


@pytest.mark.parametrize("case", cases.ALL_CASES, ids=[case["name"] for case in cases.ALL_CASES])
def test_spark_consented_keeps_exactly_the_expected_rows(case_results, case: dict[str, Any]) -> None:
    expected_kept, _ = cases._expected(case)
    assert case_results[case["name"]]["kept"] == expected_kept


@pytest.mark.parametrize("case", cases.ALL_CASES, ids=[case["name"] for case in cases.ALL_CASES])
def test_spark_consent_counts_match_expected_reasons(case_results, case: dict[str, Any]) -> None:
    _, expected_counts = cases._expected(case)
    assert case_results[case["name"]]["counts"] == expected_counts


@pytest.mark.parametrize("case", cases.ALL_CASES, ids=[case["name"] for case in cases.ALL_CASES])
def test_spark_only_consented_counts_the_excluded_rows_per_reason(case_results, case: dict[str, Any]) -> None:
    expected: dict[str, int] = {}
    for verdict in case["expect"].values():
        if verdict != "kept":
            expected[verdict] = expected.get(verdict, 0) + 1
    assert case_results[case["name"]]["failures"] == expected
