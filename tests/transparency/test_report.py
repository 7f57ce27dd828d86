"""The HTML run report (`consentgate report`, `consentgate.airflow.webapp`): the run's numbers, consent changes
since the previous run, the trend, and nothing else: no subject id, no external resource."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cg_transparency import assert_no_subject_id, cg, cg_json, chart_values, elements
from consentgate.engine.session import open_duckdb
from consentgate.evidence import report


def page_of(warehouse: Path, run_id: str | None = None) -> str:
    session = open_duckdb(warehouse, read_only=True)
    try:
        return report.render_report(session, run_id)
    finally:
        session.close()


def test_the_page_carries_the_runs_numbers_per_dataset_and_reason(warehouse: Path) -> None:
    page = page_of(warehouse)  # the latest run: r3
    assert "run <code>r3</code>" in page
    bars = {(a["data-row"], a["data-segment"]): int(a["data-value"]) for a in chart_values(page, "datasets")}
    assert bars[("web", "kept")] == 3
    assert {k: v for (row, k), v in bars.items() if row == "web" and k != "kept" and v} == {
        "null_subject": 1,
        "no_consent": 1,
        "denied": 1,
        "withdrawn": 2,
    }
    assert {k: v for (row, k), v in bars.items() if row == "mail" and v} == {"no_consent": 1, "withdrawn": 1}
    reasons = {a["data-segment"]: int(a["data-value"]) for a in chart_values(page, "reasons")}
    assert reasons == {
        "null_subject": 1,
        "no_consent": 2,
        "denied": 1,
        "withdrawn": 3,
        "expired": 0,
        "invalid": 0,
    }
    summary = next(a for t, a in elements(page) if a.get("data-chart") == "summary")
    assert (summary["data-rows-in"], summary["data-rows-out"]) == ("10", "3")


def test_consent_changes_are_counted_between_the_previous_cut_off_and_this_one(warehouse: Path) -> None:
    page = page_of(
        warehouse, "r3"
    )  # (r2 02-15, r3 03-15]: G's grant, E's unsubscribe; not D (recorded 03-20)
    changes = {(a["data-x"], a["data-series"]): int(a["data-value"]) for a in chart_values(page, "changes")}
    assert {k: v for k, v in changes.items() if v} == {
        ("ad_targeting", "granted"): 1,
        ("email_marketing", "withdrawn"): 1,
    }
    assert "since the previous run <code>r2</code>" in page
    page2 = page_of(warehouse, "r2")  # (r1 02-01, r2 02-15]: A's withdrawal (recorded 02-11)
    changes2 = {(a["data-x"], a["data-series"]): int(a["data-value"]) for a in chart_values(page2, "changes")}
    assert {k: v for k, v in changes2.items() if v} == {("ad_targeting", "withdrawn"): 1}
    first = page_of(warehouse, "r1")
    assert "it is the first run" in first


def test_the_trend_covers_the_runs_up_to_this_one(warehouse: Path) -> None:
    page = page_of(warehouse, "r3")
    rows = chart_values(page, "trend-rows")
    assert {(a["data-x"], a["data-series"]): int(a["data-value"]) for a in rows} == {
        ("r1", "rows_in"): 10,
        ("r1", "rows_out"): 5,
        ("r2", "rows_in"): 10,
        ("r2", "rows_out"): 3,
        ("r3", "rows_in"): 10,
        ("r3", "rows_out"): 3,
    }
    withdrawn = {
        a["data-x"]: int(a["data-value"])
        for a in chart_values(page, "trend-excluded")
        if a["data-series"] == "withdrawn"
    }
    assert withdrawn == {"r1": 0, "r2": 2, "r3": 3}
    changes = {
        (a["data-x"], a["data-series"]): int(a["data-value"]) for a in chart_values(page, "trend-changes")
    }
    assert {x for x, _ in changes} == {"r2", "r3"}  # r1 has no previous run: no window to draw
    assert changes[("r2", "withdrawn")] == 1 and changes[("r3", "granted")] == 1
    older = page_of(warehouse, "r2")
    assert {a["data-x"] for a in chart_values(older, "trend-rows")} == {"r1", "r2"}
    latency = next(a for t, a in elements(page) if a.get("data-chart") == "latency")
    assert latency["data-measured"] == "2"


def test_the_page_is_self_contained_and_holds_no_subject_id(warehouse: Path) -> None:
    for run_id in ("r1", "r2", "r3"):
        page = page_of(warehouse, run_id)
        assert_no_subject_id(page)
        assert "<script" not in page and "<link" not in page and "src=" not in page
        assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}


def test_the_cli_writes_the_report(warehouse: Path, tmp_path: Path) -> None:
    code, out = cg_json("report", "--database", warehouse, "--run-id", "r2", "--out", tmp_path / "r2.html")
    assert code == 0 and out["run_id"] == "r2"
    assert "run <code>r2</code>" in (tmp_path / "r2.html").read_text()
    p = subprocess.run(
        [str(Path(sys.executable).with_name("consentgate")), "report", "--database", str(warehouse)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "run r3" in p.stdout and (tmp_path / "consentgate-report.html").exists()
    assert_no_subject_id(p.stdout + p.stderr)
    p = cg("report", "--database", warehouse, "--run-id", "nope", "--out", tmp_path / "x.html")
    assert (
        p.returncode != 0 and "no run with run_id 'nope'" in p.stderr and not (tmp_path / "x.html").exists()
    )


def test_a_database_without_runs_gets_a_page_saying_so(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    code, out = cg_json("report", "--database", db, "--out", tmp_path / "r.html")
    assert code == 0 and out["run_id"] is None
    assert "No run is recorded" in (tmp_path / "r.html").read_text()


def test_an_unreadable_consent_log_degrades_to_a_note(warehouse: Path) -> None:
    import duckdb

    con = duckdb.connect(str(warehouse))
    con.execute("ALTER TABLE consent_events RENAME TO consent_events_old")
    con.close()
    page = page_of(warehouse)
    assert "consent log cannot be read" in page
    assert chart_values(page, "datasets")  # the run's own numbers are still there


# -- the web app ------------------------------------------------------------------------------------


@pytest.fixture
def client(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from consentgate.airflow.webapp import create_app
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    monkeypatch.setenv("CONSENTGATE_DATABASE", str(warehouse))
    root = FastAPI()
    root.mount("/consentgate", create_app())  # as Airflow mounts plugin apps
    return TestClient(root)


def test_webapp_serves_the_latest_run_and_any_run_by_id(client: Any) -> None:
    latest = client.get("/consentgate/")
    assert latest.status_code == 200 and "run <code>r3</code>" in latest.text
    links = [link for link in re.findall(r'href="([^"]+)"', latest.text) if not link.startswith("#")]
    assert links == ["/consentgate/runs/r3", "/consentgate/runs/r2", "/consentgate/runs/r1"]
    older = client.get(links[-1])
    assert older.status_code == 200 and "run <code>r1</code>" in older.text
    assert client.get("/consentgate/runs/nope").status_code == 404
    for page in (latest.text, older.text):
        assert_no_subject_id(page)


def test_webapp_without_a_database_answers_503(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from consentgate.airflow.webapp import create_app
    from fastapi.testclient import TestClient

    monkeypatch.delenv("CONSENTGATE_DATABASE", raising=False)
    app = create_app()  # building the app touches no database
    r = TestClient(app).get("/")
    assert r.status_code == 503 and "CONSENTGATE_DATABASE" in r.text
    monkeypatch.setenv("CONSENTGATE_DATABASE", str(tmp_path / "missing.duckdb"))
    r = TestClient(app).get("/")
    assert r.status_code == 503 and "does not exist" in r.text


def test_webapp_answers_503_while_a_run_holds_the_write_lock(client: Any, warehouse: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(warehouse)!r}); print('locked', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        r = client.get("/consentgate/")
        assert r.status_code == 503 and "locked by another process" in r.text
        assert r.headers["retry-after"] == "30"
    finally:
        holder.communicate("", timeout=30)
    deadline = time.monotonic() + 30
    while client.get("/consentgate/").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
