"""The evidence tables: one row per run (`consentgate_runs`), one per dataset per run (`consentgate_lineage`).

Evidence never decides which rows go through. Lineage rows are written in the same transaction as the
target they describe; run records are opened before and closed after the work.

A run id names one run, owned by one invocation (`owner`: a CLI or API call, or one Airflow DAG run).
Only its owner writes to it, and a finished run's evidence is never rewritten (docs/runs.md): a
`success` run is never reopened; its owner may retry a `failed` or interrupted one (a new attempt).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from consentgate.engine import spark
from consentgate.engine.session import Session
from consentgate.errors import ConsentGateError
from consentgate.rule.names import TableName
from consentgate.rule.semantics import REASONS

RUNS = "consentgate_runs"
LINEAGE = "consentgate_lineage"
# The evidence and state tables of consent ingestion (consentgate.sources.log creates them).
INGESTS = "consentgate_ingests"
SOURCE_STATE = "consentgate_source_state"
SOURCE_LATEST = "consentgate_source_latest"
#: No enforcement may write any of these: a target that resolves to one is refused.
EVIDENCE_TABLES = (RUNS, LINEAGE, INGESTS, SOURCE_STATE, SOURCE_LATEST)
FINISHED = ("success", "failed")
#: The key of each evidence table: on Spark, whose rows are versions, a reader sees its latest version.
VERSION_KEYS = {RUNS: ("run_id",), LINEAGE: ("run_id", "dataset")}
#: A `running` run older than this is shown as `stale` even when its process cannot be checked.
STALE_AFTER = timedelta(hours=24)
#: Columns added after the first release: added to existing tables when they are opened for writing.
ADDED_COLUMNS = {
    RUNS: (
        ("owner", "varchar"),
        ("attempt", "bigint"),
        ("planned_datasets", "varchar"),
        ("pid", "bigint"),
        ("host", "varchar"),
    ),
    LINEAGE: (("attempt", "bigint"),),
}


class RunIdInUseError(ConsentGateError, ValueError):
    """The run id belongs to another invocation, or names a run that already finished successfully."""


@dataclass
class RunRecord:
    """A row of consentgate_runs."""

    run_id: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: str = "running"
    as_of: datetime | None = None
    consent_table: str | None = None
    consent_fingerprint: str | None = None
    consent_events_counted: int | None = None
    trigger: str = "cli"
    dag_id: str | None = None
    task_id: str | None = None
    airflow_run_id: str | None = None
    dbt_invocation_id: str | None = None
    package_version: str | None = None
    error: str | None = None
    owner: str | None = None
    attempt: int = 1
    planned_datasets: str | None = None
    pid: int | None = None
    host: str | None = None

    def planned(self) -> list[str] | None:
        return json.loads(self.planned_datasets) if self.planned_datasets else None


@dataclass
class LineageRecord:
    """A row of consentgate_lineage."""

    run_id: str
    dataset: str
    source: str
    target: str
    purpose: str
    subject_column: str
    normalize: str | None
    rows_in: int
    rows_out: int
    excluded: dict[str, int] = field(default_factory=dict)
    consent_fingerprint: str | None = None
    trigger: str = "cli"
    task_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int | None = None

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        excluded = data.pop("excluded")
        for reason in REASONS:
            data[f"excluded_{reason}"] = int(excluded.get(reason, 0))
        return data


def ensure_tables(session: Session) -> None:
    """Create the evidence tables if missing, and add the columns a table of an older version lacks."""
    ddl = resources.files("consentgate.engine").joinpath("ddl.sql").read_text()
    if not session.dialect.transactional:  # Spark: append-only logs behind views (engine/spark.py)
        spark.ensure_evidence(session, ddl, VERSION_KEYS)
        return
    for statement in ddl.split(";"):
        body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
        if body.strip():
            session.run(statement)
    for table, added in ADDED_COLUMNS.items():
        have = {c.lower() for c in session.columns(TableName(None, table)) or {}}
        for name, sql_type in added:
            if name not in have:
                session.run(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


def insert_row(session: Session, table: str, row: dict[str, Any]) -> None:
    """Insert `row` into evidence `table`; on Spark, as the newest version of its key, in the log."""
    if not session.dialect.transactional:  # a new version of the row, in the table's append-only log
        table, row = spark.log_table(table), {**row, spark.VERSION: spark.next_version()}
    cols = ", ".join(row)
    session.run(
        f"INSERT INTO {table} ({cols}) VALUES ({session.dialect.placeholders(len(row))})", list(row.values())
    )


def write_run(session: Session, record: RunRecord) -> None:
    """Insert or replace a run's record, unconditionally: for tests and imports, never for a run's owner
    (use open_run / finish_run, which keep finished evidence as it is)."""
    p = session.dialect.param
    if session.dialect.transactional:  # append-only evidence: the new version hides the old
        session.run(f"DELETE FROM {RUNS} WHERE run_id = {p}", [record.run_id])
    insert_row(session, RUNS, asdict(record))


def this_process() -> tuple[int, str]:
    return os.getpid(), socket.gethostname()


def _stored(session: Session, run_id: str) -> dict[str, Any] | None:
    if not session.dialect.transactional:
        return _latest_version(session, run_id)
    found = read_runs(session, run_id, limit=1)
    return found[0] if found else None


def _latest_version(session: Session, run_id: str) -> dict[str, Any] | None:
    """On Spark, the run's row as the `consentgate_runs` view shows it (its latest version, unless a
    tombstone), read from the log with the run's key pushed down, not through the view's window over
    every run's versions: one Spark job instead of two."""
    p = session.dialect.param
    found = _dicts(
        session,
        f"SELECT * FROM {spark.log_table(RUNS)} WHERE run_id = {p} ORDER BY {spark.VERSION} DESC LIMIT 1",
        [run_id],
    )
    if not found or found[0].get("trigger") == spark.TOMBSTONE:
        return None
    found[0].pop(spark.VERSION)
    return found[0]


def _refusal(run: dict[str, Any], owner: str | None) -> str | None:
    """Why `owner` may not open (or write to) the stored run, or None when it may."""
    rid, status = run["run_id"], run["status"]
    if run.get("owner") is None or run.get("owner") != owner:
        return (
            f"run id {rid!r} is already used by another invocation ({run.get('trigger')}, "
            f"status {status}, started at {run.get('started_at')}); use a new run id"
        )
    if status == "success":
        return f"run id {rid!r} already finished successfully at {run.get('finished_at')}; use a new run id"
    return None


#: What a retry's new attempt takes from the retry (the rest of the run's record is kept).
_REOPENED = ("started_at", "as_of", "consent_fingerprint", "consent_events_counted", "task_id", "pid", "host")


def open_run(session: Session, record: RunRecord) -> RunRecord:
    """Open a run for record.owner: insert its record, or, when the owner retries its own `failed` or
    interrupted run, start a new attempt (earlier attempts' lineage rows are kept). Raises
    RunIdInUseError for a run id of another owner or of a successful run. Returns the opened record."""
    run = _stored(session, record.run_id)
    if run is None:
        insert_row(session, RUNS, asdict(record))
        return record
    why = _refusal(run, record.owner)
    if why:
        raise RunIdInUseError(why)
    attempt = int(run.get("attempt") or 1) + 1
    earlier = RunRecord(record.run_id, planned_datasets=run.get("planned_datasets")).planned() or []
    if record.planned_datasets:  # a retry of some datasets still owes the others
        merged = earlier + [d for d in record.planned() or [] if d not in earlier]
        record.planned_datasets = json.dumps(merged)
    p = session.dialect.param
    if not session.dialect.transactional:
        reopened = {k: getattr(record, k) for k in _REOPENED}
        planned = record.planned_datasets or run.get("planned_datasets")
        changes = {"status": "running", "finished_at": None, "error": None, "planned_datasets": planned}
        insert_row(session, RUNS, {**run, **reopened, **changes, "attempt": attempt})
        record.attempt = attempt
        return record
    session.run(
        f"UPDATE {RUNS} SET status = 'running', started_at = {p}, finished_at = NULL, error = NULL, "
        f"attempt = {p}, as_of = {p}, consent_fingerprint = {p}, consent_events_counted = {p}, "
        f"task_id = {p}, planned_datasets = coalesce({p}, planned_datasets), pid = {p}, host = {p} "
        f"WHERE run_id = {p} AND owner = {p}",
        [
            record.started_at,
            attempt,
            record.as_of,
            record.consent_fingerprint,
            record.consent_events_counted,
            record.task_id,
            record.planned_datasets,
            record.pid,
            record.host,
            record.run_id,
            record.owner,
        ],
    )
    record.attempt = attempt
    return record


def check_writable(session: Session, run_id: str, owner: str | None, dataset: str) -> int:
    """Refuse (RunIdInUseError) a lineage row for `dataset` that `owner` may not write: a run of another
    owner, or an existing row of a successful run. Returns the run's current attempt (1 if no record)."""
    run = _stored(session, run_id)
    if run is None:
        return 1
    if run["status"] == "success" and run.get("owner") == owner and owner is not None:
        p = session.dialect.param
        if session.all(f"SELECT 1 FROM {LINEAGE} WHERE run_id = {p} AND dataset = {p}", [run_id, dataset]):
            raise RunIdInUseError(
                f"run id {run_id!r} already finished successfully with dataset {dataset!r}; use a new run id"
            )
        return int(run.get("attempt") or 1)
    why = _refusal(run, owner)
    if why:
        raise RunIdInUseError(why)
    return int(run.get("attempt") or 1)


def ensure_run(session: Session, record: RunRecord) -> None:
    """Insert the run's record unless one exists (an orchestrator may have opened it already)."""
    if _stored(session, record.run_id) is None:
        insert_row(session, RUNS, asdict(record))


def finish_run(
    session: Session,
    run_id: str,
    *,
    owner: str | None,
    status: str,
    finished_at: datetime,
    error: str | None = None,
) -> bool:
    """Close `owner`'s run. A successful run is never changed, nor another owner's. True if closed."""
    p = session.dialect.param
    if not session.dialect.transactional:  # the closing version, written last (the commit record)
        run = _stored(session, run_id)  # one read of the record: the check and the closing version
        if (
            run is None
            or owner is None
            or run.get("owner") != owner
            or run.get("status") in (None, "success")
        ):
            return False
        insert_row(session, RUNS, {**run, "status": status, "finished_at": finished_at, "error": error})
        return True
    where = f"WHERE run_id = {p} AND owner = {p} AND status <> 'success'"
    if not session.all(f"SELECT 1 FROM {RUNS} {where}", [run_id, owner]):
        return False
    session.run(
        f"UPDATE {RUNS} SET status = {p}, finished_at = {p}, error = {p} {where}",
        [status, finished_at, error, run_id, owner],
    )
    return True


def write_lineage(session: Session, record: LineageRecord) -> None:
    """Insert or replace the lineage row of (run_id, dataset). Check check_writable() first."""
    p = session.dialect.param
    if session.dialect.transactional:  # append-only evidence: the new version hides the old
        session.run(
            f"DELETE FROM {LINEAGE} WHERE run_id = {p} AND dataset = {p}", [record.run_id, record.dataset]
        )
    insert_row(session, LINEAGE, record.row())


def effective_status(run: dict[str, Any], now: datetime) -> str:
    """The run's status as a reader should see it: a `running` run whose process is gone (same host,
    pid no longer alive) or that started more than STALE_AFTER ago is `stale`: killed, never finished."""
    if run.get("status") != "running":
        return str(run.get("status"))
    started = run.get("started_at")
    if isinstance(started, datetime) and now - started > STALE_AFTER:
        return "stale"
    pid, host = run.get("pid"), run.get("host")
    if pid and host == socket.gethostname() and not _alive(int(pid)):
        return "stale"
    return "running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_runs(session: Session, run_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    p = session.dialect.param
    where, params = (f"WHERE run_id = {p}", [run_id]) if run_id else ("", [])
    return _dicts(
        session, f"SELECT * FROM {RUNS} {where} ORDER BY started_at DESC, run_id LIMIT {int(limit)}", params
    )


def read_lineage(session: Session, run_id: str) -> list[dict[str, Any]]:
    p = session.dialect.param
    return _dicts(session, f"SELECT * FROM {LINEAGE} WHERE run_id = {p} ORDER BY dataset", [run_id])


def _dicts(session: Session, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    session._execute(sql, params)  # noqa: SLF001 - need the description
    cur = session._cursor  # noqa: SLF001
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def has_tables(session: Session) -> bool:
    return session.columns(TableName(None, RUNS)) is not None
