"""The shared decision cases (one of each kind: THRIFT_CASE_NAMES) through the dbt macros on dbt-spark
`method: thrift`, against the suite's real Spark Thrift server: consented(), consent_counts() and the only_consented test, checked as
tests/spark/test_spark_dbt_cases.py checks them over Spark Connect (its loader and reader are reused,
over a SparkThriftConnection instead of a SparkSession).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import test_spark_dbt_cases as connect_cases
import yaml
from dbt_harness import Backend, run_dbt
from sparkserver import fresh_thrift_schema

pytestmark = [pytest.mark.spark, pytest.mark.slow]

cases = connect_cases.cases
#: The cases run over Thrift: one per kind of rule the case file checks (grants, withdrawal, denial, expiry,
#: ties, malformed events, trimming, normalisation, integer keys, case-insensitive columns, year one,
#: the session zone). Every case runs through the same macros over Spark Connect
#: (test_spark_dbt_cases.py); over Thrift only the transport differs, and a dbt build of the whole file
#: through it costs minutes of CI for no other difference.
THRIFT_CASE_NAMES = (
    "plain_grant_keeps_row",
    "no_event_means_no_row",
    "latest_event_decides_withdrawal",
    "denied",
    "grant_expires_at_cutoff",
    "tie_order_withdrawn_denied_invalid_granted",
    "malformed_events_never_count",
    "keys_are_trimmed",
    "lower_normalisation_for_email_keys",
    "integer_dataset_keys_match_text_consent",
    "case_insensitive_columns_with_normalize_lower",
    "events_in_year_one_decide",
    "dbt_tz_after_withdrawal_offset_as_of",
)
SELECTED = [i for i, case in cases.chosen() if case["name"] in THRIFT_CASE_NAMES]
THRIFT_CASES = [case for _i, case in cases.chosen(SELECTED)]


class ThriftSql:
    """The `spark.sql(text, args=[...]).collect()` that test_spark_dbt_cases' loader and reader use, over
    a SparkThriftConnection (its `?` parameters filled in client-side)."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def sql(self, text: str, args: list[Any] | None = None) -> Any:
        cur = self.con.cursor()
        cur.execute(text, args)
        return SimpleNamespace(collect=cur.fetchall)


def thrift_profile(profile: str, server: Any, schema: str, *, time_zone: str) -> dict[str, Any]:
    return {
        profile: {
            "target": "spark",
            "outputs": {
                "spark": {
                    "type": "spark",
                    "method": "thrift",
                    "host": server.host,
                    "port": server.port,
                    "user": "consentgate",
                    "schema": schema,
                    "threads": 1,
                    "server_side_parameters": {"spark.sql.session.timeZone": time_zone},
                }
            },
        }
    }


@pytest.fixture(scope="module")
def case_results(
    spark_thrift_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("thrift_cases")
    con, schema = fresh_thrift_schema(spark_thrift_server, "dbt_cases")
    try:
        spark = ThriftSql(con)
        spark.sql(f"drop schema if exists {schema}_dbt_test__audit cascade")
        connect_cases._load(spark, schema, SELECTED)
        backend = Backend("spark", {"CONSENTGATE_DBT_TARGET": "spark"}, schema)
        project = base / "project"
        cases._write_project(project, backend, SELECTED)
        (project / "profiles.yml").write_text(
            yaml.safe_dump(
                thrift_profile("consentgate_cases", spark_thrift_server, schema, time_zone=cases.SESSION_TZ)
            )
        )
        run_dbt(project, ["run"], backend)
        run_dbt(project, ["test"], backend)
        return connect_cases._collect(spark, schema, SELECTED)
    finally:
        con.close()


@pytest.mark.parametrize("case", THRIFT_CASES, ids=[case["name"] for case in THRIFT_CASES])
def test_thrift_consented_keeps_exactly_the_expected_rows(case_results, case: dict[str, Any]) -> None:
    expected_kept, _ = cases._expected(case)
    assert case_results[case["name"]]["kept"] == expected_kept


@pytest.mark.parametrize("case", THRIFT_CASES, ids=[case["name"] for case in THRIFT_CASES])
def test_thrift_consent_counts_match_expected_reasons(case_results, case: dict[str, Any]) -> None:
    _, expected_counts = cases._expected(case)
    assert case_results[case["name"]]["counts"] == expected_counts


@pytest.mark.parametrize("case", THRIFT_CASES, ids=[case["name"] for case in THRIFT_CASES])
def test_thrift_only_consented_counts_the_excluded_rows_per_reason(
    case_results, case: dict[str, Any]
) -> None:
    expected: dict[str, int] = {}
    for verdict in case["expect"].values():
        if verdict != "kept":
            expected[verdict] = expected.get(verdict, 0) + 1
    assert case_results[case["name"]]["failures"] == expected
