"""The engine on the real Spark cluster: atomic replace by view, append-only evidence, one consent
snapshot per run, `consentgate run --database sc://...`, and runs killed at random points."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from consentgate.engine import lineage, spark
from consentgate.engine.enforcement import Enforcer, enforce, run_policy
from consentgate.engine.policy import Dataset, Policy
from consentgate.engine.session import session_for
from consentgate.errors import TargetError
from consentgate.rule.names import TableName
from consentgate.rule.semantics import ConsentColumns

pytestmark = pytest.mark.spark

HERE = Path(__file__).parent
T1, T2 = datetime(2026, 1, 15), datetime(2026, 6, 1)  # 'b' withdraws in between
EVENTS = [
    ("a", "ad_targeting", "granted", "2026-01-01 00:00:00"),
    ("b", "ad_targeting", "granted", "2026-01-01 00:00:00"),
    ("b", " Ad_Targeting", "withdrawn", "2026-02-01 00:00:00"),
    ("c", "ad_targeting", "denied", "2026-01-01 00:00:00"),
]
ROWS = [(1, "a"), (2, "a"), (3, "b"), (4, None), (5, "c"), (6, "d")]
KEPT = {T1: [1, 2, 3], T2: [1, 2]}


def _warehouse(spark_session, schema: str) -> None:
    q = spark_session.sql
    q(
        f"CREATE TABLE {schema}.consent_events (subject_id STRING, purpose STRING, status STRING, "
        "event_ts TIMESTAMP, recorded_at TIMESTAMP, expires_at TIMESTAMP) USING parquet"
    )
    values = ", ".join(f"('{s}', '{p}', '{st}', TIMESTAMP '{ts}', NULL, NULL)" for s, p, st, ts in EVENTS)
    q(f"INSERT INTO {schema}.consent_events VALUES {values}")
    q(f"CREATE TABLE {schema}.events (row_id BIGINT, customer_id STRING) USING parquet")
    rows = ", ".join(f"({i}, {'NULL' if s is None else repr(s)})" for i, s in ROWS)
    q(f"INSERT INTO {schema}.events VALUES {rows}")


def _ids(spark_session, table: str) -> list[int]:
    return sorted(int(r[0]) for r in spark_session.sql(f"SELECT row_id FROM {table}").collect())


def _run_tables(spark_session, schema: str, name: str) -> list[str]:
    return sorted(
        str(r[1])
        for r in spark_session.sql(f"SHOW TABLES IN {schema} LIKE '{name}{spark.RUN_TABLE_MARK}*'").collect()
    )


def test_enforce_switches_the_target_view_and_records_append_only_evidence(spark_session) -> None:
    schema = spark_session.catalog.currentDatabase()
    _warehouse(spark_session, schema)
    args = dict(source="events", target="out.events", subject_column="customer_id", purpose="ad_targeting")
    first = enforce(**args, as_of=T1, connection=spark_session)
    assert _ids(spark_session, "out.events") == KEPT[T1]
    assert (first.rows_in, first.rows_out) == (6, 3)
    assert first.excluded == {
        "null_subject": 1, "no_consent": 1, "denied": 1, "withdrawn": 0, "expired": 0, "invalid": 0
    }  # fmt: skip
    session = session_for(spark_session)
    seen = spark.live_table(session, TableName("out", "events"))
    # A leftover of a run killed before its switch, older than the next run: dropped by the next switch.
    spark_session.sql(
        f"CREATE TABLE out.events{spark.RUN_TABLE_MARK}20000101t000000000000_00000000 (x INT) USING parquet"
    )

    second = enforce(**args, as_of=T2, connection=spark_session)
    assert _ids(spark_session, "out.events") == KEPT[T2]
    live = spark.live_table(session, TableName("out", "events"))
    assert live != seen and live in _run_tables(spark_session, "out", "events")
    assert _run_tables(spark_session, "out", "events") == sorted([seen, live])  # the previous one is kept
    runs = {r["run_id"]: r for r in lineage.read_runs(session, limit=10)}
    assert runs[first.run_id]["status"] == runs[second.run_id]["status"] == "success"
    assert runs[second.run_id]["consent_fingerprint"] == second.consent_fingerprint
    (row,) = lineage.read_lineage(session, second.run_id)
    assert (row["rows_in"], row["rows_out"], row["excluded_withdrawn"]) == (6, 2, 1)
    # Evidence is append-only: every state of the run is a version in the log, the view shows the last.
    versions = spark_session.sql(
        f"SELECT status FROM {lineage.RUNS}{spark.LOG_SUFFIX} WHERE run_id = '{second.run_id}' ORDER BY version"
    ).collect()
    assert [r[0] for r in versions] == ["running", "success"]


def test_the_write_broadcasts_small_decisions_or_consented_values_and_shuffles_above_the_cap(
    spark_session, monkeypatch
) -> None:
    """The same target, counts and evidence whichever path the write takes: decisions of at most
    BROADCAST_KEY_BYTES matched row by row and counted while the rows are written (no key table), else
    the key table, whose consented values are broadcast up to the same size."""
    from consentgate.engine.session import Session

    schema = spark_session.catalog.currentDatabase()
    _warehouse(spark_session, schema)
    writes: list[str] = []
    run = Session.run

    def recording(self, sql, params=()):
        if sql.startswith("CREATE TABLE") and spark.RUN_TABLE_MARK in sql:
            writes.append(sql)
        return run(self, sql, params)

    monkeypatch.setattr(Session, "run", recording)
    observed = spark.write_observed

    def observing(session, table, source, decided):
        writes.append("observed")
        return observed(session, table, source, decided)

    monkeypatch.setattr(spark, "write_observed", observing)
    args = dict(source="events", subject_column="customer_id", purpose="ad_targeting", as_of=T2)
    results = {}
    # As of T2: decisions for 'a', 'b' and 'c' (3 bytes), of which 'a' alone (1 byte) is consented.
    for cap, target in ((spark.BROADCAST_KEY_BYTES, "out.under"), (1, "out.at_cap"), (0, "out.over")):
        monkeypatch.setattr(spark, "BROADCAST_KEY_BYTES", cap)
        results[cap] = enforce(**args, target=target, connection=spark_session)
        assert _ids(spark_session, target) == KEPT[T2]
    paths = [
        "decisions" if w == "observed" else "broadcast keys" if "BROADCAST" in w else "keys" for w in writes
    ]
    assert paths == ["decisions", "broadcast keys", "keys"]
    assert (
        len(
            {
                (r.rows_in, r.rows_out, tuple(r.excluded.items()), r.consent_fingerprint)
                for r in results.values()
            }
        )
        == 1
    )


def test_a_target_that_is_a_plain_table_is_refused_and_kept(spark_session) -> None:
    schema = spark_session.catalog.currentDatabase()
    _warehouse(spark_session, schema)
    spark_session.sql("CREATE TABLE mine USING parquet AS SELECT 1 AS row_id")
    with pytest.raises(TargetError, match="not a view written by consentgate"):
        enforce(
            source="events", target="mine", subject_column="customer_id", purpose="ad_targeting", as_of=T1,
            connection=spark_session,
        )  # fmt: skip
    assert _ids(spark_session, "mine") == [1]


WITHDRAW_A = "('a', 'ad_targeting', 'withdrawn', TIMESTAMP '2026-01-02 00:00:00', NULL, NULL)"


def _two_datasets_then(spark_session, monkeypatch, statement: str) -> Policy:
    """A policy of two datasets over the same source; `statement` runs right after the first one."""
    datasets = tuple(
        Dataset(
            name=n, source="events", target=f"out_{n}", subject_column="customer_id", purpose="ad_targeting"
        )
        for n in ("one", "two")
    )
    enforce_one = Enforcer.enforce

    def then_change_the_log(self: Enforcer, ds: Dataset):  # noqa: ANN202
        result = enforce_one(self, ds)
        if ds.name == "one":
            spark_session.sql(statement)
        return result

    monkeypatch.setattr(Enforcer, "enforce", then_change_the_log)
    return Policy("consent_events", ConsentColumns(), (), datasets)


def test_the_consent_log_is_read_once_per_run(spark_session, monkeypatch) -> None:
    """A withdrawal appended to the log while a run is going cannot split it: the second dataset is
    decided from the snapshot the first one used."""
    schema = spark_session.catalog.currentDatabase()
    _warehouse(spark_session, schema)
    policy = _two_datasets_then(spark_session, monkeypatch, f"INSERT INTO consent_events VALUES {WITHDRAW_A}")
    result = run_policy(policy, as_of=T1, connection=spark_session)
    assert result.ok
    assert _ids(spark_session, "out_one") == _ids(spark_session, "out_two") == KEPT[T1]
    assert {d.consent_fingerprint for d in result.datasets} == {result.consent_fingerprint}
    left = spark_session.sql(f"SHOW TABLES LIKE '{spark.DURABLE_MARK}*'").collect()
    assert not left, "the run's snapshot table outlived the run"


def test_a_withdrawal_appended_by_another_session_is_seen_by_the_next_run(
    spark_server, spark_session
) -> None:
    """Spark caches a table's file listing per session: a long-lived session (a notebook, a reused
    Connect session) that enforced before would not see a withdrawal another session appended since,
    and would let the withdrawn subject's rows through. Every run refreshes the log and the source."""
    schema = spark_session.catalog.currentDatabase()
    _warehouse(spark_session, schema)
    args = dict(source="events", target="out_refreshed", subject_column="customer_id", purpose="ad_targeting")
    enforce(**args, as_of=T2, connection=spark_session)
    assert _ids(spark_session, "out_refreshed") == KEPT[T2]  # 'a' consented
    other = spark_server.session()
    try:
        other.sql(f"INSERT INTO {schema}.consent_events VALUES {WITHDRAW_A}")
        other.sql(f"INSERT INTO {schema}.events VALUES (7, 'a')")
    finally:
        other.stop()
    result = enforce(**args, as_of=datetime(2027, 1, 1), connection=spark_session)
    assert _ids(spark_session, "out_refreshed") == []
    assert (result.rows_in, result.excluded["withdrawn"]) == (7, 4)


def test_a_log_rewritten_mid_run_is_not_seen_by_the_run(spark_session, monkeypatch) -> None:
    """INSERT OVERWRITE of the log while a run is going (a compaction, a rewrite that deletes its
    files) cannot split the run either: the second dataset is decided from the run's snapshot. (A
    snapshot defined as a cached view over the log's files, pinned at the start, failed this: once the
    files were gone, Spark re-computed the cache from no file, and the second dataset saw no consent.)"""
    schema = spark_session.catalog.currentDatabase()
    _warehouse(spark_session, schema)
    kept = ", ".join(f"('{s}', '{p}', '{st}', TIMESTAMP '{ts}', NULL, NULL)" for s, p, st, ts in EVENTS)
    rewrite = f"INSERT OVERWRITE TABLE consent_events VALUES {kept}, {WITHDRAW_A}"
    policy = _two_datasets_then(spark_session, monkeypatch, rewrite)
    result = run_policy(policy, as_of=T1, connection=spark_session)
    assert result.ok
    assert _ids(spark_session, "out_one") == _ids(spark_session, "out_two") == KEPT[T1]
    assert {d.consent_fingerprint for d in result.datasets} == {result.consent_fingerprint}
    assert spark_session.table("consent_events").count() == len(EVENTS) + 1  # the rewrite went through


# -- the CLI, and runs killed at any point ------------------------------------------------------------


def _cli(server, policy: Path, run_id: str, as_of: datetime, kill_after: int = 0, stats: Path | None = None):
    env = {**os.environ, "CONSENTGATE_TEST_STATEMENTS": str(stats) if stats else ""}
    return subprocess.run(
        [sys.executable, str(HERE / "kill_after.py"), str(kill_after), "run", "--policy", str(policy),
         "--database", server.url, "--as-of", as_of.isoformat(), "--run-id", run_id, "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cli_warehouse(spark_server, tmp_path_factory):
    """A schema with a consent log and a source, and a policy file naming them."""
    spark_session = spark_server.session()
    schema = f"cli_{os.getpid()}"
    spark_session.sql(f"CREATE SCHEMA {schema}")
    _warehouse(spark_session, schema)
    policy = tmp_path_factory.mktemp("spark_cli") / "policy.yml"
    policy.write_text(
        f"consent:\n  table: {schema}.consent_events\n"
        "purposes:\n  - name: ad_targeting\n    description: Ads chosen from what you browse.\n"
        f"datasets:\n  - name: events\n    source: {schema}.events\n    target: {schema}.consented_events\n"
        "    subject_column: customer_id\n    purpose: ad_targeting\n"
    )
    yield spark_session, schema, policy
    spark_session.stop()


@pytest.mark.slow
def test_consentgate_run_on_a_spark_connect_url(spark_server, cli_warehouse, tmp_path) -> None:
    spark_session, schema, policy = cli_warehouse
    done = _cli(spark_server, policy, "spark-cli-1", T1)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "success"
    (ds,) = summary["datasets"]
    assert (ds["rows_in"], ds["rows_out"], ds["excluded"]["no_consent"]) == (6, 3, 1)
    assert _ids(spark_session, f"{schema}.consented_events") == KEPT[T1]
    shown = subprocess.run(
        [sys.executable, str(HERE / "kill_after.py"), "0", "lineage", "--database", spark_server.url,
         "--run-id", "spark-cli-1", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["runs"][0]["status"] == "success"


@pytest.mark.slow
def test_runs_killed_at_any_point_leave_readers_on_a_whole_version_and_never_show_success(
    spark_server, cli_warehouse, tmp_path
) -> None:
    """SIGKILL the CLI after its Nth statement (N: right after the rows are written, the statements just
    before and after the switch, and random ones; the seed is in the test's output). Readers then see the old rows or, if the switch
    happened, the new ones, never a mix or nothing; the new ones only with their lineage row and the
    view naming the run; the killed run is `stale`, never `success`; the next run repairs everything."""
    spark_session, schema, policy = cli_warehouse
    target = f"{schema}.consented_events"
    stats = tmp_path / "statements"
    for attempt in ("warm", "base"):  # the base run replaces an existing target, as the killed runs do
        if attempt == "warm" and spark_session.catalog.tableExists(target):
            continue
        base = _cli(spark_server, policy, f"spark-kill-{attempt}", T1, stats=stats)
        assert base.returncode == 0, base.stderr
    old = _ids(spark_session, target)
    assert old == KEPT[T1]
    sent = json.loads(stats.read_text())
    switch = 1 + sent.index("CREATE OR REPLACE VIEW")  # the statement count right after the switch
    reader = session_for(spark_server.session())  # the evidence is in the default schema
    seed = int(os.environ.get("CONSENTGATE_KILL_SEED", random.randrange(10**6)))
    print(
        f"kill seed {seed} (set CONSENTGATE_KILL_SEED to repeat); {len(sent)} statements, switch at {switch}"
    )
    written = 1 + sent.index("write_observed")  # right after the target's rows are written and counted
    points = sorted({written, switch - 1, switch, *random.Random(seed).sample(range(1, len(sent)), 2)})
    for n in points:
        rid = f"spark-kill-{n}"
        killed = _cli(spark_server, policy, rid, T2, kill_after=n)
        assert killed.returncode == -9, (n, killed.returncode, killed.stderr[-500:])
        now = _ids(spark_session, target)
        assert now in (old, KEPT[T2]), (n, now)
        if n == switch:
            assert now == KEPT[T2]
        runs = lineage.read_runs(reader, rid, limit=1)
        if now == KEPT[T2] and now != old:
            assert spark.live_table(reader, TableName.parse(target)) is not None
            props = spark_session.sql(f"SHOW TBLPROPERTIES {target} ('{spark.RUN_PROPERTY}')").collect()
            assert props[0][1] == rid
            assert lineage.read_lineage(reader, rid), "readers see rows whose run has no lineage row"
            old = now
        if runs:
            assert lineage.effective_status(runs[0], datetime.now()) == "stale", (n, runs[0]["status"])
    final = _cli(spark_server, policy, "spark-kill-final", T2)
    assert final.returncode == 0, final.stderr
    assert _ids(spark_session, target) == KEPT[T2]
    assert len(_run_tables(spark_session, schema, "consented_events")) <= 2
