"""Reading a consent source: check its table and columns before anything is written, then stream the
rows past the watermark as observations (bounded memory: batches of BATCH rows)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from consentgate.engine.session import Session
from consentgate.engine.source_config import _COLUMNS, OPTIONAL_DEFAULTS, Source
from consentgate.rule.dialects import is_timestamp_type
from consentgate.rule.names import TableName, quote
from consentgate.rule.semantics import fold_case
from consentgate.sources.errors import IngestError
from consentgate.sources.kinds import MAPPERS, Observation, Rejected
from consentgate.sources.kinds.base import INVALID, STATUSES

BATCH = 5000
_TIMESTAMPS = ("event_ts", "recorded_at", "expires_at")
#: Severity as the rule orders events (docs/semantics.md): 0 withdrawn ... 4 a valid grant.
SEVERITY = {"withdrawn": 0, "denied": 1, "negative": 1, "invalid": 2, "granted": 4}


@dataclass(frozen=True)
class ReadPlan:
    """A source checked against its table: which columns to read, as which logical names."""

    source: Source
    table: TableName
    logical: tuple[str, ...]
    select: tuple[str, ...]


@dataclass
class Staged:
    """What one read produced: staged rows, and counts by reason for rows that wrote nothing."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    watermark: datetime | None = None


def purpose_key(purpose: str) -> str:
    """A purpose as the rule compares it: trimmed of spaces, A-Z lowered (semantics.fold_case)."""
    return fold_case(purpose.strip(" "))


def _match(actual: dict[str, str], wanted: str) -> str | None:
    if wanted in actual:
        return wanted
    found = [n for n in actual if n.lower() == wanted.lower()]
    return found[0] if len(found) == 1 else None


def plan(session: Session, source: Source) -> ReadPlan:
    """Check the source's table and columns (IngestError naming the source if unusable)."""
    table = TableName.parse(source.table, "source table")
    actual = session.columns(table)
    if actual is None:
        raise IngestError(
            f"consent source {source.name}: table {source.table!r} does not exist or cannot be read; "
            "nothing was ingested (a missed withdrawal would let rows through): create it or fix sources[].table"
        )
    logical, select = [], []
    for name, col in source.columns:
        found = _match(actual, col)
        if found is None:
            if name in OPTIONAL_DEFAULTS and col == _default(source, name):
                continue
            raise IngestError(
                f"consent source {source.name}: table {source.table!r} has no column {col!r} for {name} "
                f"(columns: {', '.join(actual)}); map it under sources[].columns"
            )
        dtype = actual[found]
        if name in _TIMESTAMPS and not is_timestamp_type(dtype):
            raise IngestError(
                f"consent source {source.name}: column {found!r} ({name}) has type {dtype}, expected a "
                "timestamp; cast it in a view"
            )
        expr = quote(found)
        select.append(session.dialect.utc_timestamp(expr, dtype) if name in _TIMESTAMPS else expr)
        logical.append(name)
    return ReadPlan(source, table, tuple(logical), tuple(select))


def _default(source: Source, name: str) -> str | None:
    return _COLUMNS.get(source.kind, {}).get(name)


def watermark_expr(p: ReadPlan) -> str:
    cols = [p.select[p.logical.index(n)] for n in ("recorded_at", "event_ts") if n in p.logical]
    return cols[0] if len(cols) == 1 else f"coalesce({', '.join(cols)})"


def select_sql(p: ReadPlan, since: datetime | None, param: str) -> str:
    wm = watermark_expr(p)
    where = f" WHERE {wm} >= {param}" if since is not None else ""
    return f"SELECT {', '.join(p.select)}, {wm} FROM {p.table.sql()}{where}"


def _naive(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(type(value).__name__)


def _identity(row: dict[str, Any], subject: str, ts: datetime) -> str:
    """The observation's identity: its `id` column if mapped, else every mapped value of the row."""
    if row.get("id") is not None:
        return f"id:{row['id']}"
    rest = "\x1f".join(f"{k}={'' if v is None else v}" for k, v in row.items())
    return f"{subject}\x1f{ts.isoformat()}\x1f{rest}"


def obs_id(source: Source, identity: str, pkey: str) -> str:
    """A deterministic event id: the same observation always gets the same id (re-ingest writes nothing)."""
    digest = hashlib.sha256(f"{source.name.lower()}\x1f{identity}\x1f{pkey}".encode()).hexdigest()
    return digest[:32]


def observations(source: Source, row: dict[str, Any]) -> list[Observation]:
    """The kind's observations for one row; a value the mapper cannot read is `invalid`, never a grant."""
    try:
        found = MAPPERS[source.kind](source, row)
    except Rejected:
        raise
    except (ValueError, TypeError, KeyError, AttributeError):
        found = [Observation(p, INVALID, detail="unreadable_value") for p in source.purposes]
    return [o for o in found if o.status in STATUSES]


def stage_row(source: Source, row: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Staging tuples for one source row; raises Rejected for a row that writes nothing."""
    raw = row.pop("subject", None)
    subject = None if raw is None else (raw if isinstance(raw, str) else str(raw)).strip(" ")
    if not subject:
        raise Rejected("missing_subject")
    ts = _naive(row.get("event_ts"))
    if ts is None:
        raise Rejected("missing_event_ts")
    row["event_ts"] = ts
    if row.get("expires_at") is not None:
        row["expires_at"] = _naive(row["expires_at"])
    identity = _identity(row, subject, ts)
    out = []
    for o in observations(source, row):
        pk = purpose_key(o.purpose)
        expires = o.expires_at if o.status == "granted" else None
        severity = 3 if expires is not None and expires <= ts else SEVERITY[o.status]
        label = f"{source.name}:{o.detail}" if o.detail else source.name
        out.append(
            (
                subject,
                pk,
                o.purpose,
                o.status,
                severity,
                ts,
                expires,
                o.policy_version,
                label,
                obs_id(source, identity, pk),
            )
        )
    return out


def _cursor(session: Session) -> Any:
    """A cursor that streams without holding the session's connection for its other statements."""
    con = session.connection
    if session.dialect.name == "duckdb":
        return con.cursor()  # a second connection: reads committed data, as the source's writers left it
    if not session.dialect.transactional or getattr(con, "autocommit", False):  # Spark: streams batches
        return con.cursor()
    return con.cursor(name="consentgate_ingest_read")


def read(session: Session, p: ReadPlan, since: datetime | None) -> Iterator[Staged]:
    """Stream the rows past `since` in batches; each batch as staging rows and counts."""
    cur = _cursor(session)
    try:
        with session.stage(f"reading consent source {p.source.name}", p.table):
            cur.execute(select_sql(p, since, session.dialect.param), [since] if since is not None else None)
            while True:
                with session.stage(f"reading consent source {p.source.name}", p.table):
                    rows = cur.fetchmany(BATCH)
                if not rows:
                    break
                yield _batch(p, rows)
    finally:
        cur.close()


def _batch(p: ReadPlan, rows: list[Any]) -> Staged:
    out = Staged(read=len(rows))
    for values in rows:
        row = dict(zip(p.logical, values[:-1], strict=True))
        wm = _naive(values[-1])
        if wm is not None and (out.watermark is None or wm > out.watermark):
            out.watermark = wm
        try:
            out.rows.extend(stage_row(p.source, row))
        except Rejected as r:
            out.rejected[r.reason] += 1
    return out
