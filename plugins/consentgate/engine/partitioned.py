"""Partitioned enforcement: decide and write one slice of the subject key space at a time.

An unpartitioned run holds, at its peak, one hash table entry per subject (the snapshot's aggregate
of the log, the key table's aggregate of the source, the semi-join of the target). At a billion rows
and a hundred million subjects that does not fit a 2 GB memory limit. A partitioned run splits the
subject key space into N slices by a hash of the canonical key (the key as the rule compares it:
trimmed, binary, A-Z lowered with `normalize: lower`) and, for each slice, decides its subjects,
counts its rows by reason and appends its consented rows to the target, so each statement holds
about 1/N of the subjects. Every subject's events and rows fall in exactly one slice, so the
decisions, the counts and the fingerprint are those of the unpartitioned run (the fingerprint is
taken in one ungrouped pass over the log: semantics.totals_select). The target is still replaced
atomically: every slice is written inside the dataset's one transaction (readers see the old table
or the new one; a failure leaves the old one). Only the order of the target's rows differs: slice by
slice. DuckDB only (docs/performance.md, "Partitioned enforcement").
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from consentgate.errors import ConsentGateError
from consentgate.rule import semantics
from consentgate.rule.dialects import Dialect
from consentgate.rule.names import TableName, quote
from consentgate.rule.semantics import REASONS, ConsentColumns

if TYPE_CHECKING:
    from consentgate.engine.session import Session

AUTO = "auto"
#: Largest number of slices accepted (each slice reads the source and the log once).
MAX_PARTITIONS = 4096
#: What one GiB of DuckDB's memory_limit holds in one slice, unspilled: source rows, and consent events
#: (calibrated on the benchmark's data: docs/performance.md). `auto` takes the larger of the two needs.
SOURCE_ROWS_PER_GIB = 50_000_000
EVENTS_PER_GIB = 15_000_000

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "bytes": 1}


def checked(partitions: int | str | None) -> int | str | None:
    """A partition setting as given by a caller or the CLI: None (unpartitioned), a count from 1 to
    MAX_PARTITIONS, or 'auto' (a count from the memory limit and the tables' sizes)."""
    if partitions is None:
        return None
    if isinstance(partitions, str):
        text = partitions.strip().lower()
        if text == AUTO:
            return AUTO
        if not text.isdigit():
            raise ConsentGateError(f"partitions {partitions!r} is neither a whole number nor 'auto'")
        partitions = int(text)
    if (
        isinstance(partitions, bool)
        or not isinstance(partitions, int)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        raise ConsentGateError(f"partitions {partitions!r} must be from 1 to {MAX_PARTITIONS}, or 'auto'")
    return partitions


def require_duckdb(d: Dialect) -> None:
    if d.name != "duckdb":
        raise ConsentGateError(
            f"partitioned enforcement runs on DuckDB only, not on {d.name}; drop the partitions option"
        )


def memory_limit_bytes(session: Session) -> int | None:
    """DuckDB's memory_limit in bytes (it reports it as text, e.g. '1.8 GiB'); None if unreadable."""
    text = str(session.one("SELECT current_setting('memory_limit')")[0]).strip().lower()
    m = re.fullmatch(r"([0-9.]+)\s*([a-z]*)", text)
    if not m or m.group(2) not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _row_count(session: Session, table: TableName) -> int:
    """The row count DuckDB keeps for a table (no scan); a view is counted."""
    t = table.resolved(session.default_schema)
    rows = session.all(
        "SELECT estimated_size FROM duckdb_tables() WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?) "
        "AND database_name = current_database()",
        [t.schema, t.name],
    )
    if rows and rows[0][0] is not None:
        return int(rows[0][0])
    return int(session.one(f"SELECT count(*) FROM {table.sql()}")[0])


def auto_partitions(source_rows: int, events: int, memory_bytes: int | None) -> int:
    """Slices for a source and a log of these sizes under a memory limit: enough that each slice's
    share of the source and of the log fits (SOURCE_ROWS_PER_GIB, EVENTS_PER_GIB)."""
    if not memory_bytes:
        return 1
    gib = memory_bytes / 2**30
    need = max(source_rows / (SOURCE_ROWS_PER_GIB * gib), events / (EVENTS_PER_GIB * gib))
    return max(1, min(MAX_PARTITIONS, math.ceil(need)))


def resolve(session: Session, partitions: int | str, source: TableName, consent: TableName) -> int:
    """The number of slices a dataset is enforced in."""
    if partitions != AUTO:
        return int(partitions)
    return auto_partitions(
        _row_count(session, source), _row_count(session, consent), memory_limit_bytes(session)
    )


def slice_of(d: Dialect, key_expr: str, partitions: int, index: int) -> str:
    """Whether a canonical key (semantics.text_key) falls in slice `index` of `partitions`. A null
    key has one hash too, so every row is in exactly one slice."""
    return f"hash({key_expr}) % {int(partitions)} = {int(index)}"


def _sliced(table_sql: str, alias: str, condition: str) -> str:
    return f"(SELECT * FROM {table_sql} AS {alias} WHERE {condition})"


def has_consent(
    session: Session,
    d: Dialect,
    consent_sql: str,
    cols: ConsentColumns,
    types: dict[str, str],
    as_of: object,
    purpose: str,
) -> bool:
    """Whether any event counts as of T for `purpose` (the unpartitioned run's "decided is empty")."""
    return bool(session.all(semantics.purpose_counted_select(d, consent_sql, cols, types), [as_of, purpose]))


def enforce_sliced(
    session: Session,
    d: Dialect,
    *,
    consent_sql: str,
    cols: ConsentColumns,
    types: dict[str, str],
    as_of: object,
    purpose: str,
    normalize: str | None,
    source_sql: str,
    subject_expr: str,
    target_sql: str,
    partitions: int,
) -> tuple[int, int, dict[str, int]]:
    """Replace the target by the consented rows of the source, slice by slice, inside the caller's
    transaction. Returns (rows_in, rows_out, excluded by reason), summed over the slices.

    `subject_expr` is the rows' subject value over alias s (semantics.subject_value). Per slice: one
    statement decides the slice's subjects and groups the slice's rows by subject value (the key
    table), one appends the consented rows, one reads the counts from the key table. Each slice
    reads the log once and the source twice (its subject column, then its rows).
    """
    require_duckdb(d)
    keys = semantics.scratch(d, semantics.KEYS)
    snapshot, decided = '"_consentgate_snapshot_slice"', '"_consentgate_decided_slice"'
    consent_key = semantics.text_key(d, f"c.{quote(cols.subject_id)}", normalize)
    source_key = semantics.text_key(d, subject_expr, normalize)
    totals = [0] * (2 + len(REASONS))
    for i in range(partitions):
        log_slice = _sliced(consent_sql, "c", slice_of(d, consent_key, partitions, i))
        rows_slice = _sliced(source_sql, "s", slice_of(d, source_key, partitions, i))
        session.run(f"DROP TABLE IF EXISTS {keys}")
        session.run(
            f"CREATE TEMP TABLE {keys} AS WITH {snapshot} AS ("
            + semantics.snapshot_select(d, log_slice, cols, types, 1)
            + f"), {decided} AS ({semantics.decided_select(d, 0, normalize, snapshot)}) "
            + semantics.keys_select(d, rows_slice, subject_expr, normalize, decided),
            [as_of, purpose],
        )
        # The key table holds this slice's subject values only, so the unsliced source semi-joined
        # to it yields exactly the slice's consented rows, without a slice test per row.
        select = semantics.consented_select(d, source_sql, subject_expr)
        if i == 0:
            for stmt in d.replace_table(target_sql, select):
                session.run(stmt)
        else:
            session.run(f"INSERT INTO {target_sql} {select}")
        for j, value in enumerate(session.one(semantics.counts_select(d))):
            totals[j] += int(value)
    session.run(f"DROP TABLE IF EXISTS {keys}")
    rows_in, rows_out, *by_reason = totals
    return rows_in, rows_out, dict(zip(REASONS, by_reason, strict=True))
