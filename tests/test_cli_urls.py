"""`--database` takes a connection URL: the same commands on a real PostgreSQL server, passwords never printed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from cases_loader import create_tables
from consentgate.engine.session import open_database, url_scheme
from consentgate.errors import DatabaseUnavailableError, UnsupportedConnectionError
from test_cli import cg
from test_engine import EVENTS, ROWS

SECRET = "s3cr3t-pw"
POLICY = (
    "purposes:\n  - {name: ads, description: Ads.}\n"
    "datasets:\n  - {name: d, source: dataset, target: out.d, subject_column: subject, purpose: ads}\n"
)


@pytest.fixture
def pg_url(pg_db) -> str:
    con = pg_db.connect()
    with con.cursor() as cur:
        create_tables(cur, "postgres", EVENTS, ROWS)
        cur.execute("CREATE SCHEMA out")
    con.commit()
    con.close()
    # The suite's server trusts local logins, so the password is accepted and ignored: it is here to be masked.
    return f"postgresql://{pg_db.user}:{SECRET}@{pg_db.host}:{pg_db.port}/{pg_db.dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_url_schemes() -> None:
    assert url_scheme("w.duckdb") is None and url_scheme(Path("a://b")) is None
    assert url_scheme("PostgreSQL://h/db") == "postgresql" and url_scheme("duckdb:///tmp/x") == "duckdb"


@pytest.mark.postgres
def test_run_lineage_verify_and_enforce_on_a_postgresql_url(pg_url: str, pg_db, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    run = cg(
        "run",
        "--policy",
        str(policy),
        "--database",
        pg_url,
        "--as-of",
        "2026-03-01",
        "--json",
        "--run-id",
        "r1",
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["status"] == "success" and out["datasets"][0]["rows_out"] == 2
    con = pg_db.connect()
    with con.cursor() as cur:
        cur.execute("SELECT count(*) FROM out.d")
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT status FROM consentgate_runs WHERE run_id = 'r1'")
        assert cur.fetchone()[0] == "success"
    con.close()
    lineage = cg("lineage", "--database", pg_url, "--json")
    assert lineage.returncode == 0, lineage.stderr
    assert [r["run_id"] for r in json.loads(lineage.stdout)["runs"]] == ["r1"]
    verify = cg("verify", "--database", pg_url, "--run-id", "r1")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    enforce = cg(
        "enforce",
        "--database",
        pg_url,
        "--source",
        "dataset",
        "--target",
        "out.e",
        "--subject-column",
        "subject",
        "--purpose",
        "ads",
        "--as-of",
        "2026-03-01T00:00:00Z",
        "--json",
    )
    assert enforce.returncode == 0, enforce.stderr
    assert json.loads(enforce.stdout)["rows_out"] == 2
    for p in (run, lineage, verify, enforce):
        assert SECRET not in p.stdout + p.stderr


@pytest.mark.postgres
def test_errors_on_a_postgresql_url_mask_the_password(pg_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY.replace("source: dataset", "source: missing"))
    p = cg("run", "--policy", str(policy), "--database", pg_url)
    assert p.returncode == 1 and "source table 'missing' does not exist" in p.stderr
    assert SECRET not in p.stdout + p.stderr
    down = f"postgresql://u:{SECRET}@127.0.0.1:{_free_port()}/nodb"
    p = cg("lineage", "--database", down)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "cannot connect to 'postgresql://u:***@127.0.0.1:" in p.stderr and "OperationalError" in p.stderr
    assert SECRET not in p.stdout + p.stderr


def test_an_unknown_scheme_is_one_line_naming_it(tmp_path: Path) -> None:
    p = cg("lineage", "--database", f"mysql://root:{SECRET}@h/db")
    assert p.returncode == 1 and p.stderr.count("\n") == 1
    assert "scheme 'mysql' is not supported" in p.stderr and SECRET not in p.stderr
    with pytest.raises(UnsupportedConnectionError):
        open_database("oracle://h/db")


def test_duckdb_urls_open_the_file(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    session = open_database(f"duckdb://{path}")
    try:
        assert session.one("SELECT 41 + 1") == (42,)
    finally:
        session.close()


def test_the_connect_error_class_is_ours() -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        open_database(f"postgresql://u:{SECRET}@127.0.0.1:{_free_port()}/db")
    assert SECRET not in str(info.value) and info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.postgres
def test_ingest_on_a_postgresql_url(pg_url: str, pg_db, tmp_path: Path) -> None:
    con = pg_db.connect()
    with con.cursor() as cur:
        cur.execute("CREATE SCHEMA raw")
        cur.execute("CREATE TABLE raw.web_requests (customer_id text, sec_gpc text, requested_at timestamp)")
        cur.execute(
            "INSERT INTO raw.web_requests VALUES ('1', '1', '2026-02-01'), ('1', '1', '2026-02-02'), "
            "('2', '0', '2026-02-01'), (NULL, '1', '2026-02-01')"
        )
    con.commit()
    policy = tmp_path / "policy.yml"
    policy.write_text(
        POLICY
        + "sources:\n  - name: web_gpc\n    kind: gpc\n    table: raw.web_requests\n"
        + "    columns: {subject: customer_id, signal: sec_gpc, event_ts: requested_at}\n    purposes: [ads]\n"
    )
    first = cg("ingest", "--policy", str(policy), "--database", pg_url, "--json")
    assert first.returncode == 0, first.stderr
    again = cg("ingest", "--policy", str(policy), "--database", pg_url, "--json")
    assert again.returncode == 0, again.stderr
    with con.cursor() as cur:
        cur.execute("SELECT subject_id, status FROM consent_events WHERE source LIKE %s", ["%web_gpc%"])
        assert cur.fetchall() == [("1", "withdrawn")]  # one withdrawal: GPC=1 twice, 0 is nothing, no subject
    con.close()
    assert SECRET not in first.stdout + first.stderr + again.stdout + again.stderr


def test_openlineage_names_a_url_database_without_its_credentials() -> None:
    from consentgate.evidence.openlineage import url_location

    assert url_location(f"postgresql://u:{SECRET}@db.example:6543/warehouse") == (
        "postgres://db.example:6543",
        "warehouse",
    )
    assert url_location("postgres://db.example/w") == ("postgres://db.example:5432", "w")
