"""The evidence tables: one row per run (`consentgate_runs`), one per dataset per run (`consentgate_lineage`).

Evidence never decides which rows go through. Lineage rows are written in the same transaction as the
target they describe; run records are opened before and closed after the work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from consentgate.db import Session
from consentgate.semantics import REASONS

RUNS = "consentgate_runs"
LINEAGE = "consentgate_lineage"
EVIDENCE_TABLES = (RUNS, LINEAGE)


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

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        excluded = data.pop("excluded")
        for reason in REASONS:
            data[f"excluded_{reason}"] = int(excluded.get(reason, 0))
        return data


def ensure_tables(session: Session) -> None:
    ddl = resources.files("consentgate").joinpath("ddl.sql").read_text()
    for statement in ddl.split(";"):
        body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
        if body.strip():
            session.run(statement)


def _insert(session: Session, table: str, row: dict[str, Any]) -> None:
    cols = ", ".join(row)
    session.run(
        f"INSERT INTO {table} ({cols}) VALUES ({session.dialect.placeholders(len(row))})", list(row.values())
    )


def write_run(session: Session, record: RunRecord) -> None:
    """Insert or replace the run's record (same run_id: replaced, never duplicated)."""
    p = session.dialect.param
    session.run(f"DELETE FROM {RUNS} WHERE run_id = {p}", [record.run_id])
    _insert(session, RUNS, asdict(record))


def ensure_run(session: Session, record: RunRecord) -> None:
    """Insert the run's record unless one exists (an orchestrator may have opened it already)."""
    p = session.dialect.param
    if not session.all(f"SELECT 1 FROM {RUNS} WHERE run_id = {p}", [record.run_id]):
        _insert(session, RUNS, asdict(record))


def start_run(session: Session, record: RunRecord) -> None:
    """Open a run: its record is written and any lineage left by an earlier attempt of it is removed."""
    p = session.dialect.param
    session.run(f"DELETE FROM {LINEAGE} WHERE run_id = {p}", [record.run_id])
    write_run(session, record)


def finish_run(
    session: Session, run_id: str, *, status: str, finished_at: datetime, error: str | None = None
) -> None:
    p = session.dialect.param
    session.run(
        f"UPDATE {RUNS} SET status = {p}, finished_at = {p}, error = {p} WHERE run_id = {p}",
        [status, finished_at, error, run_id],
    )


def write_lineage(session: Session, record: LineageRecord) -> None:
    """Insert or replace the lineage row of (run_id, dataset)."""
    p = session.dialect.param
    session.run(f"DELETE FROM {LINEAGE} WHERE run_id = {p} AND dataset = {p}", [record.run_id, record.dataset])
    _insert(session, LINEAGE, record.row())


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
    from consentgate.names import TableName

    return session.columns(TableName(None, RUNS)) is not None
