"""One enforcement: validate names and columns, read consent once, replace targets atomically, count.

`enforce()` handles one dataset, `run_policy()` every dataset of a policy under one run_id. Both read
the consent log once, into a snapshot as of T, and record the run in the evidence tables.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consentgate import __version__
from consentgate.engine import lineage, partitioned, spark, termination
from consentgate.engine.policy import Dataset, Policy
from consentgate.engine.session import Session, open_database, resolved_key, session_for, staged
from consentgate.errors import (
    ConsentGateError,
    ConsentSourceError,
    ConsistencyError,
    InvalidAsOfError,
    SourceError,
    TargetError,
    one_line,
)
from consentgate.rule import semantics
from consentgate.rule.dialects import Dialect, is_inexact_number_type, is_text_type, is_timestamp_type
from consentgate.rule.names import TableName, column, quote
from consentgate.rule.semantics import REASONS, ConsentColumns

log = logging.getLogger("consentgate")


def package_version() -> str:
    return __version__


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_as_of(value: str | datetime | None) -> datetime:
    """The cut-off as a naive UTC datetime. None means now; naive input is taken as UTC."""
    if value is None or value == "":
        return utcnow()
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidAsOfError(
                f"as-of {str(value)!r} is not an ISO 8601 timestamp (e.g. 2026-11-29T02:00:00Z)"
            ) from None
    if dt.tzinfo is not None:
        try:
            dt = dt.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise InvalidAsOfError(
                f"as-of {str(value)!r} falls outside years 1-9999 once converted to UTC; give a cut-off inside that range"
            ) from None
    return dt


def new_run_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RunContext:
    """Who triggered a run, with the orchestrator's ids where known."""

    trigger: str = "cli"
    dag_id: str | None = None
    task_id: str | None = None
    airflow_run_id: str | None = None
    dbt_invocation_id: str | None = None
    owner: str | None = None  # the invocation owning the run (see invocation_owner, docs/runs.md)


def invocation_owner(context: RunContext) -> str:
    """Who owns a run: one Airflow DAG run (every task and retry of it), else this one call."""
    if context.owner:
        return context.owner
    if context.trigger == "airflow" and context.dag_id and context.airflow_run_id:
        return f"airflow:{context.dag_id}:{context.airflow_run_id}"
    return f"{context.trigger}:{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Snapshot:
    """The consent log as of T, read once: its fingerprint and the number of events that count."""

    consent_table: str
    as_of: datetime
    fingerprint: str
    events_counted: int


@dataclass
class DatasetResult:
    """What one enforcement did: counts only, never a subject identifier."""

    run_id: str
    dataset: str
    source: str
    target: str
    purpose: str
    subject_column: str
    normalize: str | None
    as_of: datetime
    rows_in: int
    rows_out: int
    excluded: dict[str, int]
    consent_fingerprint: str
    consent_events_counted: int
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "source": self.source,
            "target": self.target,
            "purpose": self.purpose,
            "as_of": self.as_of.isoformat(),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "excluded": dict(self.excluded),
            "consent_fingerprint": self.consent_fingerprint,
            "consent_events_counted": self.consent_events_counted,
        }


@dataclass
class RunResult:
    """A policy run: every dataset's result, and the errors of those that failed."""

    run_id: str
    as_of: datetime
    consent_fingerprint: str | None
    consent_events_counted: int | None
    datasets: list[DatasetResult]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": "success" if self.ok else "failed",
            "as_of": self.as_of.isoformat(),
            "consent_fingerprint": self.consent_fingerprint,
            "consent_events_counted": self.consent_events_counted,
            "datasets": [d.summary() for d in self.datasets],
            "errors": dict(self.errors),
        }


def _match_column(actual: dict[str, str], wanted: str, where: str, error: type[Exception]) -> str | None:
    """The column of `actual` that `wanted` names: the exact name first, else the one column equal to
    it case-insensitively; None when none is. Two case-insensitive matches and no exact one fail."""
    if wanted in actual:
        return wanted
    found = [name for name in actual if name.lower() == wanted.lower()]
    if len(found) > 1:
        raise error(
            f"{where}: column name {wanted!r} matches {' and '.join(repr(n) for n in found)} "
            "case-insensitively and neither exactly; name the column exactly"
        )
    return found[0] if found else None


def _check_key_type(name: str, dtype: str, where: str, error: type[Exception]) -> None:
    """Subject keys are compared as text: a type without one text form per value cannot be a key."""
    if is_inexact_number_type(dtype):
        raise error(
            f"{where} column {name!r} has type {dtype}: a decimal or floating-point number has no unique "
            "text form (42 = 42.0 = 4.2e1), so it cannot identify a subject; store subject ids as text "
            "or an integer type (e.g. cast it in a view)"
        )
    if any(t in dtype.upper() for t in ("[]", "STRUCT", "MAP", "LIST", "UNION", "ARRAY", "VARIANT")):
        raise error(f"{where} column {name!r} has type {dtype}, expected a scalar")


class Enforcer:
    """Enforces datasets on one session against one consent snapshot."""

    def __init__(
        self,
        session: Session,
        *,
        consent_table: str,
        columns: ConsentColumns | None = None,
        as_of: datetime,
        run_id: str,
        context: RunContext | None = None,
        partitions: int | str | None = None,
    ) -> None:
        self.session = session
        self.d: Dialect = session.dialect
        # None: decide every subject at once; N or 'auto': in slices of the key space (engine/partitioned.py)
        self.partitions = partitioned.checked(partitions)
        if self.partitions is not None:
            partitioned.require_duckdb(self.d)
        self.consent = TableName.parse(consent_table, "consent table")
        self.columns = columns or ConsentColumns()
        self.as_of = as_of
        self.run_id = run_id
        self.context = context or RunContext()
        self.snapshot: Snapshot | None = None
        self._purposes: dict[str, int] = {}
        self._consent_cols: tuple[ConsentColumns, dict[str, str]] = (self.columns, {})
        self._decided_for: tuple[str, str | None] | None = None
        self._decided_bytes: int | None = None  # Spark: bytes of the decided keys (_has_consent)
        # Spark: per purpose number, (decisions, bytes of their keys) observed with the snapshot.
        self._decided_sizes: dict[int, tuple[int, int]] = {}
        self._subject_types: dict[tuple[tuple[str, str], str], str] = {}
        # The record start_run opened, on Spark: see enforce().
        self._opened: lineage.RunRecord | None = None

    # -- consent --------------------------------------------------------------------------------
    def _consent_types(self) -> tuple[ConsentColumns, dict[str, str]]:
        """Check the consent table and map each logical column to its actual name and type."""
        actual = self.session.columns(self.consent)
        if actual is None:
            raise ConsentSourceError(
                f"consent table {str(self.consent)!r} does not exist; create it or set consent.table in the policy"
            )
        where = f"consent table {str(self.consent)!r}"
        names: dict[str, str | None] = {}
        types: dict[str, str] = {}
        for logical, mapped in self.columns.mapping().items():
            name = None if mapped is None else _match_column(actual, mapped, where, ConsentSourceError)
            if name is None:
                if mapped is None or logical in ("source", "policy_version"):
                    names[logical] = None  # unmapped, or an evidence-only column that may be absent
                    continue
                raise ConsentSourceError(
                    f"{where} has no column {mapped!r} for {logical} "
                    f"(columns: {', '.join(actual)}); map it in policy consent.columns"
                )
            dtype = actual[name]
            if logical in ConsentColumns.TIMESTAMPS and not is_timestamp_type(dtype):
                raise ConsentSourceError(
                    f"consent column {name!r} ({logical}) has type {dtype}, expected a timestamp or date"
                )
            if logical in ConsentColumns.TEXTS and not is_text_type(dtype):
                raise ConsentSourceError(
                    f"consent column {name!r} ({logical}) has type {dtype}, expected text"
                )
            if logical == "subject_id":
                _check_key_type(name, dtype, "consent", ConsentSourceError)
            names[logical], types[logical] = name, dtype
        return ConsentColumns(**names), types  # type: ignore[arg-type]

    @staged("reading the consent log", lambda self, *a, **k: self.consent)
    def take_snapshot(self, purposes: Sequence[str] = ()) -> Snapshot:
        """Read the consent log once, as of T, into a session-private table. Returns its fingerprint.

        The fingerprint covers every purpose; decisions are kept for `purposes`, the ones this run
        enforces (enforce() and counts() accept no other).
        """
        if not self.d.transactional:  # the log as it is now, not as this Spark session last listed it
            spark.refresh(self.session, self.consent)
        cols, types = self._consent_types()
        self._purposes = {}
        self._decided_sizes = {}
        for name in purposes:
            self._purposes.setdefault(name, len(self._purposes))
        s = self.session
        self._consent_cols = (cols, types)
        if self.partitions is not None:  # no snapshot table: each slice decides its own subjects
            fp, counted, maybe_too_old = s.one(
                semantics.totals_select(self.d, self.consent.sql(), cols, types), [self.as_of]
            )
        else:
            # On a SparkSession the fingerprint and each purpose's decided size are observed while the
            # snapshot is written, in its job: two Spark jobs fewer (docs/performance.md).
            sizes = [agg for i in range(len(self._purposes)) for agg in semantics.decided_size_aggregates(i)]
            observed = s.scratch(
                semantics.scratch(self.d, semantics.SNAPSHOT),
                semantics.snapshot_select(self.d, self.consent.sql(), cols, types, len(self._purposes)),
                [self.as_of, *self._purposes],
                durable=True,
                observe=[*semantics.fingerprint_aggregates(self.d), *sizes] if self.d.name == "spark" else (),
            )
            if observed is None:
                fp, counted, maybe_too_old = s.one(semantics.fingerprint_select(self.d))
            else:
                (fp, counted, maybe_too_old), sizes = observed[:3], [int(v) for v in observed[3:]]
                self._decided_sizes = {
                    i: (sizes[2 * i], sizes[2 * i + 1]) for i in range(len(self._purposes))
                }
        if (
            maybe_too_old
            and s.one(
                semantics.too_old_select(self.d, self.consent.sql(), cols, types, len(self._purposes)),
                [self.as_of, *self._purposes],
            )[0]
        ):
            raise ConsentSourceError(
                f"consent column {cols.event_ts!r} (event_ts) of {str(self.consent)!r} holds an event that "
                f"counts as of {self.as_of.isoformat()} for a purpose enforced but is dated before 0001-01-01 (a BC date or "
                "-infinity), which the rule cannot order; correct or remove that event"
            )
        self.snapshot = Snapshot(str(self.consent), self.as_of, f"{int(fp):016x}", int(counted))
        self._decided_for = None
        if counted == 0:
            log.warning(
                "consent table %s has no event that counts as of %s: every row will be excluded",
                self.consent,
                self.as_of.isoformat(),
            )
        return self.snapshot

    def forget_decisions(self) -> None:
        """After a rollback: the decided table was created in the rolled-back transaction, so the next
        dataset must decide again (the snapshot, committed before, stays)."""
        self._decided_for = None

    def _decided_sql(self, purpose: str, normalize: str | None) -> str:
        """The decisions for `purpose` over the snapshot table (semantics.decided_select)."""
        if purpose not in self._purposes:
            raise RuntimeError(f"purpose {purpose!r} was not passed to take_snapshot()")
        if self.partitions is not None:
            raise RuntimeError("a partitioned Enforcer keeps no snapshot table: only enforce() can use it")
        snapshot = semantics.scratch(self.d, semantics.SNAPSHOT)
        return semantics.decided_select(self.d, self._purposes[purpose], normalize, snapshot)

    def _decide(self, purpose: str, normalize: str | None) -> None:
        if self._decided_for == (purpose, normalize):
            return
        decided = self._decided_sql(purpose, normalize)
        # On a SparkSession, decisions the snapshot's write measured under the broadcast cap are read
        # once per dataset, by the observed write (broadcast): a view over the snapshot, not a cache
        # (whose job cost more than the reads it saves).
        observed = self._decided_sizes.get(self._purposes[purpose])
        read_once = observed is not None and observed[1] <= spark.BROADCAST_KEY_BYTES
        self.session.scratch(semantics.scratch(self.d, semantics.DECIDED), decided, cache=not read_once)
        self._decided_for = (purpose, normalize)

    # -- datasets -------------------------------------------------------------------------------
    def _resolve_source(self, source: TableName, subject_column: str) -> str:
        """The source's subject column (exact name first), checked to be usable as a key."""
        actual = self.session.columns(source)
        if actual is None:
            raise SourceError(f"source table {str(source)!r} does not exist")
        name = _match_column(actual, subject_column, f"source {str(source)!r}", SourceError)
        if name is None:
            raise SourceError(
                f"subject column {subject_column!r} is not in source {str(source)!r} (columns: {', '.join(actual)})"
            )
        _check_key_type(name, actual[name], f"source {str(source)!r} subject", SourceError)
        self._subject_types[(source.key(self.session.default_schema), name)] = actual[name]
        return name

    def _subject_value(self, table: TableName, subject_column: str) -> str:
        """The rows' subject value over alias s, as keys and rows are matched (semantics.subject_value)."""
        dtype = self._subject_types.get((table.key(self.session.default_schema), subject_column), "")
        return semantics.subject_value(self.d, f"s.{quote(subject_column)}", dtype)

    def _consented_sql(self, source: TableName, subject_column: str, *, broadcast: bool = False) -> str:
        """The consented rows of `source`, per the key table (_key_table must have run for it)."""
        subject = self._subject_value(source, subject_column)
        return semantics.consented_select(self.d, source.sql(), subject, broadcast=broadcast)

    def _check_target(self, source: TableName, target: TableName) -> None:
        s = self.session
        key = resolved_key(s, target)  # as the engine resolves it (search_path, length, case)
        if key == resolved_key(s, source):
            raise TargetError(f"target {str(target)!r} is the source table; choose another target")
        if key == resolved_key(s, self.consent):
            raise TargetError(f"target {str(target)!r} is the consent table; choose another target")
        if key[1] in lineage.EVIDENCE_TABLES:
            raise TargetError(
                f"target {str(target)!r} is a consentgate evidence table; choose another target"
            )

    @staged("reading the subject keys of", lambda self, table, *a: table)
    def _key_table(self, table: TableName, subject_column: str, normalize: str | None) -> None:
        s = self.session
        keys = semantics.scratch(self.d, semantics.KEYS)
        subject = self._subject_value(table, subject_column)
        s.scratch(keys, semantics.keys_select(self.d, table.sql(), subject, normalize))

    def _counted(
        self, *, key_bytes: bool = False, relation: str | None = None
    ) -> tuple[int, int, dict[str, int], int]:
        """(rows_in, rows_out, excluded by reason) from the key table (or `relation`,
        semantics.decided_rows) and, with key_bytes, the bytes of its consented values as text (else 0)."""
        select = semantics.counts_select(self.d, key_bytes=key_bytes, relation=relation)
        values = [int(v) for v in self.session.one(select)]
        rows_in, rows_out, *by_reason = values[: 2 + len(REASONS)]
        return rows_in, rows_out, dict(zip(REASONS, by_reason, strict=True)), sum(values[2 + len(REASONS) :])

    @staged("counting the rows of", lambda self, table, *a: table)
    def counts(
        self, table: TableName, subject_column: str, purpose: str, normalize: str | None
    ) -> tuple[int, int, dict[str, int]]:
        """(rows_in, rows_out, excluded by reason) of a table against the snapshot, in one statement
        that writes nothing (an audit is one query: on Spark, caching the decisions and the keys first
        cost two more jobs, 1.1-2.2 s of a 3-4 s audit)."""
        self._require_snapshot()
        col = self._resolve_source(table, subject_column)
        decided = f"({self._decided_sql(purpose, normalize)})"
        subject = self._subject_value(table, col)
        keys = semantics.keys_select(self.d, table.sql(), subject, normalize, decided)
        rows_in, rows_out, excluded, _ = self._counted(relation=f"({keys}) AS keyed")
        return rows_in, rows_out, excluded

    def _has_consent(self, purpose: str, normalize: str | None) -> bool:
        """Whether any event counts for `purpose` (decides it first, unless partitioned)."""
        if self.partitions is None:
            self._decide(purpose, normalize)
            decided = semantics.scratch(self.d, semantics.DECIDED)
            if self.d.name == "spark":  # and their size: whether a write can broadcast them
                observed = self._decided_sizes.get(self._purposes[purpose])
                n, self._decided_bytes = observed or (
                    int(v) for v in self.session.one(semantics.decided_size_select(self.d))
                )
                return n > 0
            return bool(self.session.all(f"SELECT 1 FROM {decided} LIMIT 1"))
        if purpose not in self._purposes:
            raise RuntimeError(f"purpose {purpose!r} was not passed to take_snapshot()")
        cols, types = self._consent_cols
        return partitioned.has_consent(
            self.session, self.d, self.consent.sql(), cols, types, self.as_of, purpose
        )

    def _enforce_sliced(
        self, source: TableName, col: str, target: TableName, ds: Dataset
    ) -> tuple[int, int, dict[str, int]]:
        assert self.partitions is not None
        cols, types = self._consent_cols
        return partitioned.enforce_sliced(
            self.session,
            self.d,
            consent_sql=self.consent.sql(),
            cols=cols,
            types=types,
            as_of=self.as_of,
            purpose=ds.purpose,
            normalize=ds.normalize,
            source_sql=source.sql(),
            subject_expr=self._subject_value(source, col),
            target_sql=target.sql(),
            partitions=partitioned.resolve(self.session, self.partitions, source, self.consent),
        )

    def _broadcasts_decisions(self) -> bool:
        """Whether enforce() matches rows to the decisions directly (Spark, at most
        spark.BROADCAST_KEY_BYTES of decided keys, measured by _has_consent)."""
        size = self._decided_bytes
        return self.d.name == "spark" and size is not None and size <= spark.BROADCAST_KEY_BYTES

    def _require_snapshot(self) -> Snapshot:
        if self.snapshot is None:
            raise RuntimeError("take_snapshot() must run before enforcing")
        return self.snapshot

    @staged("enforcing dataset", lambda self, ds: ds.name)
    def enforce(self, ds: Dataset) -> DatasetResult:
        """Replace ds.target by the consented rows of ds.source and record lineage, in one transaction."""
        snap = self._require_snapshot()
        source = TableName.parse(ds.source, "source table")
        target = TableName.parse(ds.target, "target table")
        subject_column = column(ds.subject_column, "subject column")
        started = utcnow()
        warnings: list[str] = []
        # Spark has no transactions: the run's record is a version read before the write, never a lock.
        # When this Enforcer opened the run (start_run), it is that record: `running`, this owner's, this
        # attempt (only the owner writes to a run, and this one closes it after its datasets), so the
        # two reads of the versioned runs view below would tell nothing new.
        opened = None if self.d.transactional else self._opened
        with self.session.transaction() as s:
            attempt = (
                opened.attempt
                if opened
                else lineage.check_writable(s, self.run_id, self.context.owner, ds.name)
            )
            if not self.d.transactional:
                spark.refresh(s, source)
            col = self._resolve_source(source, subject_column)
            self._check_target(source, target)
            if not self._has_consent(ds.purpose, ds.normalize):
                msg = f"no consent event for purpose {ds.purpose!r} counts as of {self.as_of.isoformat()}"
                warnings.append(msg + f": every row of {ds.name} is excluded")
                log.warning("%s: every row of %s is excluded", msg, ds.name)
            if target.schema:
                s.run(f"CREATE SCHEMA IF NOT EXISTS {target.sql().split('.')[0]}")
            # Without transactions (Spark) the rows go to a new table of this run's own, published below.
            written_to = target if self.d.transactional else spark.new_run_table(s, target)
            if self.partitions is not None:
                rows_in, rows_out, excluded = self._enforce_sliced(source, col, target, ds)
            elif self._broadcasts_decisions():
                # Spark, decisions small enough to broadcast: each row joined to its decision; no key
                # table (a grouped pass over the source, with a shuffle of its distinct values). On a
                # SparkSession the rows are counted while they are written (one pass); over the Thrift
                # server, counted in one pass and written from the consented decisions in another.
                subject = self._subject_value(source, col)
                if spark.observes(s):
                    observed = semantics.observed_decisions(self.d, subject, ds.normalize)
                    rows_in, rows_out, *by_reason = spark.write_observed(
                        s, written_to.sql(), source.sql(), observed
                    )
                    excluded = dict(zip(REASONS, by_reason, strict=True))
                else:
                    rows = semantics.decided_rows(self.d, source.sql(), subject, ds.normalize)
                    rows_in, rows_out, excluded, _ = self._counted(relation=rows)
                    select = semantics.decided_consented_select(self.d, source.sql(), subject, ds.normalize)
                    for stmt in self.d.replace_table(written_to.sql(), select):
                        s.run(stmt)
            else:
                self._key_table(source, col, ds.normalize)
                # Counted before the write (the key table does not change), so that Spark can be told to
                # broadcast a small set of consented values (spark.BROADCAST_KEY_BYTES).
                spark_sql = self.d.name == "spark"
                rows_in, rows_out, excluded, key_bytes = self._counted(key_bytes=spark_sql)
                select = self._consented_sql(
                    source, col, broadcast=spark_sql and key_bytes <= spark.BROADCAST_KEY_BYTES
                )
                for stmt in self.d.replace_table(written_to.sql(), select):
                    s.run(stmt)
            written = int(s.one(f"SELECT count(*) FROM {written_to.sql()}")[0])
            if written != rows_out or rows_in != rows_out + sum(excluded.values()):
                raise ConsistencyError(
                    f"dataset {ds.name}: target has {written} rows but the counts say {rows_out} of {rows_in}; "
                    "nothing was written"
                )
            finished = utcnow()
            if opened is None:
                lineage.ensure_run(s, self._run_record(status="running", started_at=started))
            lineage.write_lineage(
                s,
                lineage.LineageRecord(
                    run_id=self.run_id,
                    dataset=ds.name,
                    source=str(source),
                    target=str(target),
                    purpose=ds.purpose,
                    subject_column=col,
                    normalize=ds.normalize,
                    rows_in=rows_in,
                    rows_out=rows_out,
                    excluded=excluded,
                    consent_fingerprint=snap.fingerprint,
                    trigger=self.context.trigger,
                    task_id=self.context.task_id,
                    started_at=started,
                    finished_at=finished,
                    attempt=attempt,
                ),
            )
            if written_to != target:  # readers switch to the new rows only after their evidence is written
                spark.publish(s, target, written_to, self.run_id)
        log.info(
            "%s: %d rows in, %d out, excluded %s",
            ds.name,
            rows_in,
            rows_out,
            ", ".join(f"{k}={v}" for k, v in excluded.items() if v) or "none",
        )
        return DatasetResult(
            run_id=self.run_id,
            dataset=ds.name,
            source=str(source),
            target=str(target),
            purpose=ds.purpose,
            subject_column=col,
            normalize=ds.normalize,
            as_of=self.as_of,
            rows_in=rows_in,
            rows_out=rows_out,
            excluded=excluded,
            consent_fingerprint=snap.fingerprint,
            consent_events_counted=snap.events_counted,
            warnings=warnings,
        )

    def _run_record(self, *, status: str, started_at: datetime) -> lineage.RunRecord:
        c = self.context
        snap = self.snapshot
        return lineage.RunRecord(
            run_id=self.run_id,
            started_at=started_at,
            status=status,
            as_of=self.as_of,
            consent_table=str(self.consent),
            consent_fingerprint=snap.fingerprint if snap else None,
            consent_events_counted=snap.events_counted if snap else None,
            trigger=c.trigger,
            dag_id=c.dag_id,
            task_id=c.task_id,
            airflow_run_id=c.airflow_run_id,
            dbt_invocation_id=c.dbt_invocation_id,
            package_version=package_version(),
            owner=c.owner,
        )

    @staged("recording the run", lambda self, *a, **k: self.run_id)
    def start_run(
        self, started_at: datetime, *, planned: Sequence[str] = (), process: bool = False
    ) -> lineage.RunRecord:
        """Open this run's record for its owner (a retry of the owner's unfinished or failed run is a new
        attempt; any other existing run id raises RunIdInUseError). `planned`: the datasets it will
        enforce; `process`: this process runs the whole run (its pid and host tell a killed run)."""
        record = self._run_record(status="running", started_at=started_at)
        record.planned_datasets = json.dumps(list(planned)) if planned else None
        if process:
            record.pid, record.host = lineage.this_process()
        with self.session.transaction() as s:
            self._opened = lineage.open_run(s, record)
            return self._opened


# -- sessions and failure records --------------------------------------------------------------


@contextmanager
def _session(
    database: str | Path | None, connection: Any, dialect: str | Dialect | None
) -> Iterator[Session]:
    if connection is not None:
        session = session_for(connection, dialect)
    elif database is not None:
        session = open_database(database)
    else:
        raise ConsentGateError("no database: pass a DuckDB file path, a connection URL or a connection")
    try:
        yield session
    finally:
        session.close()


def failure_text(exc: BaseException) -> str:
    """The error recorded for a failed run: a signal by name, anything else as one safe line."""
    if termination.received():
        return str(termination.received())
    if isinstance(exc, termination.Terminated):
        return termination.MESSAGE
    if isinstance(exc, KeyboardInterrupt):
        return termination.INTERRUPTED
    return one_line(exc)


def record_failure(session: Session, record: lineage.RunRecord, exc: BaseException) -> None:
    """Record record.owner's run as failed (inserting its record if it has none yet). A run of another
    owner, or a successful one, is left as it is. Never raises: it must not hide the original error."""
    session.rollback()
    error = failure_text(exc)
    try:
        with session.transaction() as s:
            lineage.ensure_tables(s)
            closed = lineage.finish_run(
                s, record.run_id, owner=record.owner, status="failed", finished_at=utcnow(), error=error
            )
            if not closed and not lineage.read_runs(s, record.run_id, limit=1):
                lineage.ensure_run(s, replace(record, status="failed", finished_at=utcnow(), error=error))
    except Exception as inner:  # noqa: BLE001
        log.warning("could not record the failed run %s: %s", record.run_id, one_line(inner))


def _bare_record(
    run_id: str, consent_table: str, as_of: Any, context: RunContext, planned: Sequence[str] = ()
) -> lineage.RunRecord:
    as_of_dt = as_of if isinstance(as_of, datetime) else None
    pid, host = lineage.this_process()
    return lineage.RunRecord(
        run_id=run_id,
        started_at=utcnow(),
        as_of=as_of_dt,
        consent_table=consent_table,
        trigger=context.trigger,
        dag_id=context.dag_id,
        task_id=context.task_id,
        airflow_run_id=context.airflow_run_id,
        dbt_invocation_id=context.dbt_invocation_id,
        package_version=package_version(),
        owner=context.owner,
        planned_datasets=json.dumps(list(planned)) if planned else None,
        pid=pid,
        host=host,
    )


def open_run(
    session: Session,
    record: lineage.RunRecord,
    consent_table: str,
    columns: ConsentColumns | None,
    context: RunContext,
    purposes: Sequence[str] = (),
    partitions: int | str | None = None,
) -> tuple[Enforcer, Snapshot]:
    """Create the evidence tables if needed, read the consent log once as of record.as_of (deciding
    for `purposes`), and open the run record for context.owner, with record's planned datasets (and
    its pid, when it has one: this process runs the whole run). Raises RunIdInUseError for a run id
    this owner may not open. The caller records a failure (record_failure) if this raises."""
    assert record.as_of is not None
    with session.transaction() as s:
        lineage.ensure_tables(s)
    enforcer = Enforcer(
        session,
        consent_table=consent_table,
        columns=columns,
        as_of=record.as_of,
        run_id=record.run_id,
        context=context,
        partitions=partitions,
    )
    with session.transaction():
        snap = enforcer.take_snapshot(purposes)
    opened = enforcer.start_run(
        record.started_at or utcnow(), planned=record.planned() or (), process=record.pid is not None
    )
    record.attempt = opened.attempt
    return enforcer, snap


def check_policy_names(session: Session, datasets: Sequence[Dataset], consent_table: str) -> None:
    """Refuse, before anything is written, datasets whose tables collide once resolved as the engine
    resolves them: a target that is the consent log, an evidence table, any dataset's source, or
    another dataset's target. Over-long names (PostgreSQL: 63 bytes) are refused too."""
    consent = resolved_key(session, TableName.parse(consent_table, "consent table"))
    sources: dict[tuple[str, str], str] = {}
    for d in datasets:
        sources.setdefault(resolved_key(session, TableName.parse(d.source, "source table")), d.name)
    targets: dict[tuple[str, str], str] = {}
    for d in datasets:
        key = resolved_key(session, TableName.parse(d.target, "target table"))
        where = ".".join(key)
        if key == consent:
            raise TargetError(
                f"dataset {d.name}: target {d.target!r} is the consent table {where}; choose another target"
            )
        if key[1] in lineage.EVIDENCE_TABLES:
            raise TargetError(
                f"dataset {d.name}: target {d.target!r} is a consentgate evidence table; choose another target"
            )
        if sources.get(key) == d.name:
            raise TargetError(
                f"dataset {d.name}: target {d.target!r} is the source table; choose another target"
            )
        if key in sources:
            raise TargetError(
                f"dataset {d.name}: target {d.target!r} is {where}, the source of dataset {sources[key]}; "
                "choose another target"
            )
        if key in targets:
            raise TargetError(
                f"datasets {targets[key]} and {d.name} both write {where}; give each dataset its own target"
            )
        targets[key] = d.name


# -- public API ----------------------------------------------------------------------------------


def enforce(
    database: str | Path | None = None,
    *,
    source: str,
    target: str,
    subject_column: str,
    purpose: str,
    consent_table: str = "consent_events",
    columns: ConsentColumns | None = None,
    as_of: str | datetime | None = None,
    run_id: str | None = None,
    normalize: str | None = None,
    dataset: str | None = None,
    connection: Any = None,
    dialect: str | Dialect | None = None,
    context: RunContext | None = None,
    partitions: int | str | None = None,
) -> DatasetResult:
    """Replace `target` by the rows of `source` whose subject is consented for `purpose` as of `as_of`.

    Pass a DuckDB file path as `database`, or an open DB-API `connection` (DuckDB or PostgreSQL).
    Records the run in consentgate_runs / consentgate_lineage; a failure is recorded too and re-raised.
    `partitions` (DuckDB): enforce in N slices of the subject key space, or 'auto' from the memory
    limit, with the same decisions, counts and fingerprint (engine/partitioned.py).
    """
    ds = Dataset(
        name=dataset or str(target),
        source=source,
        target=target,
        subject_column=subject_column,
        purpose=purpose,
        normalize=normalize,
    )
    policy = Policy(consent_table, columns or ConsentColumns(), (), (ds,))
    result = run_policy(
        policy,
        database,
        as_of=as_of,
        run_id=run_id,
        connection=connection,
        dialect=dialect,
        context=context,
        raise_on_error=True,
        partitions=partitions,
    )
    return result.datasets[0]


def _check_datasets(session: Session, chosen: Sequence[Dataset], consent_table: str) -> None:
    for d in chosen:  # every name is checked before any SQL writes
        TableName.parse(d.source, "source table")
        TableName.parse(d.target, "target table")
        column(d.subject_column, "subject column")
        if d.normalize not in (None, *semantics.NORMALIZATIONS):
            raise ConsentGateError(f"dataset {d.name}: unknown normalisation (allowed: lower or none)")
    check_policy_names(session, chosen, consent_table)


def _enforce_all(
    session: Session, enforcer: Enforcer, chosen: Sequence[Dataset], raise_on_error: bool
) -> tuple[list[DatasetResult], dict[str, str]]:
    results: list[DatasetResult] = []
    errors: dict[str, str] = {}
    for d in chosen:
        try:
            results.append(enforcer.enforce(d))
        except Exception as exc:
            session.rollback()
            enforcer.forget_decisions()  # the rollback dropped the decided table with the dataset's work
            termination.check()  # a signal seen as an engine error: stop, do not go on
            if raise_on_error:
                raise
            errors[d.name] = one_line(exc)
            log.error("%s: %s", d.name, errors[d.name])
    return results, errors


def run_policy(
    policy: Policy,
    database: str | Path | None = None,
    *,
    as_of: str | datetime | None = None,
    run_id: str | None = None,
    connection: Any = None,
    dialect: str | Dialect | None = None,
    context: RunContext | None = None,
    datasets: Sequence[str] | None = None,
    raise_on_error: bool = False,
    partitions: int | str | None = None,
) -> RunResult:
    """Enforce every dataset of a policy (or the named ones) under one run_id and one consent snapshot.

    Each dataset is replaced in its own transaction, so one bad dataset leaves its own target as it
    was without holding back the others. The run is recorded as failed if any dataset failed, and when
    the call is interrupted (Ctrl-C, SIGTERM). The run id must be new, or a retry of this owner's
    unfinished run (context.owner, e.g. one Airflow DAG run): see docs/runs.md. `partitions`: as for
    enforce().
    """
    base = context or RunContext()
    ctx = replace(base, owner=invocation_owner(base))
    rid = run_id or new_run_id()
    chosen = [policy.dataset(n) for n in datasets] if datasets else list(policy.datasets)
    with _session(database, connection, dialect) as session, termination.sigterm_raises():
        record = _bare_record(rid, policy.consent_table, as_of, ctx, [d.name for d in chosen])
        try:
            _check_datasets(session, chosen, policy.consent_table)
            as_of_dt = parse_as_of(as_of)
            record.as_of = as_of_dt
            enforcer, snap = open_run(
                session,
                record,
                policy.consent_table,
                policy.columns,
                ctx,
                [d.purpose for d in chosen],
                partitions,
            )
            results, errors = _enforce_all(session, enforcer, chosen, raise_on_error)
            with session.transaction() as s:
                lineage.finish_run(
                    s,
                    rid,
                    owner=ctx.owner,
                    status="failed" if errors else "success",
                    finished_at=utcnow(),
                    error="; ".join(f"{k}: {v}" for k, v in errors.items()) or None,
                )
        except BaseException as exc:
            record_failure(session, record, exc)
            termination.check()  # the database may have turned the signal into its own error
            raise
        return RunResult(rid, as_of_dt, snap.fingerprint, snap.events_counted, results, errors)
