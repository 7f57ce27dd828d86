"""A real `consentgate run` killed between its two datasets (issue #9, "evidence that does not tell the
truth"): SIGTERM (what Airflow sends on a timeout) is recorded as a failure like Ctrl-C; SIGKILL cannot
be caught, so the run stays `running` and readers show it `stale`; `verify` passes neither.

The second dataset's source is a view whose every read runs a very long computation, so the test
knows the process is inside dataset 2 once dataset 1's log line ("first: N rows in") is on stderr."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from cases_loader import create_tables
from reference import Event

CG = str(Path(sys.executable).with_name("consentgate"))
#: After dataset 1's log line, the time until the process surely runs dataset 2's endless statement.
INSIDE_S = 1.0
ENDLESS = "(SELECT count(*) FROM range(1000000000000) AS r WHERE hash(r.range) % 7 = 3) >= 0"
EVENTS = [
    Event("1", "ads", "granted", datetime(2026, 1, 1)),
    Event("2", "ads", "denied", datetime(2026, 1, 1)),
]
ROWS = [(1, "1"), (2, "2"), (3, "1")]
POLICY = """
purposes:
  - name: ads
    description: Ads.
datasets:
  - {name: first, source: dataset, target: out_first, subject_column: subject, purpose: ads}
  - {name: second, source: slow, target: out_second, subject_column: subject, purpose: ads}
"""


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    create_tables(con, "duckdb", EVENTS, ROWS)
    con.execute("CREATE TABLE out_second AS SELECT 42 AS yesterday")  # must survive the kill
    con.execute(f"CREATE VIEW slow AS SELECT d.* FROM dataset AS d WHERE {ENDLESS}")
    con.close()
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    return db, policy


#: Starts the CLI as a terminal does, with SIGINT at its default: a process started in the background
#: of a non-interactive shell (nohup ... &, some CI runners) ignores SIGINT, and so would the CLI it starts.
AS_FROM_A_TERMINAL = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
#: The longest a signalled run may take to stop (it stops in well under a second).
STOP_TIMEOUT_S = 120


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python's own SIGINT handler for the test, even when the suite was started with SIGINT ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _kill_during_second_dataset(
    db: Path, policy: Path, sig: signal.Signals, after_s: float = INSIDE_S
) -> tuple[int, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            AS_FROM_A_TERMINAL,
            CG,
            "run",
            "--policy",
            str(policy),
            "--database",
            str(db),
            "--run-id",
            "killed",
            "--as-of",
            "2026-03-01",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("consentgate: INFO: first: "):
            break
    else:
        raise AssertionError("dataset 1 never finished: " + "".join(lines))
    time.sleep(after_s)  # by INSIDE_S, inside dataset 2's endless statement: the signal must stop it
    proc.send_signal(sig)
    try:
        rest = proc.communicate(timeout=STOP_TIMEOUT_S)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{sig.name} did not stop the run within {STOP_TIMEOUT_S} s") from None
    return proc.returncode, "".join(lines) + rest


def _read(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=str)
    finally:
        con.close()


def _cg_json(*args: str) -> tuple[int, dict]:
    p = subprocess.run([CG, *args, "--json"], capture_output=True, text=True, check=False)
    return p.returncode, json.loads(p.stdout)


def test_sigterm_between_datasets_is_recorded_as_failed(warehouse: tuple[Path, Path]) -> None:
    db, policy = warehouse
    code, stderr = _kill_during_second_dataset(db, policy, signal.SIGTERM)
    assert code == 143
    assert stderr.rstrip().endswith("consentgate: error: terminated by SIGTERM")
    assert _read(db, "SELECT status, error, finished_at IS NOT NULL FROM consentgate_runs") == [
        ("failed", "terminated by SIGTERM", True)
    ]
    assert _read(db, "SELECT dataset FROM consentgate_lineage") == [("first",)]
    assert _read(db, "SELECT * FROM out_second") == [(42,)]  # the interrupted dataset's target is untouched
    code, out = _cg_json("verify", "--database", str(db), "--run-id", "killed")
    assert code == 1 and out["status"] == "failed"
    assert "1 of 2 planned datasets have no lineage row (never enforced): second" in out["problems"]


@pytest.mark.parametrize("after_s", [0.0, 0.02, 0.2, INSIDE_S])
def test_ctrl_c_between_datasets_is_recorded_as_failed_and_stops_the_run(
    warehouse: tuple[Path, Path], after_s: float
) -> None:
    """Wherever the signal lands after dataset 1 (its commit, the log line, dataset 2's first
    statements or its endless one), the run is recorded as interrupted, never left `running`."""
    db, policy = warehouse
    code, stderr = _kill_during_second_dataset(db, policy, signal.SIGINT, after_s)
    assert code == 130, stderr
    assert _read(db, "SELECT status, error FROM consentgate_runs") == [("failed", "interrupted (SIGINT)")], (
        stderr
    )
    assert _read(db, "SELECT dataset FROM consentgate_lineage") == [("first",)]
    assert _read(db, "SELECT * FROM out_second") == [(42,)]


def test_sigkill_between_datasets_leaves_a_stale_run_that_is_never_verified(
    warehouse: tuple[Path, Path],
) -> None:
    db, policy = warehouse
    code, _ = _kill_during_second_dataset(db, policy, signal.SIGKILL)
    assert code == -signal.SIGKILL
    code, listed = _cg_json("lineage", "--database", str(db))
    assert code == 0
    (run,) = listed["runs"]
    assert (run["status"], run["effective_status"]) == ("running", "stale")
    text = subprocess.run(
        [CG, "lineage", "--database", str(db)], capture_output=True, text=True, check=False
    ).stdout
    assert "[stale: recorded running, never finished]" in text
    code, out = _cg_json("verify", "--database", str(db), "--run-id", "killed")
    assert code == 1 and out["ok"] is False and out["run_status"] == "stale"
    assert any(p.startswith("the run is stale") for p in out["problems"])
    assert "1 of 2 planned datasets have no lineage row (never enforced): second" in out["problems"]
    assert _read(db, "SELECT * FROM out_second") == [(42,)]


def _signal_an_endless_statement(
    con: duckdb.DuckDBPyConnection, session: object, sig: signal.Signals
) -> None:
    """Send `sig` to this process while `session` runs an endless statement, which must raise the
    signal's exception well before the guard (60 s) would have interrupted it."""
    from consentgate.engine import termination

    session.run(f"CREATE VIEW endless AS SELECT 1 AS x WHERE {ENDLESS}")  # type: ignore[attr-defined]
    threading.Timer(0.5, os.kill, [os.getpid(), sig]).start()
    guard = threading.Timer(60, con.interrupt)  # a lost signal fails the test instead of hanging it
    guard.start()
    expected = KeyboardInterrupt if sig == signal.SIGINT else termination.Terminated
    try:
        with termination.sigterm_raises(), pytest.raises(expected):
            session.run("CREATE TEMP TABLE never AS SELECT * FROM endless")  # type: ignore[attr-defined]
        assert guard.is_alive(), "the statement ran until the test's guard interrupted it"
    finally:
        guard.cancel()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM] * 3)
def test_a_signal_stops_the_running_duckdb_statement_and_the_next_one_runs(
    sig: signal.Signals, sigint_raises: None
) -> None:
    """DuckDB's own Ctrl-C check misses most signals that arrive during a statement (the statement
    then runs on forever): consentgate interrupts the statement itself (termination.watch), raises the
    signal's exception, and leaves the session usable for recording the failure."""
    from consentgate.engine.session import session_for

    con = duckdb.connect()
    session = session_for(con, "duckdb")
    _signal_an_endless_statement(con, session, sig)
    assert session.all("SELECT 42") == [(42,)]
    con.close()


class LateInterrupts:
    """A DuckDB connection whose interrupt() also lands late: once more when the next statement has
    begun (or after LATE_S). So a thread paused between seeing a statement run and interrupting it,
    the way a loaded machine pauses threads, is there on every run of the test."""

    LATE_S = 1.0

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.executed = 0
        self.next_began = threading.Event()

    def execute(self, sql: str, params: object = None) -> object:
        self.executed += 1
        if self.executed > 1:
            self.next_began.set()
        return self.con.execute(sql, params)

    def interrupt(self) -> None:
        self.con.interrupt()
        if self.next_began.wait(self.LATE_S):
            time.sleep(0.2)  # the next statement is running in DuckDB by now
        self.con.interrupt()

    def __getattr__(self, name: str) -> object:
        return getattr(self.con, name)


def test_an_interrupt_that_lands_late_never_touches_the_next_statement(sigint_raises: None) -> None:
    """The class behind a Ctrl-C recorded as `running` (CI, stop 24): the thread interrupting the
    signalled statement was paused between checking that it ran and interrupting it, so it
    interrupted the next statement instead, the one recording the run as failed, and
    record_failure (which never raises) left the record as it was."""
    from consentgate.engine.session import Session
    from consentgate.rule.dialects import DUCKDB

    con = duckdb.connect()
    con.interrupt()  # what the design relies on: an interrupt with no statement running is forgotten
    assert con.execute("SELECT 1").fetchall() == [(1,)]
    late = LateInterrupts(con)
    session = Session(late, DUCKDB)
    _signal_an_endless_statement(con, session, signal.SIGINT)
    # The next statement (here one that runs for a while) runs to its end.
    assert session.all("SELECT count(*) FROM range(300000000) AS r WHERE hash(r.range) % 7 = 3")[0][0] > 0
    con.close()


def test_a_wakeup_fd_set_before_gets_every_signal_and_is_restored(sigint_raises: None) -> None:
    """asyncio (and anything else) may own the wakeup fd: the block forwards each signal to it."""
    from consentgate.engine import termination

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    before = signal.set_wakeup_fd(write_fd)
    try:
        with termination.sigterm_raises(), pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises here
        assert signal.set_wakeup_fd(write_fd) == write_fd  # restored
        assert os.read(read_fd, 64) == bytes([signal.SIGINT])
    finally:
        signal.set_wakeup_fd(before)
        os.close(read_fd)
        os.close(write_fd)


def test_a_signal_interrupts_the_statement_even_when_the_main_thread_never_runs_the_handler(
    tmp_path: Path,
) -> None:
    """The class behind a run that ran on for 28 minutes: C code (a DuckDB statement) that keeps the
    main thread and never lets the Python handler run. libc's system() is such code (it retries its
    wait on EINTR): the statement here is a child process, and interrupting it kills the child. Only
    the wakeup fd's watcher thread can do that; the handler runs once the call returns."""
    import ctypes

    from consentgate.engine import termination

    pid_file = tmp_path / "pid"
    interrupted_by: list[str] = []

    class Statement:
        def interrupt_running(self) -> None:
            interrupted_by.append(threading.current_thread().name)
            with contextlib.suppress(ProcessLookupError):  # the handler, once it runs, interrupts again
                os.kill(int(pid_file.read_text()), signal.SIGKILL)

    statement = Statement()
    termination.watch(statement)
    libc = ctypes.CDLL(None)
    threading.Timer(0.5, os.kill, [os.getpid(), signal.SIGTERM]).start()
    with termination.sigterm_raises(), pytest.raises(termination.Terminated):
        libc.system(f"sleep 30 & echo $! > {pid_file}; wait".encode())
    assert interrupted_by[:1] == ["consentgate-signals"]
