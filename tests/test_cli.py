"""The `consentgate` command as a user runs it: a real subprocess, real DuckDB files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from cases_loader import create_tables
from test_engine import EVENTS, ROWS

REASONS = {"null_subject", "no_consent", "denied", "withdrawn", "expired", "invalid"}
EXE = [sys.executable, "-m", "consentgate.cli.app"]


def cg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("consentgate")), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, "duckdb", EVENTS, ROWS)
    con.close()
    return path


def enforce_args(db: Path, *extra: str) -> list[str]:
    return [
        "enforce",
        "--database",
        str(db),
        "--source",
        "dataset",
        "--target",
        "out.t",
        "--subject-column",
        "subject",
        "--purpose",
        "ads",
        "--as-of",
        "2026-03-01T00:00:00Z",
        *extra,
    ]


def test_enforce_json_is_exactly_one_object(db: Path) -> None:
    p = cg(*enforce_args(db, "--json", "--run-id", "r1"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # exactly one JSON document
    for key in (
        "run_id",
        "source",
        "target",
        "purpose",
        "as_of",
        "rows_in",
        "rows_out",
        "excluded",
        "consent_fingerprint",
    ):
        assert key in out
    assert out["run_id"] == "r1" and out["as_of"] == "2026-03-01T00:00:00"
    assert set(out["excluded"]) == REASONS
    assert out["rows_in"] == out["rows_out"] + sum(out["excluded"].values()) == 8


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--source", "missing"], "source table 'missing' does not exist"),
        (["--as-of", "not-a-date"], "is not an ISO 8601 timestamp"),
        (["--target", "x;drop"], "not a plain identifier path"),
        (["--consent-table", "nope"], "consent table 'nope' does not exist"),
    ],
)
def test_errors_are_one_line_without_traceback(db: Path, extra: list[str], match: str) -> None:
    p = cg(*enforce_args(db, "--json"), *extra)
    assert p.returncode != 0
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in p.stderr


def test_missing_database_file(tmp_path: Path) -> None:
    p = cg(*enforce_args(tmp_path / "nope.duckdb"))
    assert p.returncode != 0 and "does not exist" in p.stderr
    assert not (tmp_path / "nope.duckdb").exists()


def test_lineage_shows_runs_and_counts(db: Path) -> None:
    assert cg(*enforce_args(db, "--run-id", "r1")).returncode == 0
    assert cg(*enforce_args(db, "--run-id", "r2", "--source", "missing")).returncode != 0
    p = cg("lineage", "--database", str(db), "--json")
    runs = {r["run_id"]: r for r in json.loads(p.stdout)["runs"]}
    assert runs["r1"]["status"] == "success" and runs["r1"]["datasets"][0]["rows_out"] == 2
    assert runs["r2"]["status"] == "failed" and "missing" in runs["r2"]["error"]
    one = json.loads(cg("lineage", "--database", str(db), "--run-id", "r1", "--json").stdout)
    assert [r["run_id"] for r in one["runs"]] == ["r1"]
    human = cg("lineage", "--database", str(db))
    assert human.returncode == 0 and "r1" in human.stdout and "out.t" in human.stdout
    assert cg("lineage", "--database", str(db), "--run-id", "nope").returncode != 0


def test_run_policy_and_invalid_policy(db: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "purposes:\n  - {name: ads, description: Ads.}\n"
        "datasets:\n  - {name: d, source: dataset, target: out.d, subject_column: subject, purpose: ads}\n"
    )
    p = cg("run", "--policy", str(policy), "--database", str(db), "--as-of", "2026-03-01", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "success" and out["datasets"][0]["rows_out"] == 2
    policy.write_text("purposes: []\ndatasets: []\n")
    p = cg("run", "--policy", str(policy), "--database", str(db))
    assert p.returncode != 0 and "purposes: expected a non-empty list" in p.stderr


def test_demo_builds_and_enforces(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    p = cg("demo", "--database", str(db), "--subjects", "300")
    assert p.returncode == 0, p.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        (status,) = con.execute("SELECT status FROM consentgate_runs").fetchone()
        datasets = con.execute(
            "SELECT dataset, rows_in, rows_out, excluded_withdrawn + excluded_denied FROM consentgate_lineage"
        ).fetchall()
        sources = {r[0] for r in con.execute("SELECT DISTINCT source FROM consent_events").fetchall()}
    finally:
        con.close()
    assert status == "success"
    assert {d[0] for d in datasets} == {"customers", "web_events", "purchases", "email_engagement"}
    assert all(0 < out < rows_in and excluded > 0 for _, rows_in, out, excluded in datasets)
    # The demo's log is built by ingesting its raw consent sources; `source` names the one each event
    # came from (the GPC header of the web logs among them).
    assert {"web_gpc", "cmp_tcf", "segment_consent", "account_settings"} <= sources
    assert any(s.startswith("fides_newsletter") for s in sources)
    assert "consented" in p.stdout + p.stderr


def test_every_command_has_help() -> None:
    from consentgate.cli.app import app

    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    for name in names:
        p = cg(name, "--help")
        assert p.returncode == 0 and "Usage" in p.stdout, name


def test_version_prints_the_installed_version() -> None:
    import subprocess
    import sys
    from pathlib import Path

    import consentgate

    exe = str(Path(sys.executable).with_name("consentgate"))
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"consentgate {consentgate.__version__}"
