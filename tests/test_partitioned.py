"""Partitioned enforcement (engine/partitioned.py) decides, counts and fingerprints exactly as the
unpartitioned run does, and replaces the target as atomically."""

from __future__ import annotations

from datetime import datetime, timedelta

import consentgate
import duckdb
import pytest
from cases_loader import create_tables
from consentgate.engine import partitioned
from consentgate.engine.enforcement import run_policy
from consentgate.engine.policy import Dataset, Policy
from consentgate.errors import ConsentGateError
from consentgate.rule.dialects import POSTGRES
from consentgate.rule.semantics import ConsentColumns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Event
from reference import enforce as reference_enforce
from test_rule_properties import _typed_tables, scenario, typed_scenario

T = datetime(2026, 6, 1, 2, 0, 0)


def _enforce(con, partitions, target: str, **kw):
    return consentgate.enforce(
        source=kw.pop("source", "dataset"),
        target=target,
        subject_column=kw.pop("subject_column", "subject"),
        purpose=kw.pop("purpose", "ads"),
        as_of=kw.pop("as_of", T),
        connection=con,
        partitions=partitions,
        **kw,
    )


def _rows(con, table: str) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def _evidence(r) -> tuple:
    return (r.rows_in, r.rows_out, r.excluded, r.consent_fingerprint, r.consent_events_counted)


@pytest.fixture
def warehouse(tmp_path):
    """A DuckDB file whose keys exercise every path: null, blank, padded, case variants, Unicode
    spaces, every exclusion reason, and a second purpose."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    keys = [f"k{i}" for i in range(300)] + [
        "Ann@X.com",
        "ann@x.com",
        " ann@x.com ",
        "ANN@X.COM",
        "\u00a0k1",
        "",
    ]
    events = []
    for i, k in enumerate(keys):
        status = ["granted", "withdrawn", "denied", "pending", " GRANTED "][i % 5]
        expires = T - timedelta(days=1) if i % 7 == 0 else None
        events.append(Event(k, "ads" if i % 4 else " ADS", status, T - timedelta(days=i % 3), None, expires))
        if i % 11 == 0:  # a later withdrawal, recorded after T for some: must not count
            late = T + timedelta(hours=1) if i % 22 == 0 else None
            events.append(Event(k, "ads", "withdrawn", T - timedelta(hours=1), late, None))
        events.append(Event(k, "mail", "granted", T - timedelta(days=2), None, None))
    rows = [(n, keys[(n * 7) % len(keys)] if n % 13 else None) for n in range(1, 2000)]
    rows += [(5000 + n, f"nobody{n}") for n in range(50)]
    create_tables(con, "duckdb", events, rows)
    yield con
    con.close()


@pytest.mark.parametrize("normalize", [None, "lower"])
@pytest.mark.parametrize("partitions", [1, 2, 5, 16, "auto"])
def test_partitioned_target_counts_and_fingerprint_equal_unpartitioned(
    warehouse, partitions, normalize
) -> None:
    plain = _enforce(warehouse, None, "out_plain", normalize=normalize)
    sliced = _enforce(warehouse, partitions, "out_sliced", normalize=normalize)
    assert _evidence(sliced) == _evidence(plain)
    assert _rows(warehouse, "out_sliced") == _rows(warehouse, "out_plain")
    assert sliced.rows_out > 0 and all(sliced.excluded.values())  # every reason occurs in this data
    types = warehouse.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'out_sliced' ORDER BY ordinal_position"
    ).fetchall()
    assert (
        types
        == warehouse.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'out_plain' ORDER BY ordinal_position"
        ).fetchall()
    )


def test_partitioned_lineage_rows_equal_unpartitioned(warehouse) -> None:
    plain = _enforce(warehouse, None, "out", run_id="plain")
    sliced = _enforce(warehouse, 4, "out", run_id="sliced")
    cols = "dataset, source, target, purpose, subject_column, rows_in, rows_out, consent_fingerprint"
    lineage = warehouse.execute(f"SELECT run_id, {cols} FROM consentgate_lineage ORDER BY run_id").fetchall()
    assert [row[1:] for row in lineage if row[0] == "plain"] == [
        row[1:] for row in lineage if row[0] == "sliced"
    ]
    runs = warehouse.execute(
        "SELECT run_id, consent_fingerprint, consent_events_counted, status FROM consentgate_runs"
    ).fetchall()
    by_id = {r[0]: r[1:] for r in runs}
    assert (
        by_id["plain"]
        == by_id["sliced"]
        == (plain.consent_fingerprint, plain.consent_events_counted, "success")
    )
    assert sliced.consent_fingerprint == plain.consent_fingerprint


def test_partitioned_policy_with_several_datasets_and_a_purpose_without_events(warehouse) -> None:
    datasets = (
        Dataset("a", "dataset", "out_a", "subject", "ads", None),
        Dataset("b", "dataset", "out_b", "subject", "mail", "lower"),
        Dataset("c", "dataset", "out_c", "subject", "nothing_here", None),
    )
    policy = Policy("consent_events", ConsentColumns(), (), datasets)
    plain = run_policy(policy, connection=warehouse, as_of=T, run_id="p1")
    sliced = run_policy(policy, connection=warehouse, as_of=T, run_id="p2", partitions=3)
    assert plain.ok and sliced.ok
    assert [_evidence(d) for d in sliced.datasets] == [_evidence(d) for d in plain.datasets]
    assert [d.warnings for d in sliced.datasets] == [d.warnings for d in plain.datasets]
    assert sliced.datasets[2].rows_out == 0 and sliced.datasets[2].warnings  # fail closed, with the warning


def test_partitioned_integer_and_nocase_keys(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "k.duckdb"))
    con.execute(
        "CREATE TABLE consent_events (subject_id VARCHAR COLLATE NOCASE, purpose VARCHAR, status VARCHAR, "
        "event_ts TIMESTAMP, recorded_at TIMESTAMP, expires_at TIMESTAMP)"
    )
    con.execute(
        "INSERT INTO consent_events SELECT CASE WHEN i % 2 = 0 THEN 'A' || i ELSE 'a' || i END, 'ads', "
        "CASE WHEN i % 3 = 0 THEN 'withdrawn' ELSE 'granted' END, TIMESTAMP '2026-01-01', NULL, NULL FROM range(400) t(i)"
    )
    con.execute(
        "INSERT INTO consent_events SELECT CAST(i AS VARCHAR), 'ads', 'granted', TIMESTAMP '2026-01-01', NULL, NULL "
        "FROM range(0, 400, 3) t(i)"
    )
    con.execute("CREATE TABLE by_text (row_id BIGINT, subject VARCHAR COLLATE NOCASE)")
    con.execute(
        "INSERT INTO by_text SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'A' END || (i % 400) FROM range(3000) t(i)"
    )
    con.execute(
        "CREATE TABLE by_int AS SELECT i AS row_id, (i % 450)::INTEGER AS subject FROM range(3000) t(i)"
    )
    for source in ("by_text", "by_int"):
        for normalize in (None, "lower"):
            plain = _enforce(con, None, "o1", source=source, normalize=normalize)
            sliced = _enforce(con, 7, "o2", source=source, normalize=normalize)
            assert _evidence(sliced) == _evidence(plain)
            assert _rows(con, "o2") == _rows(con, "o1")
            if source == "by_text" and normalize is None:  # NOCASE does not merge 'a1' and 'A1'
                assert plain.rows_out == 0 and plain.excluded["no_consent"] == plain.rows_in
            else:
                assert 0 < plain.rows_out < plain.rows_in


def test_failed_slice_leaves_the_old_target_and_records_the_failure(warehouse, monkeypatch) -> None:
    _enforce(warehouse, None, "out")
    before = _rows(warehouse, "out")
    from consentgate.engine.session import Session

    real_run = Session.run
    appended = []

    def failing_run(self, sql, params=()):
        if sql.startswith('INSERT INTO "out"'):
            appended.append(sql)
            if len(appended) == 2:
                raise duckdb.IOException("disk full while appending")  # the third slice fails
        return real_run(self, sql, params)

    monkeypatch.setattr(Session, "run", failing_run)
    with pytest.raises(duckdb.IOException, match="disk full"):
        _enforce(warehouse, 4, "out", run_id="broken")
    monkeypatch.undo()
    assert len(appended) == 2
    assert _rows(warehouse, "out") == before
    status = warehouse.execute("SELECT status FROM consentgate_runs WHERE run_id = 'broken'").fetchall()
    assert status == [("failed",)]


@pytest.mark.parametrize("bad", [0, -1, 4097, "x", "1.5", True, 2.0])
def test_partitions_setting_is_checked(bad) -> None:
    with pytest.raises(ConsentGateError, match="partitions"):
        partitioned.checked(bad)


def test_partitions_setting_forms() -> None:
    assert partitioned.checked(None) is None
    assert partitioned.checked(" AUTO ") == "auto"
    assert partitioned.checked("8") == 8
    assert partitioned.checked(3) == 3


def test_partitioned_refuses_other_engines() -> None:
    with pytest.raises(ConsentGateError, match="DuckDB only"):
        partitioned.require_duckdb(POSTGRES)


def test_auto_partitions_grow_with_data_and_shrink_with_memory() -> None:
    gib = 2**30
    assert partitioned.auto_partitions(20_000_000, 6_000_000, 16 * gib) == 1
    assert partitioned.auto_partitions(10**9, 3 * 10**8, 2 * gib) == 10
    assert partitioned.auto_partitions(10**9, 3 * 10**8, 4 * gib) == 5
    assert partitioned.auto_partitions(10**9, 3 * 10**8, None) == 1
    assert partitioned.auto_partitions(10**15, 0, gib) == partitioned.MAX_PARTITIONS


def test_memory_limit_is_read_from_duckdb() -> None:
    con = duckdb.connect(config={"memory_limit": "2GB"})
    from consentgate.engine.session import session_for

    limit = partitioned.memory_limit_bytes(session_for(con))
    assert limit is not None and abs(limit - 2 * 10**9) / 2e9 < 0.05  # DuckDB reports it rounded: 1.8 GiB


# -- properties -----------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.integers(min_value=1, max_value=7))
def test_partitioned_matches_unpartitioned_and_reference(s, partitions) -> None:
    con = duckdb.connect(":memory:")
    create_tables(con, "duckdb", s["events"], s["rows"], s["dataset_type"], s["consent_type"])
    kw = {"purpose": s["purpose"], "as_of": s["as_of"], "normalize": s["normalize"]}
    plain = _enforce(con, None, "o1", **dict(kw))
    sliced = _enforce(con, partitions, "o2", **dict(kw))
    assert _evidence(sliced) == _evidence(plain)
    assert _rows(con, "o2") == _rows(con, "o1")
    ref_kept, ref_counts = reference_enforce(s["rows"], s["events"], s["purpose"], s["as_of"], s["normalize"])
    assert sorted(r[0] for r in con.execute("SELECT row_id FROM o2").fetchall()) == sorted(ref_kept)
    assert sliced.excluded == ref_counts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_scenario(), st.integers(min_value=1, max_value=5))
def test_partitioned_matches_unpartitioned_on_collated_and_integer_columns(s, partitions) -> None:
    con = duckdb.connect(":memory:")
    _typed_tables(con, "duckdb", s)
    kw = {"purpose": "ads", "normalize": s["normalize"]}
    plain = _enforce(con, None, "o1", **dict(kw))
    sliced = _enforce(con, partitions, "o2", **dict(kw))
    assert _evidence(sliced) == _evidence(plain)
    assert _rows(con, "o2") == _rows(con, "o1")


def test_cli_partitions_option_gives_the_same_json(warehouse, tmp_path) -> None:
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    db = str(tmp_path / "cli.duckdb")
    warehouse.execute("CHECKPOINT")
    shutil.copy(
        warehouse.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()[0],
        db,
    )
    cli = str(Path(sys.executable).with_name("consentgate"))
    base = [
        cli,
        "enforce",
        "--database",
        db,
        "--source",
        "dataset",
        "--subject-column",
        "subject",
        "--purpose",
        "ads",
        "--as-of",
        T.isoformat(),
        "--json",
    ]
    outs = []
    for extra in ([], ["--partitions", "3"], ["--partitions", "auto"]):
        proc = subprocess.run([*base, "--target", "out", *extra], capture_output=True, text=True, check=True)
        outs.append(json.loads(proc.stdout))
    keep = ("rows_in", "rows_out", "excluded", "consent_fingerprint", "consent_events_counted")
    assert [{k: o[k] for k in keep} for o in outs[1:]] == [{k: outs[0][k] for k in keep}] * 2
    bad = subprocess.run([*base, "--target", "out", "--partitions", "many"], capture_output=True, text=True)
    assert (
        bad.returncode != 0
        and "partitions 'many'" in bad.stderr
        and len(bad.stderr.strip().splitlines()) == 1
    )


def test_a_partitioned_enforcer_refuses_to_count_without_a_snapshot_table(warehouse) -> None:
    from consentgate.engine.enforcement import Enforcer
    from consentgate.engine.session import session_for
    from consentgate.rule.names import TableName

    enforcer = Enforcer(
        session_for(warehouse), consent_table="consent_events", as_of=T, run_id="r", partitions=2
    )
    enforcer.take_snapshot(["ads"])
    with pytest.raises(RuntimeError, match="only enforce"):
        enforcer.counts(TableName.parse("dataset"), "subject", "ads", None)
