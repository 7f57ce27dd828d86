"""The tables ingestion writes: the consent log (consentgate's own shape plus `event_id`), the per-source
watermark, the per-source latest observation, and the ingest evidence. Created here, not in ddl.sql.

`consentgate_ingests` is evidence: counts only, never a subject identifier. `consentgate_source_latest`
is state, like the log itself: the latest observation per (source, subject, purpose), kept so that an
observation that wrote nothing (it changed no decision when read) is written the day a late-arriving
event makes it matter (docs/sources.md, "What ingestion guarantees, and why").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentgate.engine import lineage, spark
from consentgate.engine.session import Session
from consentgate.rule.dialects import is_text_type, is_timestamp_type
from consentgate.rule.names import TableName
from consentgate.rule.semantics import ConsentColumns
from consentgate.sources.errors import IngestError

INGESTS, SOURCE_STATE, SOURCE_LATEST = lineage.INGESTS, lineage.SOURCE_STATE, lineage.SOURCE_LATEST
TABLES = (INGESTS, SOURCE_STATE, SOURCE_LATEST)

LOG_COLUMNS = (
    ("subject_id", "varchar"), ("purpose", "varchar"), ("status", "varchar"), ("event_ts", "timestamp"),
    ("recorded_at", "timestamp"), ("expires_at", "timestamp"), ("source", "varchar"),
    ("policy_version", "varchar"), ("event_id", "varchar"),
)  # fmt: skip

_DDL = (
    f"""create table if not exists {INGESTS} (
        ingest_id varchar not null,
        source varchar not null,
        kind varchar,
        source_table varchar,
        consent_table varchar,
        started_at timestamp,
        finished_at timestamp,
        recorded_at timestamp,
        status varchar not null,
        observations_read bigint,
        events_written bigint,
        rejected varchar,
        watermark_from timestamp,
        watermark_to timestamp,
        error varchar
    )""",
    f"""create table if not exists {SOURCE_STATE} (
        source varchar not null,
        kind varchar,
        source_table varchar,
        watermark timestamp,
        ingest_id varchar,
        updated_at timestamp
    )""",
    f"""create table if not exists {SOURCE_LATEST} (
        source varchar not null,
        subject_key varchar not null,
        purpose_key varchar not null,
        purpose varchar,
        status varchar,
        severity integer,
        event_ts timestamp,
        expires_at timestamp,
        policy_version varchar,
        label varchar,
        obs_id varchar,
        ingest_id varchar
    )""",
)
#: On Spark (no transactions, no DELETE) each table is a view over an append-only `<table>_log`
#: (engine/spark.py, ensure_evidence): the view shows each key's latest version. The ingest's `success`
#: record is written last and commits it: a watermark or latest observation counts only once the
#: record of the ingest that wrote it says `success`.
SPARK_KEYS = {
    INGESTS: ("ingest_id", "source"),
    SOURCE_STATE: ("source",),
    SOURCE_LATEST: ("source", "subject_key", "purpose_key"),
}
_COMMITTED = (
    f"EXISTS (SELECT 1 FROM {spark.log_table(INGESTS)} i WHERE i.ingest_id = _consentgate_v.ingest_id "
    "AND i.source = _consentgate_v.source AND i.status = 'success')"
)


@dataclass
class IngestRecord:
    """A row of consentgate_ingests: what one ingest of one source did. Counts only."""

    ingest_id: str
    source: str
    kind: str
    source_table: str
    consent_table: str
    started_at: datetime
    finished_at: datetime | None = None
    recorded_at: datetime | None = None
    status: str = "running"
    observations_read: int = 0
    events_written: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    watermark_from: datetime | None = None
    watermark_to: datetime | None = None
    error: str | None = None

    def row(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["rejected"] = json.dumps(dict(sorted(self.rejected.items())), separators=(",", ":"))
        return data

    def summary(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for k in ("started_at", "finished_at", "recorded_at", "watermark_from", "watermark_to"):
            out[k] = out[k].isoformat() if out[k] else None
        out["rejected"] = dict(sorted(self.rejected.items()))
        return out


def ensure_tables(session: Session) -> None:
    if not session.dialect.transactional:
        committed = {SOURCE_STATE: _COMMITTED, SOURCE_LATEST: _COMMITTED}
        spark.ensure_evidence(session, ";".join(_DDL), SPARK_KEYS, committed)
        return
    for ddl in _DDL:
        session.run(ddl)
    # Added with ingestion on Spark (which commits a latest observation by its ingest's record).
    session.run(f"ALTER TABLE {SOURCE_LATEST} ADD COLUMN IF NOT EXISTS ingest_id varchar")


def ensure_log(session: Session, consent_table: str, columns: ConsentColumns | None) -> TableName:
    """The consent log ingestion appends to, created in consentgate's own shape if missing.

    Ingestion writes only a log with the default column names (docs/semantics.md); a policy mapping
    them to other names is refused, as is a log whose columns have unusable types. `event_id` is added
    to a log that lacks it (older events keep a null id)."""
    if columns is not None and columns != ConsentColumns():
        raise IngestError(
            f"consent table {consent_table!r} has mapped column names (policy consent.columns); ingestion "
            "writes only a log in consentgate's own shape: drop the mapping or ingest into another table"
        )
    table = TableName.parse(consent_table, "consent table")
    actual = session.columns(table)
    d = session.dialect
    text = d.text_type if not d.transactional else "varchar"
    if actual is None:
        if table.schema:
            session.run(f"CREATE SCHEMA IF NOT EXISTS {table.sql().split('.')[0]}")
        cols = ", ".join(f"{n} {text if t == 'varchar' else t}" for n, t in LOG_COLUMNS)
        session.run(f"CREATE TABLE {table.sql()} ({cols}){'' if d.transactional else ' USING parquet'}")
        return table
    lower = {k.lower(): v for k, v in actual.items()}
    for name, sql_type in LOG_COLUMNS:
        dtype = lower.get(name)
        if dtype is None and name == "event_id":
            session.run(f"ALTER TABLE {table.sql()} ADD COLUMN event_id {text}")
            continue
        if dtype is None:
            raise IngestError(
                f"consent table {consent_table!r} has no column {name!r} (columns: {', '.join(actual)}); "
                "ingestion appends to a log in consentgate's own shape (docs/sources.md)"
            )
        if not (is_timestamp_type(dtype) if sql_type == "timestamp" else is_text_type(dtype)):
            raise IngestError(
                f"consent table {consent_table!r}: column {name!r} (type {dtype}) is not {sql_type}; ingestion "
                "appends to a log in consentgate's own shape (docs/sources.md)"
            )
    return table


def watermark(session: Session, source: str) -> datetime | None:
    p = session.dialect.param
    rows = session.all(f"SELECT watermark FROM {SOURCE_STATE} WHERE source = {p}", [source])
    return rows[0][0] if rows else None


def set_watermark(session: Session, record: IngestRecord) -> None:
    row = {
        "source": record.source,
        "kind": record.kind,
        "source_table": record.source_table,
        "watermark": record.watermark_to,
        "ingest_id": record.ingest_id,
        "updated_at": record.finished_at,
    }
    _replace(session, SOURCE_STATE, row, ("source",))


def write_record(session: Session, record: IngestRecord) -> None:
    _replace(session, INGESTS, record.row(), ("ingest_id", "source"))


def _replace(session: Session, table: str, row: dict[str, Any], key: Sequence[str]) -> None:
    """`row` as the one row of its key in `table` (on Spark: its newest version)."""
    if session.dialect.transactional:  # on Spark, the new version hides the old
        p = session.dialect.param
        where = " AND ".join(f"{k} = {p}" for k in key)
        session.run(f"DELETE FROM {table} WHERE {where}", [row[k] for k in key])
    lineage.insert_row(session, table, row)


def read_ingests(session: Session, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ingest records (newest first), `rejected` as a dict. [] before the first ingest."""
    if session.columns(TableName(None, INGESTS)) is None:
        return []
    p = session.dialect.param
    where, params = (f"WHERE source = {p}", [source]) if source else ("", [])
    cols = [n for n in IngestRecord.__dataclass_fields__]
    rows = session.all(
        f"SELECT {', '.join(cols)} FROM {INGESTS} {where} ORDER BY started_at DESC, source LIMIT {int(limit)}",
        params,
    )
    out = []
    for r in rows:
        d = dict(zip(cols, r, strict=True))
        d["rejected"] = json.loads(d["rejected"] or "{}")
        out.append(d)
    return out
