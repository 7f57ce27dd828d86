"""Consent-source ingestion on the real Spark cluster: no transactions, so one append to the consent log
and state committed by the ingest's record (docs/spark.md, "Ingesting consent sources"). The same
guarantees as on DuckDB and PostgreSQL (tests/sources): order and batching never change what the log
decides (against the same reference), re-ingesting writes nothing, and an ingest killed at any point
leaves a log that decides as of its last whole ingest or the killed one, never anything else."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from consentgate.engine.enforcement import enforce
from consentgate.engine.session import session_for
from consentgate.engine.source_config import parse_sources
from consentgate.sources.ingest import ingest
from consentgate.sources.log import read_ingests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent.parent / "sources"))
from test_sources_property import LATE_GRANT, SUBJECTS, T0, AsGiven, observation, reference  # noqa: E402

pytestmark = pytest.mark.spark

HERE = Path(__file__).parent
PURPOSES = {"ad_targeting", "email_marketing"}
GPC_COLUMNS = {
    "subject": "customer_id",
    "signal": "sec_gpc",
    "event_ts": "requested_at",
    "recorded_at": "loaded_at",
}


class SparkWarehouse:
    """A fresh schema on the cluster with the two raw source tables of tests/sources' property test."""

    def __init__(self, spark: Any, schema: str) -> None:
        self.spark, self.schema = spark, schema
        self.session = session_for(spark, "spark")
        self.sources = parse_sources(
            [
                {"name": "banner", "kind": "events", "table": f"{schema}.banner_events"},
                {
                    "name": "web_gpc", "kind": "gpc", "table": f"{schema}.web_requests",
                    "columns": GPC_COLUMNS, "purposes": ["ad_targeting"],
                },
            ],
            PURPOSES,
            "test policy",
        )  # fmt: skip
        spark.sql(
            f"CREATE TABLE {schema}.banner_events (subject_id STRING, purpose STRING, status STRING, "
            "event_ts TIMESTAMP, recorded_at TIMESTAMP) USING parquet"
        )
        spark.sql(
            f"CREATE TABLE {schema}.web_requests (customer_id STRING, sec_gpc STRING, requested_at TIMESTAMP, "
            "loaded_at TIMESTAMP) USING parquet"
        )

    def deliver(self, batch: list[tuple[str, str, int, str]], arrived: datetime) -> list[Any]:
        """Load a batch as a loader would (arrival time in recorded_at / loaded_at), then ingest."""
        banner, gpc = [], []
        for src, subject, minute, value in batch:
            ts = (T0 + timedelta(minutes=minute)).isoformat(sep=" ")
            if src == "banner":
                banner.append(
                    f"('{subject}', 'ad_targeting', '{value}', TIMESTAMP '{ts}', TIMESTAMP '{arrived}')"
                )
            else:
                gpc.append(f"('{subject}', '{value}', TIMESTAMP '{ts}', TIMESTAMP '{arrived}')")
        for table, values in (("banner_events", banner), ("web_requests", gpc)):
            if values:
                self.spark.sql(f"INSERT INTO {self.schema}.{table} VALUES {', '.join(values)}")
        return ingest(self.session, self.sources)

    def log(self) -> list[tuple[Any, ...]]:
        self.spark.sql("REFRESH TABLE consent_events")  # appended by other sessions (the CLI's)
        return sorted(
            tuple(r)
            for r in self.spark.sql(
                "SELECT subject_id, purpose, status, event_ts, source FROM consent_events"
            ).collect()
        )

    def kept(self, subjects: list[str]) -> set[str]:
        people = ", ".join(f"('{s}')" for s in subjects)
        self.spark.sql(
            "CREATE OR REPLACE TEMPORARY VIEW people AS SELECT * FROM VALUES " + people + " AS t(customer_id)"
        )
        self.spark.sql(
            "CREATE TABLE IF NOT EXISTS people_t USING parquet AS SELECT * FROM people WHERE false"
        )
        self.spark.sql("INSERT OVERWRITE people_t SELECT * FROM people")
        enforce(
            connection=self.spark, dialect="spark", source="people_t", target="kept_people",
            subject_column="customer_id", purpose="ad_targeting",
        )  # fmt: skip
        return {r[0] for r in self.spark.sql("SELECT customer_id FROM kept_people").collect()}


def _fresh(spark_server, name: str) -> SparkWarehouse:
    from sparkserver import fresh_schema

    spark, schema = fresh_schema(spark_server, name)
    return SparkWarehouse(spark, schema)


_COUNTER = iter(range(10_000))


@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    observations=st.lists(observation, min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(1, 5), min_size=1, max_size=1),
)
@example(observations=LATE_GRANT, order=AsGiven(), cuts=[1, 2, 3])
def test_order_and_batching_never_change_what_the_log_decides_on_spark(
    spark_server, observations, order, cuts
) -> None:
    """tests/sources' property, with its generators and reference, on Spark (fewer examples)."""
    n = next(_COUNTER)
    at_once = _fresh(spark_server, f"ingest_prop_{n}_a")
    at_once.deliver(observations, T0 + timedelta(days=1))

    shuffled = list(observations) + [o for o in observations if order.random() < 0.3]
    order.shuffle(shuffled)
    bounds = sorted({c for c in cuts if c < len(shuffled)})
    batches = [shuffled[i:j] for i, j in zip([0, *bounds], [*bounds, len(shuffled)], strict=True)]
    batched = _fresh(spark_server, f"ingest_prop_{n}_b")
    for k, batch in enumerate(batches):
        batched.deliver(batch, T0 + timedelta(days=1, hours=k))

    expected = reference(observations)
    assert at_once.kept(SUBJECTS) == expected
    assert batched.kept(SUBJECTS) == expected

    log = batched.log()
    again = ingest(batched.session, batched.sources)
    assert [r.events_written for r in again] == [0, 0] and batched.log() == log
    for w in (at_once, batched):
        w.spark.stop()


def test_ingest_evidence_watermarks_and_state_are_committed_by_the_ingest_record(spark_session) -> None:
    schema = spark_session.catalog.currentDatabase()
    w = SparkWarehouse(spark_session, schema)
    first = w.deliver(LATE_GRANT[:2], T0 + timedelta(days=1))
    assert [(r.source, r.status, r.events_written) for r in first] == [
        ("banner", "success", 1),
        ("web_gpc", "success", 0),
    ]
    state = dict(spark_session.sql("SELECT source, watermark FROM consentgate_source_state").collect())
    assert state == {"banner": T0 + timedelta(days=1), "web_gpc": T0 + timedelta(days=1)}
    latest = spark_session.sql("SELECT source, subject_key, status FROM consentgate_source_latest").collect()
    assert sorted(tuple(r) for r in latest) == [("banner", "a", "withdrawn"), ("web_gpc", "a", "withdrawn")]
    assert [r["status"] for r in read_ingests(w.session)] == ["success", "success"]

    # A latest observation (and a watermark) whose ingest never wrote its `success` record is invisible.
    spark_session.sql(
        "INSERT INTO consentgate_source_latest_log (source, subject_key, purpose_key, status, event_ts, "
        "ingest_id, version) VALUES ('web_gpc', 'a', 'ad_targeting', 'granted', TIMESTAMP '2027-01-01', "
        "'never-committed', 9223372036854775807)"
    )
    spark_session.sql(
        "INSERT INTO consentgate_source_state_log (source, watermark, ingest_id, version) VALUES "
        "('web_gpc', TIMESTAMP '2027-01-01', 'never-committed', 9223372036854775807)"
    )
    assert (
        spark_session.sql("SELECT status FROM consentgate_source_latest WHERE source = 'web_gpc'").collect()[
            0
        ][0]
        == "withdrawn"
    )
    assert (
        dict(spark_session.sql("SELECT source, watermark FROM consentgate_source_state").collect()) == state
    )

    second = w.deliver(LATE_GRANT[2:], T0 + timedelta(days=2))
    # The late grant, and with it web_gpc's withdrawal of minute 4 (a fix, by the banner ingest).
    assert [r.events_written for r in second] == [2, 0]
    assert w.kept(["a"]) == set() == reference(LATE_GRANT)
    ingest_rows = spark_session.sql("SELECT * FROM consentgate_ingests").collect()
    assert len(ingest_rows) == 4 and all(r["status"] == "success" for r in ingest_rows)
    assert not {v for r in ingest_rows for v in r} & set(SUBJECTS)  # counts only, no subject


def _cli(server, policy: Path, kill_after: int = 0, stats: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONSENTGATE_TEST_STATEMENTS": str(stats or "")}
    return subprocess.run(
        [sys.executable, str(HERE / "kill_after.py"), str(kill_after), "ingest", "--policy", str(policy),
         "--database", server.url],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def _cli_ingests(w: SparkWarehouse) -> list[tuple[Any, ...]]:
    """The CLI's ingest records of this warehouse's sources, oldest first: the CLI's session keeps its
    evidence in its current schema, `default`."""
    w.spark.sql("REFRESH TABLE default.consentgate_ingests_log")
    rows = w.spark.sql(
        "SELECT ingest_id, source, status FROM default.consentgate_ingests "
        f"WHERE source_table LIKE '{w.schema}.%' AND status = 'success' ORDER BY started_at, source"
    ).collect()
    return [tuple(r) for r in rows]


def _arrive(w: SparkWarehouse, batch: list[tuple[str, str, int, str]], arrived: datetime) -> None:
    for src, subject, minute, value in batch:
        ts = (T0 + timedelta(minutes=minute)).isoformat(sep=" ")
        if src == "banner":
            row = f"('{subject}', 'ad_targeting', '{value}', TIMESTAMP '{ts}', TIMESTAMP '{arrived}')"
            w.spark.sql(f"INSERT INTO {w.schema}.banner_events VALUES {row}")
        else:
            w.spark.sql(
                f"INSERT INTO {w.schema}.web_requests VALUES ('{subject}', '{value}', TIMESTAMP '{ts}', TIMESTAMP '{arrived}')"
            )


def test_ingests_killed_at_any_point_leave_a_log_that_decides_as_whole_source_ingests(
    spark_server, tmp_path
) -> None:
    """SIGKILL after a random statement of `consentgate ingest --database sc://...`: each source's
    ingest has one append and then its `success` record, so the log decides as before it, after the
    first source or after both, as the records allow; the next ingest completes the killed one without
    writing an event twice."""
    w = _fresh(spark_server, "ingest_kill")
    policy = tmp_path / "policy.yml"
    sources = [
        {"name": "banner", "kind": "events", "table": f"{w.schema}.banner_events"},
        {"name": "web_gpc", "kind": "gpc", "table": f"{w.schema}.web_requests", "columns": GPC_COLUMNS,
         "purposes": ["ad_targeting"]},
    ]  # fmt: skip
    doc = {
        "consent": {"table": f"{w.schema}.consent_events"},
        "purposes": [{"name": p, "description": p} for p in sorted(PURPOSES)],
        "datasets": [{"name": "people", "source": "people_t", "target": "kept_people",
                      "subject_column": "customer_id", "purpose": "ad_targeting"}],
        "sources": sources,
    }  # fmt: skip
    policy.write_text(json.dumps(doc))
    night1 = [("banner", "a", 0, "granted"), ("banner", "b", 0, "granted"), ("gpc", "b", 1, "0")]
    night2 = [("banner", "a", 2, "withdrawn"), ("gpc", "b", 3, "1"), ("banner", "c", 3, "granted")]
    _arrive(w, night1, T0 + timedelta(days=1))
    first = _cli(spark_server, policy)
    assert first.returncode == 0, first.stderr[-800:]
    stats = tmp_path / "statements.json"
    idle = _cli(spark_server, policy, stats=stats)  # nothing new: the statements of a whole ingest, counted
    assert idle.returncode == 0 and "0 events written" in idle.stdout, idle.stderr[-800:]
    total = len(json.loads(stats.read_text()))
    banner2 = [o for o in night2 if o[0] == "banner"]
    states = {
        "before": reference(night1),
        "banner ingested": reference(night1 + banner2),
        "both ingested": reference(night1 + night2),
    }
    assert w.kept(["a", "b", "c"]) == states["before"] == {"a", "b"}
    assert states["banner ingested"] == {"b", "c"} and states["both ingested"] == {"c"}

    _arrive(w, night2, T0 + timedelta(days=2))
    seed = int(os.environ.get("CONSENTGATE_KILL_SEED", random.randrange(1 << 30)))
    points = sorted(random.Random(seed).sample(range(1, total), 4))
    log_before, committed = w.log(), _cli_ingests(w)
    assert [r[1:] for r in committed] == [("banner", "success"), ("web_gpc", "success")] * 2
    # A source's `success` is written after its one append, and web_gpc's ingest starts after banner's:
    # which night-2 successes are on record bounds what the log may decide.
    allowed = {
        frozenset(): ("before", "banner ingested"),
        frozenset({"banner"}): ("banner ingested", "both ingested"),
        frozenset({"banner", "web_gpc"}): ("both ingested",),
    }
    for n in points:
        killed = _cli(spark_server, policy, kill_after=n)
        assert killed.returncode == -9, (seed, n, killed.stderr[-500:])
        done = frozenset(r[1] for r in _cli_ingests(w)[len(committed) :])
        assert done in allowed, (seed, n, done)  # never web_gpc's success without banner's
        assert w.kept(["a", "b", "c"]) in [states[k] for k in allowed[done]], (seed, n, done)
    final = _cli(spark_server, policy)
    assert final.returncode == 0, final.stderr[-800:]
    assert w.kept(["a", "b", "c"]) == states["both ingested"], seed
    assert {r[1] for r in _cli_ingests(w)[len(committed) :]} == {"banner", "web_gpc"}
    appended = [e for e in w.log() if e not in log_before]
    assert len(appended) == len(set(appended)) == 3, (seed, appended)  # no event written twice
    again = _cli(spark_server, policy)
    assert again.returncode == 0 and w.log() == sorted(log_before + appended)
