"""Load tests/cases/decision_cases.yaml and materialise a case as tables in DuckDB or PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from reference import Event

CASES_FILE = Path(__file__).parent / "cases" / "decision_cases.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    as_of: datetime
    purpose: str
    normalize: str | None
    subject_type: str
    consent_subject_type: str
    events: list[Event]
    rows: list[tuple[int, Any]]
    expect: dict[int, str]


def _ts(v: Any) -> datetime | None:
    return None if v is None else datetime.fromisoformat(str(v))


def load_cases() -> list[Case]:
    data = yaml.safe_load(CASES_FILE.read_text())
    out = []
    for c in data["cases"]:
        out.append(
            Case(
                name=c["name"],
                as_of=_ts(c["as_of"]),
                purpose=c["purpose"],
                normalize=c.get("normalize"),
                subject_type=c.get("subject_type", "text"),
                consent_subject_type=c.get("consent_subject_type", "text"),
                events=[Event(e[0], e[1], e[2], _ts(e[3]), _ts(e[4]), _ts(e[5])) for e in c["events"]],
                rows=[(r[0], r[1]) for r in c["rows"]],
                expect={int(k): v for k, v in c["expect"].items()},
            )
        )
    return out


def sql_type(kind: str, dialect: str) -> str:
    if kind == "integer":
        return "BIGINT"
    if kind == "text_ci":  # compares case-insensitively (PostgreSQL: CREATE EXTENSION citext first)
        return "VARCHAR COLLATE NOCASE" if dialect == "duckdb" else "CITEXT"
    return "VARCHAR" if dialect == "duckdb" else "TEXT"


def create_tables(
    cursor: Any,
    dialect: str,
    events: list[Event],
    rows: list[tuple[int, Any]],
    subject_type: str = "text",
    consent_subject_type: str = "text",
    consent_table: str = "consent_events",
    source_table: str = "dataset",
) -> None:
    """Create (replace) a consent table and a dataset table holding the given events and rows."""
    p = "?" if dialect == "duckdb" else "%s"
    ts = "TIMESTAMP"
    text = sql_type("text", dialect)
    if dialect == "postgres" and "text_ci" in (subject_type, consent_subject_type):
        cursor.execute("CREATE EXTENSION IF NOT EXISTS citext")
    cursor.execute(f"DROP TABLE IF EXISTS {consent_table}")
    cursor.execute(
        f"CREATE TABLE {consent_table} (subject_id {sql_type(consent_subject_type, dialect)}, purpose {text}, "
        f"status {text}, event_ts {ts}, recorded_at {ts}, expires_at {ts}, source {text}, policy_version {text})"
    )
    for e in events:
        cursor.execute(
            f"INSERT INTO {consent_table} VALUES ({', '.join([p] * 8)})",
            [e.subject_id, e.purpose, e.status, e.event_ts, e.recorded_at, e.expires_at, "test", "v1"],
        )
    cursor.execute(f"DROP TABLE IF EXISTS {source_table}")
    cursor.execute(f"CREATE TABLE {source_table} (row_id BIGINT, subject {sql_type(subject_type, dialect)})")
    for row_id, subject in rows:
        cursor.execute(f"INSERT INTO {source_table} VALUES ({p}, {p})", [row_id, subject])
