"""Names are compared as the engine resolves them (issue #9, "data lost"): over-long PostgreSQL names,
the search_path, `x` versus `main.x`, and datasets of one policy writing each other's tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import consentgate
import duckdb
import pytest
from cases_loader import create_tables
from consentgate import errors
from consentgate.engine.policy import parse as parse_policy
from reference import Event

T = datetime(2026, 3, 1)
EVENTS = [
    Event("1", "ads", "granted", datetime(2026, 1, 1)),
    Event("2", "ads", "denied", datetime(2026, 1, 1)),
]
ROWS = [(1, "1"), (2, "2"), (3, "1")]


def _policy(*datasets: dict[str, Any], consent_table: str = "consent_events") -> Any:
    base = {"subject_column": "subject", "purpose": "ads"}
    return parse_policy(
        {
            "consent": {"table": consent_table},
            "purposes": [{"name": "ads", "description": "Ads."}],
            "datasets": [{**base, **d} for d in datasets],
        }
    )


def _pg_rows(server: Any, sql: str) -> list[tuple]:
    con = server.connect()
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return sorted(cur.fetchall(), key=str)
    finally:
        con.close()


# -- PostgreSQL: 63-byte identifiers and the search_path ------------------------------------------

LONG_CONSENT = "c" * 63


@pytest.fixture
def pg_long(pg_db: Any) -> Any:
    con = pg_db.connect()
    with con.cursor() as cur:
        create_tables(cur, "postgres", EVENTS, ROWS, consent_table=LONG_CONSENT)
    con.commit()
    con.close()
    return pg_db


def test_a_target_longer_than_63_bytes_is_refused_and_the_consent_log_is_kept(pg_long: Any) -> None:
    before = _pg_rows(pg_long, f"SELECT * FROM {LONG_CONSENT}")
    con = pg_long.connect()
    try:
        # PostgreSQL would truncate this 64-character name to the consent table's 63-character one.
        with pytest.raises(errors.InvalidIdentifierError, match=r"64 bytes.*postgres keeps only 63 bytes"):
            consentgate.enforce(
                connection=con,
                source="dataset",
                target=LONG_CONSENT + "x",
                subject_column="subject",
                purpose="ads",
                consent_table=LONG_CONSENT,
                as_of=T,
            )
    finally:
        con.close()
    assert _pg_rows(pg_long, f"SELECT * FROM {LONG_CONSENT}") == before


def test_a_policy_with_an_over_long_name_is_refused_before_anything_is_written(pg_long: Any) -> None:
    policy = _policy(
        {"name": "a", "source": "dataset", "target": "out_a"},
        {"name": "b", "source": "dataset", "target": "t" * 64},
        consent_table=LONG_CONSENT,
    )
    con = pg_long.connect()
    try:
        with pytest.raises(errors.InvalidIdentifierError, match="64 bytes"):
            consentgate.run_policy(policy, connection=con, as_of=T)
    finally:
        con.close()
    assert _pg_rows(pg_long, "SELECT to_regclass('out_a') IS NULL") == [(True,)]


def test_an_unqualified_consent_table_found_through_the_search_path_is_protected(pg_db: Any) -> None:
    """current_schema() is `work`, but `consent_events` resolves (search_path) to public.consent_events:
    a target spelled public.consent_events is the consent log."""
    con = pg_db.connect()
    with con.cursor() as cur:
        create_tables(cur, "postgres", EVENTS, ROWS)
        cur.execute("CREATE SCHEMA work")
        cur.execute("SET search_path = work, public")
    con.commit()
    before = _pg_rows(pg_db, "SELECT * FROM public.consent_events")
    try:
        with pytest.raises(errors.TargetError, match="is the consent table"):
            consentgate.enforce(
                connection=con,
                source="dataset",
                target="public.consent_events",
                subject_column="subject",
                purpose="ads",
                as_of=T,
            )
    finally:
        con.close()
    assert _pg_rows(pg_db, "SELECT * FROM public.consent_events") == before


# -- one policy's datasets (DuckDB) -----------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, "duckdb", EVENTS, ROWS)
    con.execute("CREATE TABLE other AS SELECT * FROM dataset")
    con.close()
    return path


def _tables(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        )
    finally:
        con.close()


COLLISIONS = [
    (
        "target is another dataset's source",
        [
            {"name": "a", "source": "dataset", "target": "out_a"},
            {"name": "b", "source": "other", "target": "dataset"},
        ],
        r"dataset b: target 'dataset' is main\.dataset, the source of dataset a",
    ),
    (
        "x and main.x",
        [
            {"name": "a", "source": "dataset", "target": "out_x"},
            {"name": "b", "source": "other", "target": "main.out_x"},
        ],
        r"datasets a and b both write main\.out_x",
    ),
    (
        "target is the consent log, schema-qualified",
        [{"name": "a", "source": "dataset", "target": "main.consent_events"}],
        r"dataset a: target 'main\.consent_events' is the consent table",
    ),
    (
        "target is an evidence table",
        [{"name": "a", "source": "dataset", "target": "main.consentgate_lineage"}],
        r"dataset a: target 'main\.consentgate_lineage' is a consentgate evidence table",
    ),
]


@pytest.mark.parametrize("datasets,match", [c[1:] for c in COLLISIONS], ids=[c[0] for c in COLLISIONS])
def test_colliding_datasets_are_refused_before_any_table_is_written(
    db: Path, datasets: list, match: str
) -> None:
    before = {t: _rows(db, t) for t in ("dataset", "other", "consent_events")}
    with pytest.raises(errors.TargetError, match=match) as info:
        consentgate.run_policy(_policy(*datasets), db, as_of=T, run_id="clash")
    assert "\n" not in str(info.value)
    assert {t: _rows(db, t) for t in before} == before
    assert not {"out_a", "out_x"} & set(_tables(db))  # no dataset ran, not even the first
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT status FROM consentgate_runs WHERE run_id = 'clash'").fetchall() == [
            ("failed",)
        ]
    finally:
        con.close()


def _rows(db: Path, table: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=str)
    finally:
        con.close()


def test_distinct_targets_still_run(db: Path) -> None:
    policy = _policy(
        {"name": "a", "source": "dataset", "target": "out_a"},
        {"name": "b", "source": "other", "target": "main.out_b"},
    )
    result = consentgate.run_policy(policy, db, as_of=T)
    assert result.ok and [d.rows_out for d in result.datasets] == [2, 2]
