"""purge_withdrawn on dbt-spark over Spark Connect, on the real cluster: parquet has no DELETE, so the
purge rewrites only the subject buckets that hold changed subjects (docs/spark.md#dbt). Two nights of
`dbt build`: after an opt-out and an expiry recorded between them, the subjects' old rows are gone from
a bucketed model and from an unbucketed one (whole-table rewrite), every other row stays, new rows are
appended, and only the changed subjects' buckets were rewritten. Checked against tests/reference.py."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))

from dbt_harness import Backend, link_package, run_dbt, vars_arg  # noqa: E402
from reference import Event  # noqa: E402
from reference import enforce as reference_enforce  # noqa: E402
from sparkserver import fresh_schema  # noqa: E402
from test_spark_dbt_cases import spark_backend, spark_profile  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BUCKETS = 8
SUBJECTS = [f"s{i:02d}" for i in range(24)]
T1, T2 = datetime(2026, 3, 1), datetime(2026, 3, 2)
# s03 withdraws and s07 denies between the nights, s11's grant expires between them; s05 never consented.
GRANTED = [s for s in SUBJECTS if s != "s05"]
LATER = [("s03", "withdrawn", datetime(2026, 3, 1, 12)), ("s07", "denied", datetime(2026, 3, 1, 13))]
EXPIRES = {"s11": datetime(2026, 3, 1, 18)}

BUCKETED = """{{ config(materialized='incremental', incremental_strategy='append', file_format='parquet',
            partition_by=['consentgate_bucket'],
            post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}") }}
select e.event_id, e.customer_id, {{ consentgate.subject_bucket('customer_id') }} as consentgate_bucket
from ({{ consentgate.consented(source('raw', 'events'), 'customer_id', 'ad_targeting') }}) as e
{% if is_incremental() %}where e.event_id > (select coalesce(max(event_id), 0) from {{ this }}){% endif %}
"""
PLAIN = """{{ config(materialized='incremental', incremental_strategy='append', file_format='parquet',
            post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}") }}
select e.event_id, e.customer_id
from ({{ consentgate.consented(source('raw', 'events'), 'customer_id', 'ad_targeting') }}) as e
{% if is_incremental() %}where e.event_id > (select coalesce(max(event_id), 0) from {{ this }}){% endif %}
"""


def _events_rows(start: int, per_subject: int) -> list[tuple[int, str]]:
    rows, i = [], start
    for _ in range(per_subject):
        for s in SUBJECTS:
            rows.append((i, s))
            i += 1
    return rows


def _insert(spark: Any, table: str, rows: list[tuple], marks: str) -> None:
    spark.sql(
        f"insert into {table} values {', '.join([marks] * len(rows))}", args=[v for r in rows for v in r]
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _write_project(project: Path, schema: str) -> None:
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: consentgate_purge\nversion: '1.0'\nconfig-version: 2\nprofile: consentgate_purge\n"
    )
    (project / "profiles.yml").write_text(yaml.safe_dump(spark_profile("consentgate_purge", schema)))
    (project / "models" / "audience_bucketed.sql").write_text(BUCKETED)
    (project / "models" / "audience_plain.sql").write_text(PLAIN)
    (project / "models" / "sources.yml").write_text(
        yaml.safe_dump(
            {"version": 2, "sources": [{"name": "raw", "schema": schema, "tables": [{"name": "events"}]}]}
        )
    )
    link_package(project)


@pytest.fixture(scope="module")
def purge_run(spark_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("spark_purge")
    spark, schema = fresh_schema(spark_server, "dbt_purge")
    try:
        spark.sql(f"create table {schema}.events (event_id bigint, customer_id string) using parquet")
        spark.sql(
            f"create table {schema}.consent_events (subject_id string, purpose string, status string, event_ts timestamp, "
            "recorded_at timestamp, expires_at timestamp, source string, policy_version string) using parquet"
        )
        events = [(s, "ad_targeting", "granted", datetime(2026, 1, 1), None, EXPIRES.get(s)) for s in GRANTED]
        consent_table = f"{schema}.consent_events"
        _insert(
            spark,
            consent_table,
            [(*e[:3], *(_utc(v) for v in e[3:]), "test", "v1") for e in events],
            "(?, ?, ?, ?, ?, ?, ?, ?)",
        )
        night1 = _events_rows(1, 3)
        _insert(spark, f"{schema}.events", night1, "(?, ?)")
        project = base / "project"
        _write_project(project, schema)
        backend: Backend = spark_backend(spark_server, schema)
        common = {"consentgate_consent_relation": consent_table, "consentgate_buckets": BUCKETS}
        run_dbt(project, ["build", *vars_arg(**common, consentgate_as_of=T1.isoformat())], backend)
        first = {m: _rows(spark, f"{schema}.audience_{m}") for m in ("bucketed", "plain")}
        # Between the nights: the opt-outs are recorded, new events arrive (also for the opted-out).
        later = [(s, "ad_targeting", st, ts, None, None) for s, st, ts in LATER]
        events += later
        _insert(
            spark,
            consent_table,
            [(*e[:3], *(_utc(v) for v in e[3:]), "test", "v1") for e in later],
            "(?, ?, ?, ?, ?, ?, ?, ?)",
        )
        night2 = _events_rows(1 + len(night1), 1)
        _insert(spark, f"{schema}.events", night2, "(?, ?)")
        second = run_dbt(project, ["build", *vars_arg(**common, consentgate_as_of=T2.isoformat())], backend)
        after = {m: _rows(spark, f"{schema}.audience_{m}") for m in ("bucketed", "plain")}
        partitions = len(spark.sql(f"show partitions {schema}.audience_bucketed").collect())
        return {
            "events": [Event(*e) for e in events],
            "night1": night1,
            "all": night1 + night2,
            "first": first,
            "after": after,
            "log": second.stdout,
            "partitions": partitions,
        }
    finally:
        spark.stop()


def _rows(spark: Any, table: str) -> set[tuple[int, str]]:
    spark.sql(f"refresh table {table}")  # another session (dbt's) rewrote its files
    return {(int(r[0]), str(r[1])) for r in spark.sql(f"select event_id, customer_id from {table}").collect()}


def _expected(rows: list[tuple[int, str]], events: list[Event], as_of: datetime) -> set[tuple[int, str]]:
    kept, _counts = reference_enforce(rows, events, "ad_targeting", as_of, None)
    return {row for row in rows if row[0] in set(kept)}


@pytest.mark.parametrize("model", ["bucketed", "plain"])
def test_first_night_keeps_the_consented_rows(purge_run: dict[str, Any], model: str) -> None:
    first_events = [e for e in purge_run["events"] if e.status == "granted"]
    assert purge_run["first"][model] == _expected(purge_run["night1"], first_events, T1)


@pytest.mark.parametrize("model", ["bucketed", "plain"])
def test_opt_outs_leave_every_incremental_model_on_the_next_night(
    purge_run: dict[str, Any], model: str
) -> None:
    after = purge_run["after"][model]
    assert after == _expected(purge_run["all"], purge_run["events"], T2)
    gone = {s for s, _st, _ts in LATER} | set(EXPIRES)
    assert not {s for _i, s in after} & gone
    assert {s for _i, s in after} == set(GRANTED) - gone


def test_only_the_changed_subjects_buckets_are_rewritten(purge_run: dict[str, Any]) -> None:
    assert "bucket(s) rewritten" in purge_run["log"]
    rewritten = [
        line for line in purge_run["log"].splitlines() if "audience_bucketed" in line and "rewritten" in line
    ]
    assert len(rewritten) == 1
    count = int(rewritten[0].split("): ", 1)[1].split(" of ")[0])
    assert 1 <= count <= 3 < BUCKETS  # three changed subjects: at most three of the eight buckets
    assert "whole table rewritten (not partitioned by consentgate_bucket)" in purge_run["log"]
    assert purge_run["partitions"] <= BUCKETS
