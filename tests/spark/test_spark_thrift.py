"""The engine on Spark's Thrift server (HiveServer2 protocol, PyHive), a real server the suite starts
(tests/sparkserver.running_thrift_server): the shared decision cases, parameters filled in client-side
that round-trip exactly whatever they hold, and server errors withheld like every engine message."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import consentgate
import pytest
from cases_loader import load_cases
from consentgate.engine.session import session_for
from consentgate.engine.spark_thrift import SparkThriftConnection, render, spark_literal
from consentgate.errors import DatabaseError
from consentgate.rule.names import TableName
from spark_data import Scenario, decide, load_sql
from test_rule_cases import expected

CASES = load_cases()
#: A quote, backslashes (one before a quote, one before `u0041`), a `?`, comment markers, a tab and a
#: newline, non-ASCII letters, an astral-plane emoji and a NUL: each must come back exactly.
HOSTILE = "o'brien\\'; DROP TABLE x; -- \\u0041 ? /* \t\n\u00e9\u0130\u03c3\U0001f600 \x00 ''"


# -- rendering, no server --------------------------------------------------------------------------


def test_markers_inside_literals_identifiers_and_comments_are_not_parameters() -> None:
    sql = "SELECT ?, '?', 'it''s ?', 'a\\'?', `we?ird`, \"dq?\" -- no ?\n, ? /* ? */ FROM t WHERE x = ?"
    assert render(sql, [1, "b", None]) == (
        "SELECT 1, '?', 'it''s ?', 'a\\'?', `we?ird`, \"dq?\" -- no ?\n, 'b' /* ? */ FROM t WHERE x = NULL"
    )


def test_a_marker_count_that_differs_from_the_parameters_is_refused() -> None:
    with pytest.raises(ValueError, match="2 parameter markers for 1 parameters"):
        render("SELECT ?, ?", ["secret@example.com"])
    with pytest.raises(ValueError, match="1 parameter markers for 0"):
        render("SELECT ?", [])
    with pytest.raises(ValueError, match="0 parameter markers for 1"):
        render("SELECT '?'", ["x"])


def test_literals_of_each_parameter_type() -> None:
    assert (
        spark_literal(True) == "TRUE" and spark_literal(0) == "0" and spark_literal(-(2**70)) == str(-(2**70))
    )
    assert spark_literal(1.5) == "1.5D" and spark_literal(1e300) == "1e+300D"
    assert spark_literal(float("nan")) == "CAST('NaN' AS DOUBLE)"
    assert spark_literal(float("-inf")) == "CAST('-Infinity' AS DOUBLE)"
    assert spark_literal(Decimal("1E+3")) == "1000BD"
    assert spark_literal(datetime(1, 1, 1)) == "TIMESTAMP '0001-01-01 00:00:00.000000'"
    aware = datetime(2026, 6, 1, 2, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert spark_literal(aware) == "TIMESTAMP '2026-06-01 02:30:00.000000'"
    assert spark_literal(date(2026, 6, 1)) == "DATE '2026-06-01'"
    assert spark_literal(b"\x00\xff") == "X'00ff'"
    assert spark_literal("a'b\\c") == "'a\\'b\\\\c'"
    with pytest.raises(TypeError, match="type dict"):
        spark_literal({"subject": "x"})


# -- on the Thrift server ----------------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("ansi", ["true"])
def test_shared_decision_cases_on_the_thrift_server(thrift_connection, ansi: str) -> None:
    """Every case of tests/cases/decision_cases.yaml (withdrawals, expiry, invalid and malformed events,
    ties, normalisation, case-insensitive columns, year one) on the Thrift server, with ANSI on (the
    server's default). The engine's SQL is the one it sends over Spark Connect, where
    tests/spark/test_spark_rule.py runs the cases with ANSI on and off; over Thrift only the transport
    and the client-side parameters differ, which ANSI does not change."""
    cur = thrift_connection.cursor()
    cur.execute(f"SET spark.sql.ansi.enabled={ansi}")
    names = load_sql(
        cur.execute,
        [Scenario(c.events, c.rows, c.subject_type, c.consent_subject_type) for c in CASES],
        prefix=f"c{ansi[0]}",
    )
    session = session_for(thrift_connection)
    assert session.dialect.name == "spark" and session.connection is thrift_connection
    failures = []
    for case, (consent, dataset) in zip(CASES, names, strict=True):
        kept, excluded, rows_in = decide(session, consent, dataset, case.purpose, case.as_of, case.normalize)
        if (kept, excluded) != expected(case) or rows_in != len(case.rows):
            failures.append(f"{case.name}: kept {kept}, excluded {excluded}; expected {expected(case)}")
    assert not failures, "\n".join(failures)


@pytest.mark.spark
@pytest.mark.slow
def test_a_raw_pyhive_connection_takes_the_spark_path(spark_thrift_server) -> None:
    """session_for() on the PyHive connection itself (what HiveServer2Hook.get_conn() returns)."""
    raw = spark_thrift_server.connect()
    try:
        session = session_for(raw)
        assert isinstance(session.connection, SparkThriftConnection) and session.dialect.name == "spark"
        assert session.one("SELECT current_timezone()") == ("UTC",)
        assert session.columns(TableName("default", "no_such_table")) is None
    finally:
        raw.close()


@pytest.mark.spark
@pytest.mark.slow
def test_hostile_parameters_round_trip_exactly(thrift_connection, caplog) -> None:
    session = session_for(thrift_connection)
    caplog.set_level(logging.DEBUG)
    values = [HOSTILE, "", "\\", "'", "\\'", "?", 7, -(2**40), None, True, 2.5]
    stamps = [datetime(1, 1, 1), datetime(2026, 6, 1, 12, 30, 45, 123456), datetime(9999, 12, 31, 23, 59, 59)]
    row = session.one(f"SELECT {', '.join(['?'] * (len(values) + len(stamps)))}", [*values, *stamps])
    assert list(row) == [*values, *stamps]
    assert session.one("SELECT ? = ?, length(?)", [HOSTILE, HOSTILE, HOSTILE]) == (True, len(HOSTILE))
    assert session.one("SELECT DATE '2026-06-01', CAST(1.25 AS DECIMAL(5, 2))") == (
        date(2026, 6, 1),
        Decimal("1.25"),
    )
    # PyHive logs each statement (parameters filled in) at INFO and each response at DEBUG: silenced
    assert not [r for r in caplog.records if r.name.startswith("pyhive")]
    assert "brien" not in caplog.text


@pytest.mark.spark
@pytest.mark.slow
def test_a_hostile_subject_key_is_kept_exactly_and_counted(thrift_connection) -> None:
    """A subject key holding quotes, backslashes, comment markers and non-ASCII text: granted, it is kept
    with its exact value; withdrawn for another purpose, that enforcement excludes it."""
    cur = thrift_connection.cursor()
    cur.execute(
        "CREATE TABLE consent_events (subject_id STRING, purpose STRING, status STRING, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP, source STRING, policy_version STRING) USING parquet"
    )
    cur.execute("CREATE TABLE dataset (row_id BIGINT, subject STRING) USING parquet")
    t = datetime(2026, 1, 1)
    cur.execute(
        "INSERT INTO consent_events VALUES (?, 'ads', 'granted', ?, NULL, NULL, 'x', 'v1'), "
        "(?, 'email', 'granted', ?, NULL, NULL, 'x', 'v1'), (?, 'email', 'withdrawn', ?, NULL, NULL, 'x', 'v1')",
        [HOSTILE, t, HOSTILE, t, HOSTILE, t + timedelta(days=1)],
    )
    cur.execute("INSERT INTO dataset VALUES (1, ?), (2, ?), (3, 'nobody')", [HOSTILE, HOSTILE + " "])
    as_of = datetime(2026, 6, 1)
    ads = consentgate.enforce(
        source="dataset", target="consented_ads", subject_column="subject", purpose="ads",
        as_of=as_of, connection=thrift_connection, dialect="spark",
    )  # fmt: skip
    cur.execute("SELECT row_id, subject FROM consented_ads ORDER BY row_id")
    # the trailing space is trimmed for matching (docs/semantics.md, rule 6); the value kept is unchanged
    assert cur.fetchall() == [(1, HOSTILE), (2, HOSTILE + " ")]
    assert ads.rows_out == 2 and ads.excluded["no_consent"] == 1
    email = consentgate.enforce(
        source="dataset", target="consented_email", subject_column="subject", purpose="email",
        as_of=as_of, connection=thrift_connection, dialect="spark",
    )  # fmt: skip
    cur.execute("SELECT count(*) FROM consented_email")
    assert cur.fetchall() == [(0,)]
    assert email.excluded["withdrawn"] == 2
    # the evidence is the Spark path's: views over append-only logs, the run's row last
    cur.execute("SELECT status FROM consentgate_runs ORDER BY started_at")
    assert [r[0] for r in cur.fetchall()] == ["success", "success"]
    cur.execute("SHOW TABLES LIKE 'consentgate_runs_log'")
    assert len(cur.fetchall()) == 1


@pytest.mark.spark
@pytest.mark.slow
def test_a_refused_statement_withholds_the_value_it_quotes(thrift_connection) -> None:
    session = session_for(thrift_connection)
    session.run("SET spark.sql.ansi.enabled=true")
    with pytest.raises(DatabaseError) as info:
        with session.stage("reading source", "raw.people"):
            session.all("SELECT CAST(? AS INT)", ["alice@example.com"])
    text = str(info.value)
    assert "alice" not in text and "\n" not in text
    assert "ThriftServerError" in text and "SQLSTATE" in text
    assert "alice" in (info.value._engine_message or "")  # kept for the CLI's debug output only
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.spark
@pytest.mark.slow
def test_consent_sources_are_ingested_over_thrift_with_hostile_subjects_exact(thrift_connection) -> None:
    """Ingestion over the Thrift server: rows read in batches (fetchmany), staged by INSERT ... VALUES
    with literal parameters; a hostile subject key round-trips exactly, a later GPC signal from another
    source withdraws it, and re-ingesting writes nothing."""
    from consentgate.engine.source_config import parse_sources
    from consentgate.sources.ingest import ingest

    cur = thrift_connection.cursor()
    cur.execute(
        "CREATE TABLE banner (subject_id STRING, purpose STRING, status STRING, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP) USING parquet"
    )
    cur.execute(
        "CREATE TABLE requests (customer_id STRING, sec_gpc STRING, requested_at TIMESTAMP) USING parquet"
    )
    t = datetime(2026, 1, 1)
    cur.execute(
        "INSERT INTO banner VALUES (?, 'ads', 'granted', ?, ?), ('plain', 'ads', 'granted', ?, ?)",
        [HOSTILE, t, t, t, t],
    )
    cur.execute("INSERT INTO requests VALUES (?, '1', ?)", [HOSTILE, t + timedelta(hours=1)])
    sources = parse_sources(
        [
            {"name": "banner", "kind": "events", "table": "banner"},
            {"name": "gpc", "kind": "gpc", "table": "requests", "purposes": ["ads"],
             "columns": {"subject": "customer_id", "signal": "sec_gpc", "event_ts": "requested_at"}},
        ],
        {"ads"},
        "test policy",
    )  # fmt: skip
    session = session_for(thrift_connection)
    first = ingest(session, sources)
    assert [(r.status, r.events_written) for r in first] == [("success", 2), ("success", 1)]
    cur.execute("SELECT subject_id, status, source FROM consent_events ORDER BY event_ts, subject_id")
    assert cur.fetchall() == [
        (HOSTILE, "granted", "banner"),
        ("plain", "granted", "banner"),
        (HOSTILE, "withdrawn", "gpc"),
    ]
    cur.execute("CREATE TABLE people (subject STRING) USING parquet")
    cur.execute("INSERT INTO people VALUES (?), ('plain')", [HOSTILE])
    kept = consentgate.enforce(
        source="people", target="consented_people", subject_column="subject", purpose="ads",
        connection=thrift_connection, dialect="spark",
    )  # fmt: skip
    assert (kept.rows_out, kept.excluded["withdrawn"]) == (1, 1)
    again = ingest(session, sources)
    assert [r.events_written for r in again] == [0, 0]


@pytest.mark.spark
@pytest.mark.slow
def test_consentgate_run_on_a_hive_url(spark_thrift_server, thrift_connection, tmp_path) -> None:
    """`consentgate run --database hive://user@host:port/schema`: the nightly job on the Thrift server,
    its evidence in the URL's schema; a refused connection is one line with the password masked."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    cur = thrift_connection.cursor()
    cur.execute("SELECT current_schema()")
    ((schema,),) = cur.fetchall()
    cur.execute(
        "CREATE TABLE consent_events (subject_id STRING, purpose STRING, status STRING, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP) USING parquet"
    )
    cur.execute(
        "INSERT INTO consent_events VALUES ('a', 'ads', 'granted', TIMESTAMP '2026-01-01', NULL, NULL)"
    )
    cur.execute("CREATE TABLE events (row_id BIGINT, customer_id STRING) USING parquet")
    cur.execute("INSERT INTO events VALUES (1, 'a'), (2, 'b')")
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "purposes:\n  - {name: ads, description: Ads.}\n"
        "datasets:\n  - {name: events, source: events, target: consented_events, subject_column: customer_id, purpose: ads}\n"
    )
    cg = str(Path(sys.executable).with_name("consentgate"))
    url = f"hive://consentgate@{spark_thrift_server.host}:{spark_thrift_server.port}/{schema}"
    done = subprocess.run(
        [cg, "run", "--policy", str(policy), "--database", url, "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-800:]
    (ds,) = json.loads(done.stdout)["datasets"]
    assert (ds["rows_in"], ds["rows_out"], ds["excluded"]["no_consent"]) == (2, 1, 1)
    cur.execute("SELECT row_id FROM consented_events")
    assert cur.fetchall() == [(1,)]
    cur.execute("SELECT status FROM consentgate_runs")
    assert cur.fetchall() == [("success",)]
    refused = subprocess.run(
        [cg, "run", "--policy", str(policy), "--database", f"hive://u:s3cret@127.0.0.1:1/{schema}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "s3cret" not in refused.stderr + refused.stdout
    assert "cannot connect to the Thrift server at 'hive://u:***@127.0.0.1:1/" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
