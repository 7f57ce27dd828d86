"""Property-based: the SQL engine keeps exactly the rows, and counts exactly the reasons, of the reference."""

from __future__ import annotations

from datetime import datetime, timedelta

import consentgate
import duckdb
import pytest
from cases_loader import create_tables
from consentgate.engine.enforcement import Enforcer
from consentgate.engine.session import session_for
from consentgate.rule.names import TableName
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Event
from reference import enforce as reference_enforce

T = datetime(2026, 6, 1, 2, 0, 0)
# A handful of instants around T, so ties, "at T" and "after T" happen often.
INSTANTS = [T + timedelta(days=d) for d in (-30, -2, -1, 0, 1)] + [T - timedelta(microseconds=1)]
TEXT_KEYS = [
    "a",
    "A",
    " a ",
    "b",
    "42",
    " 42",
    "042",
    "",
    "  ",
    "Ann@X.com",
    "ann@x.com",
    "ANN@X.COM ",
    "\ta",
    "\u00a0a",
    "a\u3000",
    "\u00a0",  # only U+0020 is trimmed (rule 3)
]
INT_KEYS = [1, 2, 42, 7]
PURPOSES = ["ads", " ADS", "Ads ", "mail", "ads\t", "\u00a0ads", None]
STATUSES = [
    "granted",
    " GRANTED ",
    "Granted",
    "granted\u00a0",
    "denied",
    "withdrawn",
    "WITHDRAWN",
    "pending",
    "",
    None,
]

maybe_instant = st.one_of(st.none(), st.sampled_from(INSTANTS))


def events(keys: st.SearchStrategy) -> st.SearchStrategy[list[Event]]:
    event = st.builds(
        Event,
        subject_id=st.one_of(st.none(), keys),
        purpose=st.sampled_from(PURPOSES),
        status=st.sampled_from(STATUSES),
        event_ts=st.one_of(st.sampled_from(INSTANTS), st.none()),
        recorded_at=maybe_instant,
        expires_at=maybe_instant,
    )
    return st.lists(event, max_size=25)


@st.composite
def scenario(draw: st.DrawFn):
    shape = draw(st.sampled_from(["text/text", "int/text", "text/int"]))
    dataset_type, consent_type = shape.split("/")
    dataset_keys = st.sampled_from(INT_KEYS) if dataset_type == "int" else st.sampled_from(TEXT_KEYS)
    consent_keys = (
        st.sampled_from(INT_KEYS)
        if consent_type == "int"
        else st.sampled_from(TEXT_KEYS + [str(k) for k in INT_KEYS] + [f" {k} " for k in INT_KEYS])
    )
    subjects = draw(st.lists(st.one_of(st.none(), dataset_keys), max_size=20))
    rows = list(enumerate(subjects, start=1))
    return {
        "dataset_type": "integer" if dataset_type == "int" else "text",
        "consent_type": "integer" if consent_type == "int" else "text",
        "events": draw(events(consent_keys)),
        "rows": rows,
        "purpose": draw(st.sampled_from(["ads", " ADS ", "mail"])),
        "normalize": draw(st.sampled_from([None, "lower"])),
        "as_of": draw(st.sampled_from([T, T + timedelta(days=1)])),
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_engine_matches_reference(s) -> None:
    con = duckdb.connect(":memory:")
    create_tables(con, "duckdb", s["events"], s["rows"], s["dataset_type"], s["consent_type"])
    result = consentgate.enforce(
        source="dataset",
        target="out",
        subject_column="subject",
        purpose=s["purpose"],
        as_of=s["as_of"],
        normalize=s["normalize"],
        connection=con,
    )
    kept = sorted(r[0] for r in con.execute("SELECT row_id FROM out").fetchall())
    ref_kept, ref_counts = reference_enforce(s["rows"], s["events"], s["purpose"], s["as_of"], s["normalize"])
    assert kept == sorted(ref_kept)
    assert result.excluded == ref_counts
    assert result.rows_in == result.rows_out + sum(result.excluded.values())
    audit = (len(s["rows"]), len(ref_kept), ref_counts)
    assert _audited(con, "duckdb", s["purpose"], s["as_of"], s["normalize"]) == audit


def _audited(con, dialect: str, purpose: str, as_of: datetime, normalize: str | None) -> tuple:
    """(rows_in, rows_out, excluded) of the dataset as an audit counts it (Enforcer.counts: one
    statement, no key table), which must agree with enforce()'s own counts."""
    session = session_for(con, dialect)
    enforcer = Enforcer(session, consent_table="consent_events", as_of=as_of, run_id="audit")
    with session.transaction():
        enforcer.take_snapshot([purpose])
    try:
        return enforcer.counts(TableName.parse("dataset"), "subject", purpose, normalize)
    finally:
        session.rollback()


# -- column types and collations (issue 9): keys compare byte by byte on every engine ----------------

CASE_KEYS = [
    "ann@x.com",
    "ANN@X.COM",
    "Ann@x.com",
    " ann@x.com",
    "İ@x.com",
    "i@x.com",
    "I@X.COM",
    "é",
    "É",
    "e",
    "\u212a",
    "k",
    "K",
    "ß",
    "SS",
    "ss",
    "42",
    "042",
]
COLUMN_TYPES = {
    # kind: (DuckDB type, PostgreSQL type, keys it can hold)
    "text": ("VARCHAR", "TEXT", "text"),
    "nocase": ("VARCHAR COLLATE NOCASE", "CITEXT", "text"),
    "noaccent": ("VARCHAR COLLATE NOCASE.NOACCENT", "TEXT COLLATE cg_ci_level1", "text"),
    "icu_de": ("VARCHAR COLLATE de", 'TEXT COLLATE "de-x-icu"', "text"),
    "integer": ("INTEGER", "INTEGER", "int"),
    "bigint": ("BIGINT", "BIGINT", "int"),
}


@st.composite
def typed_scenario(draw: st.DrawFn):
    dataset_kind = draw(st.sampled_from(sorted(COLUMN_TYPES)))
    consent_kind = draw(st.sampled_from(sorted(COLUMN_TYPES)))

    def keys(kind: str) -> st.SearchStrategy:
        return st.sampled_from(INT_KEYS) if COLUMN_TYPES[kind][2] == "int" else st.sampled_from(CASE_KEYS)

    subjects = draw(st.lists(st.one_of(st.none(), keys(dataset_kind)), max_size=12))
    event = st.builds(
        Event,
        subject_id=keys(consent_kind),
        purpose=st.sampled_from(["ads", "ADS", "ADŞ", "ads"]),
        status=st.sampled_from(["granted", "GRANTED", "withdrawn", "denied", "GRANTEİ"]),
        event_ts=st.sampled_from(INSTANTS),
        recorded_at=maybe_instant,
        expires_at=maybe_instant,
    )
    return {
        "dataset_kind": dataset_kind,
        "consent_kind": consent_kind,
        "text_kind": draw(st.sampled_from(["text", "nocase", "noaccent"])),
        "events": draw(st.lists(event, max_size=15)),
        "rows": list(enumerate(subjects, start=1)),
        "normalize": draw(st.sampled_from([None, "lower"])),
    }


def _typed_tables(cursor, dialect: str, s) -> None:
    col = 0 if dialect == "duckdb" else 1
    p = "?" if dialect == "duckdb" else "%s"
    text = COLUMN_TYPES[s["text_kind"]][col]
    cursor.execute("DROP TABLE IF EXISTS consent_events")
    cursor.execute("DROP TABLE IF EXISTS dataset")
    cursor.execute(
        f"CREATE TABLE consent_events (subject_id {COLUMN_TYPES[s['consent_kind']][col]}, purpose {text}, "
        f"status {text}, event_ts TIMESTAMP, recorded_at TIMESTAMP, expires_at TIMESTAMP)"
    )
    for e in s["events"]:
        cursor.execute(
            f"INSERT INTO consent_events VALUES ({', '.join([p] * 6)})",
            [e.subject_id, e.purpose, e.status, e.event_ts, e.recorded_at, e.expires_at],
        )
    cursor.execute(f"CREATE TABLE dataset (row_id BIGINT, subject {COLUMN_TYPES[s['dataset_kind']][col]})")
    for row in s["rows"]:
        cursor.execute(f"INSERT INTO dataset VALUES ({p}, {p})", list(row))


def _check_typed(con, dialect: str, s) -> None:
    result = consentgate.enforce(
        source="dataset",
        target="out",
        subject_column="subject",
        purpose="ads",
        as_of=T,
        normalize=s["normalize"],
        connection=con,
        dialect=dialect,
    )
    if dialect == "duckdb":
        kept = sorted(r[0] for r in con.execute("SELECT row_id FROM out").fetchall())
    else:
        with con.cursor() as cur:
            cur.execute("SELECT row_id FROM out")
            kept = sorted(r[0] for r in cur.fetchall())
    ref_kept, ref_counts = reference_enforce(s["rows"], s["events"], "ads", T, s["normalize"])
    assert kept == sorted(ref_kept)
    assert result.excluded == ref_counts
    assert result.rows_in == len(s["rows"])
    assert _audited(con, dialect, "ads", T, s["normalize"]) == (len(s["rows"]), len(ref_kept), ref_counts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_scenario())
def test_engine_matches_reference_whatever_the_column_types_on_duckdb(s) -> None:
    con = duckdb.connect(":memory:")
    _typed_tables(con, "duckdb", s)
    _check_typed(con, "duckdb", s)


@pytest.fixture
def pg_con(pg_db):
    con = pg_db.connect()
    with con.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS citext")
        cur.execute(
            "CREATE COLLATION IF NOT EXISTS cg_ci_level1 (provider = icu, locale = 'und-u-ks-level1', "
            "deterministic = false)"
        )
    con.commit()
    yield con
    con.close()


@pytest.mark.postgres
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(s=typed_scenario())
def test_engine_matches_reference_whatever_the_column_types_on_postgres(pg_con, s) -> None:
    with pg_con.cursor() as cur:
        _typed_tables(cur, "postgres", s)
    pg_con.commit()
    _check_typed(pg_con, "postgres", s)
