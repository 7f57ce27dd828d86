"""Nothing is lost and no evidence is rewritten (issue #9): run ids, retries, old evidence tables,
autocommit connections, and what a concurrent reader sees while a target is replaced."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import consentgate
import duckdb
import pytest
from cases_loader import create_tables
from consentgate.engine import lineage
from consentgate.engine.enforcement import RunContext
from consentgate.engine.policy import parse as parse_policy
from consentgate.errors import ConsentGateError
from reference import Event

T = datetime(2026, 3, 1)
EVENTS = [
    Event("1", "ads", "granted", datetime(2026, 1, 1)),
    Event("2", "ads", "denied", datetime(2026, 1, 1)),
]
ROWS = [(1, "1"), (2, "2"), (3, "1"), (4, "3")]
AIRFLOW = RunContext(
    trigger="airflow", dag_id="nightly", task_id="run", airflow_run_id="scheduled__2026-03-01"
)


def _policy() -> Any:
    ds = {"subject_column": "subject", "purpose": "ads", "source": "dataset"}
    return parse_policy(
        {
            "purposes": [{"name": "ads", "description": "Ads."}],
            "datasets": [{**ds, "name": "a", "target": "out_a"}, {**ds, "name": "b", "target": "out_b"}],
        }
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, "duckdb", EVENTS, ROWS)
    con.close()
    return path


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=str)
    finally:
        con.close()


def evidence(db: Path) -> tuple[list[tuple], list[tuple]]:
    return query(db, "SELECT * FROM consentgate_runs"), query(db, "SELECT * FROM consentgate_lineage")


def enforce(db: Path, **kw: Any) -> Any:
    args = dict(
        source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T, dataset="a"
    )
    args.update(kw)
    return consentgate.enforce(db, **args)


# -- run ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [dict(source="missing"), dict(target="not a name"), dict(consent_table="nope"), dict()],
    ids=["missing source", "invalid target", "missing consent table", "a valid re-run"],
)
def test_a_later_invocation_with_a_finished_run_id_changes_none_of_its_evidence(db: Path, bad: dict) -> None:
    consentgate.run_policy(_policy(), db, as_of=T, run_id="night")
    before = evidence(db)
    assert [r[3] for r in before[0]] == ["success"] and len(before[1]) == 2
    with pytest.raises(ConsentGateError):
        enforce(db, run_id="night", **bad)
    assert evidence(db) == before  # not flipped to failed, no lineage row deleted or replaced


def test_a_reused_run_id_is_a_one_line_error_saying_what_to_do(db: Path) -> None:
    consentgate.run_policy(_policy(), db, as_of=T, run_id="night")
    with pytest.raises(lineage.RunIdInUseError) as info:
        consentgate.run_policy(_policy(), db, as_of=T, run_id="night")
    message = str(info.value)
    assert "run id 'night' is already used by another invocation (cli, status success" in message
    assert message.endswith("use a new run id") and "\n" not in message


def test_an_airflow_retry_of_a_failed_run_is_a_new_attempt_and_a_successful_run_stays_closed(
    db: Path,
) -> None:
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE consent_events RENAME TO consent_later")
    con.close()
    with pytest.raises(ConsentGateError, match="consent table 'consent_events' does not exist"):
        consentgate.run_policy(_policy(), db, as_of=T, run_id="dag-run", context=AIRFLOW)
    assert query(db, "SELECT status, attempt FROM consentgate_runs") == [("failed", 1)]

    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE consent_later RENAME TO consent_events")
    con.close()
    result = consentgate.run_policy(_policy(), db, as_of=T, run_id="dag-run", context=AIRFLOW)  # try 2
    assert result.ok
    assert query(db, "SELECT status, attempt, error FROM consentgate_runs") == [("success", 2, None)]
    assert query(db, "SELECT dataset, attempt FROM consentgate_lineage") == [("a", 2), ("b", 2)]

    before = evidence(db)
    with pytest.raises(lineage.RunIdInUseError, match="already finished successfully"):
        consentgate.run_policy(_policy(), db, as_of=T, run_id="dag-run", context=AIRFLOW)  # a 3rd try
    other_dag_run = RunContext(trigger="airflow", dag_id="nightly", airflow_run_id="manual__x")
    with pytest.raises(lineage.RunIdInUseError, match="another invocation"):
        consentgate.run_policy(_policy(), db, as_of=T, run_id="dag-run", context=other_dag_run)
    assert evidence(db) == before


def test_a_retry_keeps_the_lineage_rows_of_the_datasets_an_earlier_attempt_enforced(db: Path) -> None:
    ds = {"subject_column": "subject", "purpose": "ads"}
    policy = parse_policy(
        {
            "purposes": [{"name": "ads", "description": "Ads."}],
            "datasets": [
                {**ds, "name": "a", "source": "dataset", "target": "out_a"},
                {**ds, "name": "b", "source": "source_b", "target": "out_b"},  # missing on try 1
            ],
        }
    )
    first = consentgate.run_policy(policy, db, as_of=T, run_id="dag-run", context=AIRFLOW)
    assert not first.ok and set(first.errors) == {"b"}
    assert query(db, "SELECT dataset, attempt FROM consentgate_lineage") == [("a", 1)]
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE source_b AS SELECT * FROM dataset")
    con.close()
    assert consentgate.run_policy(policy, db, as_of=T, run_id="dag-run", datasets=["b"], context=AIRFLOW).ok
    assert query(db, "SELECT dataset, attempt FROM consentgate_lineage") == [("a", 1), ("b", 2)]
    assert query(db, "SELECT status, attempt, planned_datasets FROM consentgate_runs") == [
        ("success", 2, '["a", "b"]')  # the retry of b still owes a: it stays planned
    ]


# -- evidence tables of an older version --------------------------------------------------------------

OLD_DDL = [
    "CREATE TABLE consentgate_runs (run_id varchar not null, started_at timestamp, finished_at timestamp, "
    "status varchar not null, as_of timestamp, consent_table varchar, consent_fingerprint varchar, "
    "consent_events_counted bigint, trigger varchar, dag_id varchar, task_id varchar, airflow_run_id varchar, "
    "dbt_invocation_id varchar, package_version varchar, error varchar)",
    "CREATE TABLE consentgate_lineage (run_id varchar not null, dataset varchar not null, source varchar, "
    "target varchar, purpose varchar, subject_column varchar, normalize varchar, rows_in bigint, rows_out bigint, "
    "excluded_null_subject bigint, excluded_no_consent bigint, excluded_denied bigint, excluded_withdrawn bigint, "
    "excluded_expired bigint, excluded_invalid bigint, consent_fingerprint varchar, trigger varchar, "
    "task_id varchar, started_at timestamp, finished_at timestamp)",
    "INSERT INTO consentgate_runs (run_id, status, trigger) VALUES ('old', 'success', 'cli')",
]


def test_evidence_tables_of_an_older_version_gain_the_new_columns_and_keep_their_rows(db: Path) -> None:
    con = duckdb.connect(str(db))
    for statement in OLD_DDL:
        con.execute(statement)
    con.close()
    consentgate.run_policy(_policy(), db, as_of=T, run_id="new")
    assert query(db, "SELECT run_id, status, owner IS NULL, planned_datasets FROM consentgate_runs") == [
        ("new", "success", False, '["a", "b"]'),
        ("old", "success", True, None),
    ]
    with pytest.raises(lineage.RunIdInUseError):  # an old run (no owner) is nobody's to reopen
        enforce(db, run_id="old")


# -- PostgreSQL: autocommit connections and concurrent readers ------------------------------------------


@pytest.fixture
def pg(pg_db: Any) -> Any:
    con = pg_db.connect()
    with con.cursor() as cur:
        create_tables(cur, "postgres", EVENTS, ROWS)
    con.commit()
    con.close()
    return pg_db


def pg_rows(server: Any, sql: str) -> list[tuple]:
    con = server.connect()
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return sorted(cur.fetchall(), key=str)
    finally:
        con.close()


def pg_grant(server: Any, subject: str) -> None:
    con = server.connect()
    with con.cursor() as cur:
        cur.execute(
            "INSERT INTO consent_events VALUES (%s, 'ads', 'granted', TIMESTAMP '2026-01-02', NULL, NULL, 'test', 'v1')",
            [subject],
        )
    con.commit()
    con.close()


def test_an_autocommit_connection_keeps_the_old_target_when_the_run_fails_after_the_swap(
    pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = pg.connect()
    con.autocommit = True
    try:
        consentgate.enforce(
            connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
        )
        before = pg_rows(pg, "SELECT * FROM out_a")
        pg_grant(pg, "3")  # the next run would keep one more row

        def boom(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full while writing lineage")

        monkeypatch.setattr(lineage, "write_lineage", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            consentgate.enforce(
                connection=con,
                source="dataset",
                target="out_a",
                subject_column="subject",
                purpose="ads",
                as_of=T,
                run_id="broken",
            )
    finally:
        con.close()
    assert pg_rows(pg, "SELECT * FROM out_a") == before
    assert pg_rows(pg, "SELECT status FROM consentgate_runs WHERE run_id = 'broken'") == [("failed",)]


def _swap_under_reader(server: Any, isolation: str, source_sql: str | None = None) -> tuple[list, list, list]:
    """A reader takes its snapshot (on another table), a run replaces out_a and commits, then the reader
    reads out_a in the same transaction, and again in a new one. Returns (old rows, seen, seen after)."""
    con = server.connect()
    consentgate.enforce(
        connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
    )
    old = pg_rows(server, "SELECT row_id FROM out_a")
    pg_grant(server, "3")
    if source_sql:
        with con.cursor() as cur:
            cur.execute(source_sql)
        con.commit()
    reader = server.connect()
    with reader.cursor() as cur:
        cur.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        cur.execute("SELECT count(*) FROM consent_events")  # the snapshot is taken here
        consentgate.enforce(
            connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
        )
        cur.execute("SELECT row_id FROM out_a")
        seen = sorted(cur.fetchall())
        cur.execute("COMMIT")
        cur.execute("SELECT row_id FROM out_a")
        after = sorted(cur.fetchall())
    reader.close()
    con.close()
    return [r[0] for r in old], [r[0] for r in seen], [r[0] for r in after]


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_reader_whose_snapshot_predates_the_swap_sees_the_old_rows(pg: Any, isolation: str) -> None:
    old, seen, after = _swap_under_reader(pg, isolation)
    assert old == [1, 3]
    assert seen == old  # not an empty table (DROP + CREATE showed it empty)
    assert after == [1, 3, 4]


def test_a_read_committed_reader_sees_the_new_rows_once_committed(pg: Any) -> None:
    old, seen, after = _swap_under_reader(pg, "READ COMMITTED")
    assert (old, seen, after) == ([1, 3], [1, 3, 4], [1, 3, 4])


def test_when_the_columns_change_the_table_is_recreated_and_an_old_snapshot_sees_it_empty(pg: Any) -> None:
    """Documented limit (docs/runs.md): a source whose columns changed gives a new table, which a
    REPEATABLE READ reader whose snapshot predates the swap sees empty; READ COMMITTED sees the new rows."""
    old, seen, after = _swap_under_reader(pg, "REPEATABLE READ", "ALTER TABLE dataset ADD COLUMN extra int")
    assert (old, seen, after) == ([1, 3], [], [1, 3, 4])
    assert pg_rows(pg, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'out_a'") == [(3,)]


def test_a_reader_does_not_block_the_swap(pg: Any) -> None:
    """The reader holds a lock on out_a (it has read it): DELETE + INSERT does not wait for it."""
    con = pg.connect()
    consentgate.enforce(
        connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
    )
    with con.cursor() as cur:  # a DROP would wait for the reader's lock: give up instead of hanging
        cur.execute("SET lock_timeout = '20s'")
    con.commit()
    reader = pg.connect()
    with reader.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT row_id FROM out_a")
        cur.fetchall()
        consentgate.enforce(
            connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
        )  # returns while the reader's transaction is open
        cur.execute("COMMIT")
    reader.close()
    con.close()


# -- DuckDB: a second connection in a transaction ---------------------------------------------------------


def test_duckdb_a_reader_in_a_transaction_sees_the_old_rows(db: Path) -> None:
    con = duckdb.connect(str(db))
    try:
        consentgate.enforce(
            connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
        )
        con.execute(
            "INSERT INTO consent_events VALUES ('3', 'ads', 'granted', TIMESTAMP '2026-01-02', NULL, NULL, 't', 'v1')"
        )
        reader = con.cursor()
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM consent_events").fetchall()
        consentgate.enforce(
            connection=con, source="dataset", target="out_a", subject_column="subject", purpose="ads", as_of=T
        )
        assert sorted(reader.execute("SELECT row_id FROM out_a").fetchall()) == [(1,), (3,)]
        reader.execute("COMMIT")
        assert sorted(reader.execute("SELECT row_id FROM out_a").fetchall()) == [(1,), (3,), (4,)]
    finally:
        con.close()
