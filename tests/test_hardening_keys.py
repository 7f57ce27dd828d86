"""Issue 9 hardening, on DuckDB and PostgreSQL: keys, purposes and statuses compare byte by byte whatever
the column's collation or type; lowering is A-Z only; number keys without one text form are refused;
column names resolve exactly first; scratch tables never touch a user's table; every timestamp is
decided by the rule or refused with a one-line error naming the column."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import consentgate
import duckdb
import pytest
from consentgate import errors
from reference import REASONS, Event
from reference import enforce as reference_enforce

T = datetime(2026, 3, 1)
JAN, FEB = datetime(2026, 1, 1), datetime(2026, 2, 1)


@dataclass
class Db:
    """One connection to a fresh database of either engine, with the few helpers the tests need."""

    con: Any
    dialect: str

    @property
    def p(self) -> str:
        return "?" if self.dialect == "duckdb" else "%s"

    def run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        if self.dialect == "duckdb":
            return [tuple(r) for r in self.con.execute(sql, params or []).fetchall()]
        with self.con.cursor() as cur:
            cur.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        self.con.commit()
        return rows

    def text(self, collation: str | None = None) -> str:
        """A text column type, optionally with a collation or a case-insensitive type."""
        if collation is None:
            return "VARCHAR" if self.dialect == "duckdb" else "TEXT"
        return collation

    def load(
        self,
        events: list[Event],
        rows: list[tuple[int, Any]],
        *,
        subject: str,
        consent_subject: str,
        text: str | None = None,
        ts: str = "TIMESTAMP",
    ) -> None:
        t = text or self.text()
        self.run(
            f"CREATE TABLE consent_events (subject_id {consent_subject}, purpose {t}, status {t}, "
            f"event_ts {ts}, recorded_at {ts}, expires_at {ts}, source {t}, policy_version {t})"
        )
        for e in events:
            self.run(
                f"INSERT INTO consent_events VALUES ({', '.join([self.p] * 8)})",
                [e.subject_id, e.purpose, e.status, e.event_ts, e.recorded_at, e.expires_at, "test", "v1"],
            )
        self.run(f"CREATE TABLE dataset (row_id BIGINT, subject {subject})")
        for row in rows:
            self.run(f"INSERT INTO dataset VALUES ({self.p}, {self.p})", list(row))

    def enforce(self, **kw: Any) -> consentgate.DatasetResult:
        args: dict[str, Any] = dict(
            source="dataset", target="out", subject_column="subject", purpose="ads", as_of=T
        )
        args.update(kw)
        return consentgate.enforce(connection=self.con, dialect=self.dialect, **args)

    def kept(self, table: str = "out") -> list[int]:
        return sorted(r[0] for r in self.run(f"SELECT row_id FROM {table}"))


ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    if request.param == "duckdb":
        con = duckdb.connect(":memory:")
    else:
        con = request.getfixturevalue("pg_db").connect()
        with con.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS citext")
        con.commit()
    yield Db(con, request.param)
    con.close()


def case_insensitive_text(db: Db) -> list[str]:
    """Column types that compare text case-insensitively on this engine."""
    if db.dialect == "duckdb":
        return ["VARCHAR COLLATE NOCASE", "VARCHAR COLLATE NOCASE.NOACCENT"]
    db.run(
        "CREATE COLLATION IF NOT EXISTS ci_level2 (provider = icu, locale = 'und-u-ks-level2', "
        "deterministic = false)"
    )
    return ["CITEXT", "TEXT COLLATE ci_level2"]


def assert_matches_reference(
    db: Db,
    result: Any,
    events: list[Event],
    rows: list[tuple[int, Any]],
    normalize: str | None = None,
    purpose: str = "ads",
) -> None:
    kept, counts = reference_enforce(rows, events, purpose, T, normalize)
    assert db.kept() == sorted(kept)
    assert result.excluded == counts
    assert result.rows_in == len(rows)


# -- binary comparison -----------------------------------------------------------------------------

SPELLINGS = [
    Event("ANN@X.COM", "ads", "withdrawn", JAN),
    Event("ann@x.com", "ads", "granted", FEB),
]
BOTH_ROWS = [(1, "ANN@X.COM"), (2, "ann@x.com")]


@pytest.mark.parametrize("side", ["source", "log", "both"])
def test_a_case_insensitive_column_does_not_merge_two_spellings(db: Db, side: str) -> None:
    for ci in case_insensitive_text(db):
        subject = ci if side in ("source", "both") else db.text()
        consent_subject = ci if side in ("log", "both") else db.text()
        db.load(SPELLINGS, BOTH_ROWS, subject=subject, consent_subject=consent_subject)
        r = db.enforce()
        # Without normalize, two spellings are two subjects: the withdrawn one stays out.
        assert db.kept() == [2], ci
        assert (r.rows_in, r.rows_out, r.excluded["withdrawn"]) == (2, 1, 1), ci
        assert_matches_reference(db, r, SPELLINGS, BOTH_ROWS)
        db.run("DROP TABLE consent_events")
        db.run("DROP TABLE dataset")


def test_a_case_insensitive_log_does_not_double_rows_in_the_key_join(db: Db) -> None:
    for ci in case_insensitive_text(db):
        db.load(SPELLINGS, BOTH_ROWS, subject=ci, consent_subject=db.text())
        r = db.enforce()
        assert r.rows_in == 2 and r.rows_out + sum(r.excluded.values()) == 2, ci
        db.run("DROP TABLE consent_events")
        db.run("DROP TABLE dataset")


def test_case_insensitive_purpose_and_status_columns_still_match_only_as_the_rule_says(db: Db) -> None:
    ci = case_insensitive_text(db)[-1]
    events = [
        Event("a", "ADS", "GRANTED", JAN),  # A-Z lowered: a grant
        Event("b", "ads", "grantéd", JAN),  # invalid, although an accent-insensitive collation equates it
        Event("c", "ádś", "granted", JAN),  # another purpose
    ]
    rows = [(1, "a"), (2, "b"), (3, "c")]
    db.load(events, rows, subject=db.text(), consent_subject=db.text(), text=ci)
    r = db.enforce()
    assert db.kept() == [1]
    assert r.excluded["invalid"] == 1 and r.excluded["no_consent"] == 1
    assert_matches_reference(db, r, events, rows)


# -- lowering --------------------------------------------------------------------------------------

NON_ASCII = [
    Event("İSTANBUL@X.COM", "ads", "granted", JAN),  # DuckDB's and PostgreSQL's lower() give 'i'
    Event("ÉLODIE@X.COM", "ads", "granted", JAN),
    Event("ΟΔΥΣΣΕΑΣ@X.COM", "ads", "granted", JAN),  # final sigma
    Event("STRASSE@X.COM", "ads", "granted", JAN),
    Event("MAX@X.COM", "ads", "granted", JAN),
]
NON_ASCII_ROWS = [
    (1, "istanbul@x.com"),
    (2, "İstanbul@x.com"),
    (3, "élodie@x.com"),
    (4, "Élodie@x.com"),
    (5, "οδυσσεας@x.com"),
    (6, "ΟΔΥΣΣΕΑΣ@x.com"),
    (7, "straße@x.com"),
    (8, "max@x.com"),
]


def test_normalize_lower_lowers_only_a_to_z(db: Db) -> None:
    db.load(NON_ASCII, NON_ASCII_ROWS, subject=db.text(), consent_subject=db.text())
    r = db.enforce(normalize="lower")
    # Only the A-Z letters fold: 'İSTANBUL' matches 'İstanbul', never 'istanbul'.
    assert db.kept() == [2, 4, 6, 8]
    assert r.excluded["no_consent"] == 4
    assert_matches_reference(db, r, NON_ASCII, NON_ASCII_ROWS, normalize="lower")


def test_purposes_fold_only_a_to_z(db: Db) -> None:
    events = [Event("a", "ÉMAIL", "granted", JAN), Event("b", "Émail", "granted", JAN)]
    rows = [(1, "a"), (2, "b")]
    db.load(events, rows, subject=db.text(), consent_subject=db.text())
    r = db.enforce(purpose="émail")
    assert db.kept() == []
    r = db.enforce(purpose="Émail")
    assert db.kept() == [1, 2]
    assert_matches_reference(db, r, events, rows, purpose="Émail")


# -- number keys -----------------------------------------------------------------------------------

INEXACT = ["DOUBLE PRECISION", "REAL", "DECIMAL(10,2)", "NUMERIC"]


@pytest.mark.parametrize("dtype", INEXACT)
def test_a_decimal_or_float_source_subject_is_refused_naming_the_column(db: Db, dtype: str) -> None:
    db.load([Event("42", "ads", "granted", JAN)], [(1, 42)], subject=dtype, consent_subject=db.text())
    with pytest.raises(errors.SourceError, match=r"column 'subject' has type .*no unique text form") as e:
        db.enforce()
    assert "\n" not in str(e.value) and "42," not in str(e.value).split("(")[0]
    assert db.run("SELECT count(*) FROM information_schema.tables WHERE table_name = 'out'") == [(0,)]


@pytest.mark.parametrize("dtype", INEXACT)
def test_a_decimal_or_float_consent_subject_is_refused_naming_the_column(db: Db, dtype: str) -> None:
    db.load([Event(42, "ads", "granted", JAN)], [(1, "42")], subject=db.text(), consent_subject=dtype)
    with pytest.raises(
        errors.ConsentSourceError, match=r"column 'subject_id' has type .*no unique text form"
    ):
        db.enforce()


@pytest.mark.parametrize("dtype", ["SMALLINT", "INTEGER", "BIGINT"])
def test_integer_keys_of_every_width_match_their_text(db: Db, dtype: str) -> None:
    events = [Event("42", "ads", "granted", JAN), Event("7", "ads", "withdrawn", JAN)]
    rows = [(1, 42), (2, 7), (3, 420)]
    db.load(events, rows, subject=dtype, consent_subject=db.text())
    r = db.enforce()
    assert db.kept() == [1]
    assert_matches_reference(db, r, events, rows)


# -- scratch tables --------------------------------------------------------------------------------

SCRATCH = ["_consentgate_snapshot", "_consentgate_keys", "_consentgate_decided"]


def test_user_tables_named_like_the_scratch_tables_survive_an_enforcement(db: Db) -> None:
    db.load([Event("a", "ads", "granted", JAN)], [(1, "a")], subject=db.text(), consent_subject=db.text())
    for name in SCRATCH:
        db.run(f"CREATE TABLE {name} (mine {db.text()})")
        db.run(f"INSERT INTO {name} VALUES ('precious')")
    db.enforce()
    db.enforce()  # a second run on the same connection drops its own earlier scratch tables
    assert db.kept() == [1]
    for name in SCRATCH:
        # qualified: the session's own temp table of that name shadows it
        schema = f"{db.run('SELECT current_database()')[0][0]}.main" if db.dialect == "duckdb" else "public"
        assert db.run(f"SELECT mine FROM {schema}.{name}") == [("precious",)], name


# -- column names ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_an_exact_subject_column_name_wins_over_a_case_insensitive_one(pg_db) -> None:
    con = pg_db.connect()
    db = Db(con, "postgres")
    db.load([Event("a", "ads", "granted", JAN)], [], subject="TEXT", consent_subject="TEXT")
    db.run('CREATE TABLE two ("CID" TEXT, cid TEXT, row_id BIGINT)')
    db.run("INSERT INTO two VALUES ('a', 'b', 1), ('b', 'a', 2)")
    r = db.enforce(source="two", subject_column="cid")
    assert r.subject_column == "cid"
    assert db.kept() == [2]
    r = db.enforce(source="two", subject_column="CID")
    assert db.kept() == [1]
    with pytest.raises(errors.SourceError, match=r"'Cid' matches 'CID' and 'cid' case-insensitively"):
        db.enforce(source="two", subject_column="Cid")
    con.close()


@pytest.mark.postgres
def test_an_exact_table_name_wins_and_two_tables_differing_only_in_case_are_refused(pg_db) -> None:
    """Tables "T" and t must never merge their columns: the exact name is the one the SQL reads."""
    con = pg_db.connect()
    db = Db(con, "postgres")
    db.load(
        [Event("a", "ads", "granted", JAN), Event("b", "ads", "granted", JAN)],
        [],
        subject="TEXT",
        consent_subject="TEXT",
    )
    db.run('CREATE TABLE "Two" (cid TEXT, row_id BIGINT)')
    db.run("CREATE TABLE two (customer TEXT, row_id BIGINT)")
    db.run("""INSERT INTO "Two" VALUES ('a', 1)""")
    db.run("INSERT INTO two VALUES ('b', 2)")
    assert db.enforce(source="Two", subject_column="cid").rows_in == 1 and db.kept() == [1]
    assert db.enforce(source="two", subject_column="customer").rows_in == 1 and db.kept() == [2]
    with pytest.raises(errors.SourceError, match=r"subject column 'cid' is not in source 'two'"):
        db.enforce(source="two", subject_column="cid")  # the old lookup merged "Two"'s columns in
    with pytest.raises(errors.InvalidIdentifierError, match=r"'TWO' matches 'public.Two' and 'public.two'"):
        db.enforce(source="TWO", subject_column="cid")
    con.close()


@pytest.mark.postgres
def test_two_case_insensitive_consent_columns_and_no_exact_one_fail_naming_both(pg_db) -> None:
    con = pg_db.connect()
    db = Db(con, "postgres")
    db.run(
        'CREATE TABLE consent_events ("Subject_Id" TEXT, "SUBJECT_ID" TEXT, purpose TEXT, status TEXT, '
        "event_ts TIMESTAMP, recorded_at TIMESTAMP, expires_at TIMESTAMP)"
    )
    db.run("CREATE TABLE dataset (row_id BIGINT, subject TEXT)")
    with pytest.raises(
        errors.ConsentSourceError, match=r"'subject_id' matches 'Subject_Id' and 'SUBJECT_ID'"
    ):
        db.enforce()
    db.run("ALTER TABLE consent_events ADD COLUMN subject_id TEXT")
    db.run("INSERT INTO consent_events VALUES ('b', 'a', 'ads', 'granted', '2026-01-01', NULL, NULL, 'a')")
    db.run("INSERT INTO dataset VALUES (1, 'a'), (2, 'b')")
    db.enforce()
    assert db.kept() == [1]
    con.close()


# -- timestamps ------------------------------------------------------------------------------------


def _one_event(db: Db, column: str, literal: str, ts: str = "TIMESTAMP") -> None:
    """A grant of 'a' on Jan 1 whose `column` is the timestamp `literal` (an SQL literal)."""
    db.load(
        [Event("a", "ads", "granted", JAN)],
        [(1, "a"), (2, "b")],
        subject=db.text(),
        consent_subject=db.text(),
        ts=ts,
    )
    db.run(f"UPDATE consent_events SET {column} = CAST({literal} AS {ts})")


@pytest.mark.parametrize("ts", ["TIMESTAMP", "DATE"])
@pytest.mark.parametrize("literal", ["'-infinity'", "'0001-12-31 BC'", "'0044-03-15 BC'"])
def test_an_event_before_year_one_that_counts_fails_the_run_naming_the_column(
    db: Db, literal: str, ts: str
) -> None:
    if db.dialect == "duckdb" and "BC" in literal:
        literal = {"'0001-12-31 BC'": "'0000-12-31'", "'0044-03-15 BC'": "'-0043-03-15'"}[literal]
    _one_event(db, "event_ts", literal, ts)
    db.run("INSERT INTO consent_events VALUES ('b', 'ads', 'granted', '2026-01-01', NULL, NULL, 't', 'v')")
    with pytest.raises(
        errors.ConsentSourceError, match=r"consent column 'event_ts' .* before 0001-01-01"
    ) as e:
        db.enforce()
    assert "\n" not in str(e.value)
    assert db.run("SELECT count(*) FROM information_schema.tables WHERE table_name = 'out'") == [(0,)]


def test_an_event_before_year_one_of_another_purpose_does_not_fail_the_run(db: Db) -> None:
    _one_event(db, "event_ts", "'-infinity'")
    db.run("UPDATE consent_events SET purpose = 'mail'")
    db.run("INSERT INTO consent_events VALUES ('a', 'ads', 'granted', '2026-01-01', NULL, NULL, 't', 'v')")
    r = db.enforce()
    assert db.kept() == [1] and r.consent_events_counted == 2


def test_an_old_event_recorded_after_t_does_not_count_and_does_not_fail(db: Db) -> None:
    _one_event(db, "event_ts", "'-infinity'")
    db.run("UPDATE consent_events SET recorded_at = CAST('2027-01-01' AS TIMESTAMP)")
    r = db.enforce()
    assert db.kept() == [] and r.excluded["no_consent"] == 2 and r.consent_events_counted == 0


@pytest.mark.parametrize(
    ("column", "literal", "kept", "reason"),
    [
        ("event_ts", "'infinity'", [], "no_consent"),  # after every T: never counts
        ("recorded_at", "'infinity'", [], "no_consent"),  # never known
        ("recorded_at", "'-infinity'", [1], "no_consent"),  # known from the start
        ("expires_at", "'infinity'", [1], "no_consent"),  # never expires
        ("expires_at", "'-infinity'", [], "expired"),  # always expired
        ("expires_at", "'0001-01-01'", [], "expired"),
    ],
)
def test_infinite_timestamps_are_decided_by_the_rule(
    db: Db, column: str, literal: str, kept: list[int], reason: str
) -> None:
    _one_event(db, column, literal)
    r = db.enforce()
    assert db.kept() == kept
    assert r.excluded[reason] >= 1 and r.rows_in == 2
    assert set(r.excluded) == set(REASONS)


def test_an_event_in_year_one_decides(db: Db) -> None:
    db.load(
        [Event("a", "ads", "granted", datetime(1, 1, 1)), Event("b", "ads", "withdrawn", datetime(1, 1, 1))],
        [(1, "a"), (2, "b")],
        subject=db.text(),
        consent_subject=db.text(),
    )
    r = db.enforce()
    assert db.kept() == [1] and r.excluded["withdrawn"] == 1
