"""No subject identifier leaves consentgate through an error (issue #9, part 3; docs/errors.md).

A marker value sits in every text column of every table (the consent log, the sources, a CSV file behind
a view). Each source is a view that makes the engine fail in its own way while reading it: a CSV
conversion error (DuckDB quotes the whole `Original Line`), casts of text to timestamp, date, decimal,
bigint and JSON, an `error()` call, a regular expression, a division by zero, a dropped table; and the
consent log itself behind a failing cast. Every engine quotes the value it choked on; none of it may
reach stderr, stdout, a log record, the exception a caller gets (with its traceback), consentgate_runs,
consentgate_lineage or an OpenLineage event.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import consentgate
import duckdb
import pytest
from consentgate import errors

MARKER = "MARKER-7f3a@leak.test"
T = "2026-03-01T00:00:00"
CG = str(Path(sys.executable).with_name("consentgate"))

# (dataset, view body over raw.people(cid, note) / the CSV file, what the engine quotes)
DUCKDB_SOURCES = [
    (
        "csv_conversion",
        "SELECT * FROM read_csv('{csv}', header = true, columns = {{'cid': 'VARCHAR', 'amount': 'INTEGER'}})",
    ),
    ("cast_timestamp", "SELECT cid, CAST(note AS TIMESTAMP) AS seen FROM raw.people"),
    ("cast_date", "SELECT cid, CAST(note AS DATE) AS seen FROM raw.people"),
    ("cast_decimal", "SELECT cid, CAST(note AS DECIMAL(10, 2)) AS amount FROM raw.people"),
    ("cast_bigint", "SELECT cid, CAST(note AS BIGINT) AS n FROM raw.people"),
    ("cast_json", "SELECT cid, CAST(note AS JSON) AS doc FROM raw.people"),
    ("json_extract", "SELECT cid, json_extract(note, '$.a') AS doc FROM raw.people"),
    ("error_call", "SELECT cid, error(note) AS boom FROM raw.people"),
    ("bad_regex", "SELECT cid, regexp_matches(note, note || '(') AS m FROM raw.people"),
    ("division_by_zero", "SELECT cid, length(note) // 0 AS n FROM raw.people"),
    ("dropped_table", "SELECT cid FROM raw.gone"),
]


def assert_no_marker(where: str, text: Any) -> None:
    assert MARKER.lower() not in str(text).lower(), f"the marker leaked into {where}: {str(text)[:2000]}"


def _create_duckdb(path: Path, csv: Path) -> None:
    csv.write_text(f"cid,amount\n{MARKER},notanumber\n")
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE consent_events (subject_id VARCHAR, purpose VARCHAR, status VARCHAR, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP, source VARCHAR, policy_version VARCHAR)"
    )
    con.executemany(
        "INSERT INTO consent_events VALUES (?, ?, ?, TIMESTAMP '2026-01-01', NULL, NULL, ?, ?)",
        [[MARKER, "ads", "granted", MARKER, MARKER], [MARKER, MARKER, MARKER, MARKER, MARKER]],
    )
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.people (cid VARCHAR, note VARCHAR)")
    con.execute("INSERT INTO raw.people VALUES (?, ?)", [MARKER, MARKER])
    con.execute("CREATE TABLE raw.gone (cid VARCHAR)")
    for name, body in DUCKDB_SOURCES:
        con.execute(f"CREATE VIEW raw.{name} AS {body.format(csv=csv)}")
    con.execute("DROP TABLE raw.gone")
    # The consent log read through a view whose timestamp cast fails on a marker value.
    con.execute(
        "CREATE VIEW consent_cast AS SELECT subject_id, purpose, status, CAST(source AS TIMESTAMP) AS event_ts, "
        "recorded_at, expires_at, source, policy_version FROM consent_events"
    )
    con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "leaky.duckdb"
    _create_duckdb(path, tmp_path / "people.csv")
    return path


def _evidence(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT * FROM consentgate_runs").fetchall()
        return rows + con.execute("SELECT * FROM consentgate_lineage").fetchall()
    finally:
        con.close()


def _cg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    full.pop("CONSENTGATE_DEBUG_ERRORS", None)
    full.update(env or {})
    return subprocess.run([CG, *args], capture_output=True, text=True, timeout=120, env=full)


def _enforce_args(db: Path, source: str, run_id: str, consent_table: str = "consent_events") -> list[str]:
    return [
        "enforce",
        "--database",
        str(db),
        "--source",
        source,
        "--target",
        "out.t",
        "--subject-column",
        "cid",
        "--purpose",
        "ads",
        "--as-of",
        T,
        "--run-id",
        run_id,
        "--consent-table",
        consent_table,
    ]


CLI_CASES = [(f"raw.{name}", "consent_events") for name, _ in DUCKDB_SOURCES] + [
    ("raw.people", "consent_cast")
]


@pytest.mark.parametrize("source,consent_table", CLI_CASES, ids=[f"{s}|{c}" for s, c in CLI_CASES])
def test_cli_enforce_reports_the_stage_and_class_but_never_the_value(
    warehouse: Path, source: str, consent_table: str
) -> None:
    p = _cg(*_enforce_args(warehouse, source, "leak", consent_table))
    assert p.returncode == 1
    assert_no_marker("stdout", p.stdout)
    assert_no_marker("stderr", p.stderr)
    (line,) = p.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("consentgate: error: ")
    assert "failed: duckdb." in line and "withheld" in line
    stage = "reading the consent log 'consent_cast'" if consent_table == "consent_cast" else "dataset 'out.t'"
    assert stage in line or f"'{source}'" in line
    evidence = _evidence(warehouse)
    assert_no_marker("consentgate_runs / consentgate_lineage", evidence)
    assert [r[3] for r in evidence if r[0] == "leak"] == ["failed"]


def test_debug_variable_shows_the_raw_message_on_the_terminal_only(warehouse: Path) -> None:
    p = _cg(*_enforce_args(warehouse, "raw.cast_bigint", "debug"), env={errors.DEBUG_ENV: "1"})
    assert p.returncode == 1
    error_line, debug_line = p.stderr.strip().splitlines()
    assert MARKER not in error_line
    assert debug_line.startswith("consentgate: debug: withheld message: ") and MARKER in debug_line
    assert_no_marker("consentgate_runs / consentgate_lineage", _evidence(warehouse))


def test_cli_run_records_and_emits_no_value(warehouse: Path, tmp_path: Path) -> None:
    datasets = [
        {
            "name": name,
            "source": f"raw.{name}",
            "target": f"out.{name}",
            "subject_column": "cid",
            "purpose": "ads",
        }
        for name, _ in DUCKDB_SOURCES
    ]
    policy = tmp_path / "policy.yml"
    policy.write_text(
        json.dumps({"purposes": [{"name": "ads", "description": "Ads."}], "datasets": datasets})
    )
    events = tmp_path / "ol" / "events.jsonl"
    p = _cg(
        "run",
        "--policy",
        str(policy),
        "--database",
        str(warehouse),
        "--as-of",
        T,
        "--run-id",
        "nightly",
        env={"CONSENTGATE_OPENLINEAGE_FILE": str(events)},
    )
    assert p.returncode == 1
    assert_no_marker("stdout", p.stdout)
    assert_no_marker("stderr", p.stderr)
    assert "Traceback" not in p.stderr
    assert_no_marker("consentgate_runs / consentgate_lineage", _evidence(warehouse))
    sent = events.read_text()
    assert sent.count('"eventType": "FAIL"') == len(DUCKDB_SOURCES) + 1  # every dataset, then the run
    assert_no_marker("OpenLineage events", sent)
    failures = [
        json.loads(e)["run"]["facets"]["errorMessage"]["message"] for e in sent.splitlines() if '"FAIL"' in e
    ]
    assert all("failed: duckdb." in m or "failed: " in m for m in failures)


def test_consent_log_failure_is_emitted_without_its_value(warehouse: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(
        json.dumps(
            {
                "consent": {"table": "consent_cast"},
                "purposes": [{"name": "ads", "description": "Ads."}],
                "datasets": [
                    {
                        "name": "p",
                        "source": "raw.people",
                        "target": "out.p",
                        "subject_column": "cid",
                        "purpose": "ads",
                    }
                ],
            }
        )
    )
    events = tmp_path / "events.jsonl"
    p = _cg(
        "run",
        "--policy",
        str(policy),
        "--database",
        str(warehouse),
        "--as-of",
        T,
        env={"CONSENTGATE_OPENLINEAGE_FILE": str(events)},
    )
    assert p.returncode == 1
    assert "reading the consent log 'consent_cast' failed: duckdb.ConversionException" in p.stderr
    assert_no_marker("stderr", p.stderr)
    assert_no_marker("OpenLineage events", events.read_text())
    assert_no_marker("consentgate_runs", _evidence(warehouse))


@pytest.mark.parametrize("name", [n for n, _ in DUCKDB_SOURCES])
def test_python_api_raises_an_error_without_the_value(
    warehouse: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.DatabaseError) as info:
        consentgate.enforce(
            warehouse,
            source=f"raw.{name}",
            target="out.t",
            subject_column="cid",
            purpose="ads",
            as_of=T,
            run_id="api",
        )
    assert info.value.error_class.startswith("duckdb.")
    assert_no_marker("the exception", repr(info.value))
    assert_no_marker("its traceback", "".join(traceback.format_exception(info.value)))
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert_no_marker("log records", caplog.text)
    assert_no_marker("consentgate_runs / consentgate_lineage", _evidence(warehouse))


def test_errors_that_are_not_ours_are_reduced_to_their_class() -> None:
    for exc in (
        duckdb.ConversionException(f'Could not convert string "{MARKER}" to INT64'),
        KeyError(MARKER),
        ValueError(f"invalid literal for int() with base 10: {MARKER!r}"),
        RuntimeError(MARKER),
    ):
        text = errors.one_line(exc)
        assert_no_marker("one_line", text)
        assert text.startswith(errors.error_class(exc))
    ours = errors.SourceError("source table 'raw.x' does not exist")
    assert errors.one_line(ours) == "source table 'raw.x' does not exist"


def test_stage_names_what_failed_and_lets_our_own_errors_and_success_through() -> None:
    with errors.stage("reading source", table="raw.people"):
        pass  # nothing raised: nothing happens
    with pytest.raises(errors.SourceError, match="ours"):
        with errors.stage("reading source", table="raw.people"):
            raise errors.SourceError("ours")
    with pytest.raises(errors.DatabaseError) as info:
        with errors.stage("reading source", table="raw.people"):
            raise duckdb.ConversionException(f'Could not convert string "{MARKER}"')
    assert str(info.value).startswith("reading source 'raw.people' failed: duckdb.ConversionException (")
    assert info.value.__context__ is None and MARKER not in repr(info.value)
    assert errors.engine_message(info.value) == f'Could not convert string "{MARKER}"'
    import pickle

    copy = pickle.loads(pickle.dumps(info.value))  # e.g. across processes: the message stays behind
    assert str(copy) == str(info.value) and errors.engine_message(copy) is None
    assert MARKER not in str(pickle.dumps(info.value))


def test_connection_urls_and_dsns_have_their_password_masked() -> None:
    assert errors.mask_url("postgresql://etl:s3cret@db:5432/w") == "postgresql://etl:***@db:5432/w"
    assert (
        errors.mask_url("host=db user=etl password=s3cret dbname=w")
        == "host=db user=etl password=*** dbname=w"
    )
    assert errors.mask_url("md:w?motherduck_token=abc.def") == "md:w?motherduck_token=***"
    assert (
        errors.mask_url("postgresql://etl@db/w and /tmp/a.duckdb")
        == "postgresql://etl@db/w and /tmp/a.duckdb"
    )
    exc = errors.DatabaseNotFoundError("database file 'postgresql://etl:s3cret@db/w' does not exist")
    assert "s3cret" not in errors.one_line(exc)


def test_cli_masks_a_password_given_as_the_database(tmp_path: Path) -> None:
    p = _cg("lineage", "--database", "postgresql://etl:s3cret@db:5432/w")
    assert p.returncode == 1 and "s3cret" not in p.stderr and "***" in p.stderr


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_SOURCES = [
    (
        "cast_bigint",
        "SELECT cid, CAST(note AS bigint) AS n FROM raw.people",
    ),  # invalid input syntax ... "<value>"
    ("cast_timestamp", "SELECT cid, CAST(note AS timestamp) AS seen FROM raw.people"),
    ("cast_numeric", "SELECT cid, CAST(note AS numeric) AS amount FROM raw.people"),
    ("cast_json", "SELECT cid, CAST(note AS json) AS doc FROM raw.people"),  # DETAIL: Token "<value>" ...
    ("cast_uuid", "SELECT cid, CAST(note AS uuid) AS id FROM raw.people"),
    ("division_by_zero", "SELECT cid, length(note) / 0 AS n FROM raw.people"),
    ("bad_regex", "SELECT cid, note ~ (note || '(') AS m FROM raw.people"),
]


@pytest.fixture
def pg_warehouse(pg_db: Any) -> Any:
    con = pg_db.connect()
    with con.cursor() as cur:
        cur.execute(
            "CREATE TABLE consent_events (subject_id text, purpose text, status text, event_ts timestamp, "
            "recorded_at timestamp, expires_at timestamp, source text, policy_version text)"
        )
        cur.execute(
            "INSERT INTO consent_events VALUES (%s, 'ads', 'granted', '2026-01-01', NULL, NULL, %s, %s), "
            "(%s, %s, %s, '2026-01-01', NULL, NULL, %s, %s)",
            [MARKER] * 8,
        )
        cur.execute("CREATE SCHEMA raw")
        cur.execute("CREATE TABLE raw.people (cid text, note text)")
        cur.execute("INSERT INTO raw.people VALUES (%s, %s)", [MARKER, MARKER])
        for name, body in PG_SOURCES:
            cur.execute(f"CREATE VIEW raw.{name} AS {body}")
        cur.execute(
            "CREATE VIEW consent_cast AS SELECT subject_id, purpose, status, CAST(source AS timestamp) AS event_ts, "
            "recorded_at, expires_at, source, policy_version FROM consent_events"
        )
    con.commit()
    yield con
    con.close()


def _pg_evidence(con: Any) -> list[tuple]:
    con.rollback()
    with con.cursor() as cur:
        cur.execute("SELECT * FROM consentgate_runs")
        rows = cur.fetchall()
        cur.execute("SELECT * FROM consentgate_lineage")
        return rows + cur.fetchall()


PG_CASES = [(f"raw.{n}", "consent_events") for n, _ in PG_SOURCES] + [("raw.people", "consent_cast")]


@pytest.mark.postgres
@pytest.mark.parametrize("source,consent_table", PG_CASES, ids=[f"{s}|{c}" for s, c in PG_CASES])
def test_postgres_errors_carry_class_and_sqlstate_but_never_the_value(
    pg_warehouse: Any, source: str, consent_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.DatabaseError) as info:
        consentgate.enforce(
            connection=pg_warehouse,
            dialect="postgres",
            source=source,
            target="out.t",
            subject_column="cid",
            purpose="ads",
            consent_table=consent_table,
            as_of=T,
            run_id="pg",
        )
    assert info.value.error_class.startswith("psycopg2.errors.") and info.value.sqlstate
    assert f"SQLSTATE {info.value.sqlstate}" in str(info.value)
    assert_no_marker("the exception", repr(info.value))
    assert_no_marker("its traceback", "".join(traceback.format_exception(info.value)))
    assert_no_marker("log records", caplog.text)
    evidence = _pg_evidence(pg_warehouse)
    assert_no_marker("consentgate_runs / consentgate_lineage", evidence)
    assert any(r[0] == "pg" and r[3] == "failed" for r in evidence)
