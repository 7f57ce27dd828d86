"""`consentgate verify` says verified only for a run that finished successfully and enforced every
dataset it planned (issue #9): a run killed after 1 of 2 datasets, or one still marked running, fails."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from cg_transparency import cg, cg_json
from consentgate.engine import lineage
from consentgate.engine.session import open_duckdb


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no process has this pid now


def _edit(warehouse: Path, sql: str, params: list) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(sql, params)
    finally:
        con.close()


def test_a_successful_run_is_verified(warehouse: Path) -> None:
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 0 and out["status"] == "verified" and out["run_status"] == "success"


def test_a_run_that_lacks_a_planned_dataset_is_not_verified(warehouse: Path) -> None:
    planned = lineage.RunRecord("r3", planned_datasets=_one(warehouse, "planned_datasets", "r3")).planned()
    assert planned  # the engine recorded what it set out to do
    _edit(
        warehouse,
        "UPDATE consentgate_runs SET planned_datasets = ? WHERE run_id = 'r3'",
        [json.dumps([*planned, "mail_later"])],
    )
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 1 and out["ok"] is False and out["status"] == "failed"
    assert (
        f"1 of {len(planned) + 1} planned datasets have no lineage row (never enforced): mail_later"
        in out["problems"]
    )


def _one(warehouse: Path, column: str, run_id: str) -> object:
    session = open_duckdb(warehouse, read_only=True)
    try:
        return lineage.read_runs(session, run_id, limit=1)[0][column]
    finally:
        session.close()


@pytest.mark.parametrize(
    "pid,started,shown",
    [
        ("dead", None, "stale"),  # its process is gone: SIGKILL, OOM, a lost machine
        (None, timedelta(days=2), "stale"),  # no process to check (Airflow): too old to be alive
        ("self", None, "running"),  # still running: not verified either
    ],
    ids=["process gone", "older than a day", "alive"],
)
def test_an_unfinished_run_is_shown_stale_or_running_and_never_verified(
    warehouse: Path, pid: str | None, started: timedelta | None, shown: str
) -> None:
    import os
    import socket

    pids = {"dead": _dead_pid(), "self": os.getpid(), None: None}
    when = datetime.now().replace(microsecond=0) - started if started else _one(warehouse, "started_at", "r3")
    _edit(
        warehouse,
        "UPDATE consentgate_runs SET status = 'running', finished_at = NULL, pid = ?, host = ?, started_at = ? "
        "WHERE run_id = 'r3'",
        [pids[pid], socket.gethostname(), when],
    )
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 1 and out["ok"] is False and out["run_status"] == shown
    assert any(shown in p for p in out["problems"]), out["problems"]
    code, runs = cg_json("lineage", "--database", warehouse, "--run-id", "r3")
    assert (
        code == 0 and runs["runs"][0]["effective_status"] == shown and runs["runs"][0]["status"] == "running"
    )
    text = cg("lineage", "--database", warehouse, "--run-id", "r3").stdout
    assert (f"[{shown}: recorded running, never finished]" in text) == (shown == "stale")


def test_a_failed_run_is_not_verified(warehouse: Path) -> None:
    _edit(warehouse, "UPDATE consentgate_runs SET status = 'failed' WHERE run_id = 'r3'", [])
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert (
        code == 1
        and "the run's status is failed, not success: only a successful run can be verified"
        in out["problems"]
    )
