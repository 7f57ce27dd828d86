"""`consentgate ingest` as a user runs it (a real subprocess, a real DuckDB file), then `consentgate run`:
a GPC signal seen on the web removes the subject's rows on the next run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

POLICY = """
consent:
  table: consent_events
purposes:
  - name: ad_targeting
    description: Ads based on what you browse.
datasets:
  - name: web_events
    source: raw.web_events
    target: consented.web_events
    subject_column: customer_id
    purpose: ad_targeting
sources:
  - name: banner
    kind: onetrust
    table: raw.optanon
    columns: {subject: customer_id, signal: optanon_consent, event_ts: seen_at}
    purposes: {C0004: ad_targeting}
  - name: web_gpc
    kind: gpc
    table: raw.web_requests
    columns: {subject: customer_id, signal: sec_gpc, event_ts: requested_at}
    purposes: [ad_targeting]
"""


def cg(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("consentgate"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[Path, Path]:
    db, policy = tmp_path / "w.duckdb", tmp_path / "policy.yml"
    policy.write_text(POLICY)
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.web_events (customer_id varchar, page varchar)")
    con.execute("INSERT INTO raw.web_events VALUES ('c1', '/a'), ('c1', '/b'), ('c2', '/a'), ('c3', '/c')")
    con.execute("CREATE TABLE raw.optanon (customer_id varchar, optanon_consent varchar, seen_at timestamp)")
    con.execute(
        "INSERT INTO raw.optanon VALUES ('c1', 'groups=C0001%3A1%2CC0004%3A1', '2026-03-01 08:00'), "
        "('c2', 'groups=C0001%3A1%2CC0004%3A1', '2026-03-01 08:00'), ('c3', 'groups=C0001%3A1%2CC0004%3A0', '2026-03-01 08:00')"
    )
    con.execute(
        "CREATE TABLE raw.web_requests (customer_id varchar, sec_gpc varchar, requested_at timestamp)"
    )
    con.close()
    return db, policy


def kept(db: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT customer_id, page FROM consented.web_events ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_ingest_then_run_and_a_gpc_signal_removes_the_subject_on_the_next_run(warehouse) -> None:
    db, policy = warehouse
    out = cg("ingest", "--policy", str(policy), "--database", str(db), "--json")
    assert out.returncode == 0, out.stderr
    ingests = {r["source"]: r for r in json.loads(out.stdout)["ingests"]}
    assert ingests["banner"]["events_written"] == 3 and ingests["web_gpc"]["observations_read"] == 0
    enforce = policy  # one policy file: `consentgate run` reads its datasets, `ingest` its sources
    assert cg("run", "--policy", str(enforce), "--database", str(db)).returncode == 0
    assert kept(db) == [("c1", "/a"), ("c1", "/b"), ("c2", "/a")]

    con = duckdb.connect(str(db))
    con.execute(
        "INSERT INTO raw.web_requests VALUES ('c1', '1', '2026-03-02 10:00'), ('c1', '1', '2026-03-02 10:01')"
    )
    con.close()
    out = cg("ingest", "--policy", str(policy), "--database", str(db), "--source", "web_gpc")
    assert out.returncode == 0, out.stderr
    assert "web_gpc (gpc, raw.web_requests): success; 2 observations read, 1 events written" in out.stdout
    assert "c1" not in out.stdout + out.stderr
    assert cg("run", "--policy", str(enforce), "--database", str(db)).returncode == 0
    assert kept(db) == [("c2", "/a")]


def test_lineage_shows_each_ingest_with_its_counts_and_no_subject(warehouse) -> None:
    db, policy = warehouse
    assert cg("ingest", "--policy", str(policy), "--database", str(db)).returncode == 0
    out = cg("lineage", "--database", str(db), "--json")
    assert out.returncode == 0, out.stderr
    ingests = {i["source"]: i for i in json.loads(out.stdout)["ingests"]}
    assert set(ingests) == {"banner", "web_gpc"}
    assert (
        ingests["banner"]["status"],
        ingests["banner"]["observations_read"],
        ingests["banner"]["events_written"],
    ) == (
        "success",
        3,
        3,
    )
    text = cg("lineage", "--database", str(db))
    assert text.returncode == 0 and "consent sources ingested" in text.stdout and "raw.optanon" in text.stdout
    shown = json.dumps(
        [{k: v for k, v in i.items() if k != "ingest_id"} for i in ingests.values()]
    )  # hex ids
    for subject in ("c1", "c2", "c3"):
        assert subject not in text.stdout and subject not in shown


def test_a_source_that_cannot_be_read_is_one_line_on_stderr_and_a_non_zero_exit(warehouse) -> None:
    db, policy = warehouse
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE raw.web_requests")
    con.close()
    out = cg("ingest", "--policy", str(policy), "--database", str(db))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert "consent source web_gpc: table 'raw.web_requests' does not exist" in out.stderr


def test_an_unknown_source_name_and_a_bad_declaration_are_one_line_errors(warehouse, tmp_path: Path) -> None:
    db, policy = warehouse
    out = cg("ingest", "--policy", str(policy), "--database", str(db), "--source", "nope")
    assert out.returncode == 1 and "policy has no source 'nope' (sources: banner, web_gpc)" in out.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(POLICY.replace("kind: gpc", "kind: cookies"))
    out = cg("ingest", "--policy", str(bad), "--database", str(db))
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "sources[1].kind: unknown kind 'cookies'" in out.stderr


def test_a_database_that_does_not_exist_is_not_created(warehouse, tmp_path: Path) -> None:
    _, policy = warehouse
    missing = tmp_path / "nope.duckdb"
    out = cg("ingest", "--policy", str(policy), "--database", str(missing))
    assert out.returncode == 1 and "does not exist" in out.stderr and not missing.exists()
