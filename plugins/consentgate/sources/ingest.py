"""Ingest consent sources into the consent log: incremental, idempotent, order-independent, fail closed.

One ingest of one source, in one transaction: read the rows from the source's watermark on, map them
to observations (kinds/) and stage them. A source that keeps history (events, Fides, OneTrust
receipts) appends every new observation. Then, for every subject and purpose touched, the latest
observation of any source (kept per source in consentgate_source_latest) is appended if it is later
than the log's latest event and decides differently; so a signal repeated on every request writes
one event, re-ingesting writes nothing, and the order and batching of observations never change
what the log decides. Every event gets `recorded_at` = this ingest's own time, so a run as of an
earlier cut-off never sees it (rule 1). Watermark, per-source state and the ingest's evidence row
commit with the events, or nothing does.
"""

from __future__ import annotations

import io
import logging
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from consentgate.engine import spark
from consentgate.engine.session import Session
from consentgate.engine.source_config import Source
from consentgate.errors import one_line
from consentgate.rule.names import TableName
from consentgate.rule.semantics import ConsentColumns, purpose_key, text_key
from consentgate.sources import log as tables
from consentgate.sources import reading
from consentgate.sources.log import IngestRecord

logger = logging.getLogger("consentgate")

RAW, STAGED = (f"_consentgate_ingest_{n}" for n in ("raw", "staged"))
#: The CTEs of the staged statement, named so that no user table they could shadow is named alike (the
#: consent log is often named without a schema).
OBS, KEYS, FLAGGED, LATEST, FIX = (
    f"_consentgate_ingest_{n}" for n in ("obs", "keys", "flagged", "latest", "fix")
)
#: The kinds of rows in STAGED (_Pipeline.stage).
NEW, LATEST_KIND, FIX_KIND = 0, 1, 2
#: The steps read more than once, computed once (DuckDB and PostgreSQL: MATERIALIZED CTEs); KEYS, a
#: DISTINCT over OBS, is computed where it is read.
_READ_AGAIN = frozenset({OBS, FLAGGED, LATEST})
#: On Spark, the steps written to a table of their own (the others are CTEs of the next table's
#: statement): OBS and FLAGGED, which several later steps read, and STAGED, which the append and
#: store_latest read. LATEST, read twice by STAGED's statement, is computed twice there: a table of
#: its own cost more than that (an ingest of two sources: 14.1-14.6 s, against 12.1-12.9 s).
SPARK_TABLES = frozenset({OBS, FLAGGED, STAGED})
_STAGE_COLUMNS = (
    "subject_key", "pkey", "purpose", "status", "severity", "event_ts", "expires_at", "policy_version", "label",
    "obs_id",
)  # fmt: skip
#: STAGED's columns, after `kind`.
_STAGED_COLUMNS = (*_STAGE_COLUMNS, "staged", "to_write")
_RAW_TYPES = (
    ("subject_key", "VARCHAR"), ("pkey", "VARCHAR"), ("purpose", "VARCHAR"), ("status", "VARCHAR"),
    ("severity", "INTEGER"), ("event_ts", "TIMESTAMP"), ("expires_at", "TIMESTAMP"), ("policy_version", "VARCHAR"),
    ("label", "VARCHAR"), ("obs_id", "VARCHAR"),
)  # fmt: skip
_RAW_DDL = ", ".join(f"{n} {t.lower()}" for n, t in _RAW_TYPES)


def _csv_value(v: Any) -> str:
    if v is None:
        return "\\N"  # unquoted: the one spelling of null; every value is quoted
    text = v.isoformat(sep=" ") if isinstance(v, datetime) else str(v)
    return '"' + text.replace('"', '""') + '"'


def _csv_line(row: tuple[Any, ...]) -> str:
    return ",".join(_csv_value(v) for v in row) + "\n"


_ORDER = "event_ts, severity DESC, staged, obs_id"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class _Pipeline:
    """The SQL of one ingest, on one session. Every scratch table is computed before the one statement
    that appends to the consent log, so on Spark (no transactions) that append is the only write the
    decisions can see; the per-source state is written after it, and committed by the ingest record."""

    def __init__(self, session: Session, log: TableName) -> None:
        self.s = session
        self.d = session.dialect
        self.log = log.sql()
        self.raw_table = ""

    def t(self, name: str) -> str:
        return self.d.temp_table(name)

    def temp(self, name: str, select: str, params: Sequence[Any] = ()) -> None:
        self.s.scratch(self.t(name), select, params, durable=True)  # on Spark: never recomputed

    def _spark_raw_columns(self) -> list[tuple[str, str]]:
        return [(n, self.d.text_type if t == "VARCHAR" else t) for n, t in _RAW_TYPES]

    def create_raw(self) -> None:
        if not self.d.transactional:
            self.raw_table = spark.durable_table(self.s, self.t(RAW), self._spark_raw_columns())
            return
        self.s.run(f"DROP TABLE IF EXISTS {self.t(RAW)}")
        self.s.run(f"CREATE TEMP TABLE {self.t(RAW)} ({_RAW_DDL})")

    def insert_raw(self, rows: list[tuple[Any, ...]], spool: IO[str]) -> None:
        """Stage rows in bulk: PostgreSQL by COPY per batch; DuckDB through a CSV spool file loaded once
        (load_raw); Spark in one DataFrame (or INSERT ... VALUES over Thrift) per batch. Either way
        memory holds one batch."""
        if not self.d.transactional:
            spark.append_rows(self.s, self.raw_table, self._spark_raw_columns(), rows)
            return
        text = "".join(_csv_line(r) for r in rows)
        if self.d.name == "duckdb":
            spool.write(text)
            return
        copy = f"COPY {self.t(RAW)} FROM STDIN WITH (FORMAT csv, NULL '\\N')"
        cursor = self.s._cursor  # noqa: SLF001 - COPY has no DB-API spelling
        if hasattr(cursor, "copy_expert"):  # psycopg2
            cursor.copy_expert(copy, io.StringIO(text))
            return
        with cursor.copy(copy) as stream:  # psycopg 3 (what Airflow's PostgresHook gives with SQLAlchemy 2)
            stream.write(text)

    def load_raw(self, spool: IO[str]) -> None:
        if self.d.name != "duckdb":
            return
        spool.flush()
        types = ", ".join(f"'{n}': '{t}'" for n, t in _RAW_TYPES)
        self.s.run(
            f"INSERT INTO {self.t(RAW)} SELECT * FROM read_csv(?, header = false, columns = {{{types}}}, "
            "nullstr = '\\N', allow_quoted_nulls = false, quote = '\"', escape = '\"', delim = ',', "
            "auto_detect = false)",
            [spool.name],
        )

    def log_rows(self) -> str:
        """The log's events as the rule sees them: keys trimmed, statuses normalised, a severity."""
        status = purpose_key(self.d, "l.status")
        norm = f"CASE WHEN {status} IN ('granted', 'denied', 'withdrawn') THEN {status} ELSE 'invalid' END"
        sev = f"CASE {norm} WHEN 'withdrawn' THEN 0 WHEN 'denied' THEN 1 WHEN 'granted' THEN 4 ELSE 2 END"
        return (
            f"SELECT {text_key(self.d, 'l.subject_id', None)} AS subject_key, {purpose_key(self.d, 'l.purpose')} AS pkey, "
            f"{norm} AS status, {sev} AS severity, l.event_ts, l.expires_at, coalesce(l.event_id, '') AS obs_id "
            f"FROM {self.log} l WHERE l.event_ts IS NOT NULL AND l.subject_id IS NOT NULL AND l.purpose IS NOT NULL"
        )

    def ref(self, name: str) -> str:
        """How the staged statement's SQL names step `name`: its CTE, or on Spark the table it was
        written to (SPARK_TABLES)."""
        return self.t(name) if name in SPARK_TABLES and not self.d.transactional else name

    def stage(self, source: str, history: bool) -> None:
        """STAGED: before anything is written, every row the append and the state need, by `kind`: the
        new observations and the log's events of the keys they touch, with refusals resolved and
        `to_write` set (NEW); the source's latest observation per key touched (LATEST); the fixes (FIX).

        On DuckDB and PostgreSQL it is one statement, its steps CTEs (those read more than once
        MATERIALIZED). Spark computes a CTE again at every reference (the plan of one statement had 59
        shuffles), so there the steps SPARK_TABLES names are tables written once (durable scratch: the
        append cannot change what is read after it), the others CTEs of the next statement."""
        p, L = self.d.param, tables.SOURCE_LATEST
        steps = [
            (OBS, self._observations(), ()),
            (KEYS, f"SELECT DISTINCT subject_key, pkey FROM {self.ref(OBS)}", ()),
            (FLAGGED, self._flagged(history), ()),
            (LATEST, self._latest(p, L), (source,)),
            (FIX, self._fixes(p, L), (source,)),
        ]
        staged = " UNION ALL ".join(
            [
                f"SELECT {NEW} AS kind, {', '.join(_STAGED_COLUMNS)} FROM {self.ref(FLAGGED)}",
                f"SELECT {LATEST_KIND} AS kind, {', '.join(_STAGE_COLUMNS)}, 1 AS staged, 0 AS to_write "
                f"FROM {self.ref(LATEST)}",
                f"SELECT {FIX_KIND} AS kind, subject_key, CAST(NULL AS {self.d.text_type}) AS pkey, purpose, "
                "status, CAST(NULL AS INTEGER) AS severity, event_ts, expires_at, policy_version, label, obs_id, "
                f"1 AS staged, 1 AS to_write FROM {self.ref(FIX)}",
            ]
        )
        if self.d.transactional:
            ctes = ", ".join(
                f"{name} AS {'MATERIALIZED ' if name in _READ_AGAIN else ''}({sql})" for name, sql, _ in steps
            )
            self.temp(STAGED, f"WITH {ctes} {staged}", [v for _, _, params in steps for v in params])
            return
        pending: list[tuple[str, str, Sequence[Any]]] = []  # CTEs so far: every later statement may read them
        for name, sql, params in [*steps, (STAGED, staged, ())]:
            if name not in SPARK_TABLES:
                pending.append((name, sql, params))
                continue
            ctes = ", ".join(f"{n} AS ({q})" for n, q, _ in pending)
            self.temp(
                name, f"WITH {ctes} {sql}" if ctes else sql, [*(v for *_, ps in pending for v in ps), *params]
            )

    def _touched(self, alias: str, pkey: str) -> str:
        """Whether the row `alias` is of a key this ingest touches (KEYS)."""
        return (
            f"EXISTS (SELECT 1 FROM {self.ref(KEYS)} k WHERE k.subject_key = {alias}.subject_key "
            f"AND k.pkey = {alias}.{pkey})"
        )

    def _observations(self) -> str:
        """The staged observations not in the log yet, one row per (key, purpose key, event id)."""
        cols = ", ".join(
            f"min({c}) AS {c}" for c in _STAGE_COLUMNS if c not in ("subject_key", "pkey", "obs_id")
        )
        return (
            f"SELECT r.subject_key, r.pkey, r.obs_id, {cols} FROM {self.t(RAW)} r "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.log} e WHERE e.event_id = r.obs_id) "
            "GROUP BY r.subject_key, r.pkey, r.obs_id"
        )

    def _flagged(self, history: bool) -> str:
        """The log's events of the keys touched (staged 0) and the new observations (staged 1), with
        refusals resolved (withdrawn after an earlier grant of the key, in the log or the batch, else
        denied) and a `to_write` flag: every new observation of a source that keeps history (events,
        Fides, OneTrust receipts: each row a choice a person made); none of a signal source (a header
        or string repeated on every request), whose latest observation is written by the fixes only
        when it changes the decision."""
        text = self.d.text_type
        carried = f"CAST(NULL AS {text}) AS purpose, CAST(NULL AS {text}) AS policy_version, CAST(NULL AS {text}) AS label"
        sequence = (
            f"SELECT x.*, {carried}, 0 AS staged FROM ({self.log_rows()}) x "
            f"WHERE {self._touched('x', 'pkey')} "
            "UNION ALL SELECT subject_key, pkey, status, severity, event_ts, expires_at, obs_id, purpose, "
            f"policy_version, label, 1 AS staged FROM {self.ref(OBS)}"
        )
        w = f"PARTITION BY subject_key, pkey ORDER BY {_ORDER}"
        granted_before = f"max(CASE WHEN status = 'granted' THEN 1 ELSE 0 END) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        resolved = (
            "SELECT subject_key, pkey, severity, event_ts, expires_at, obs_id, purpose, policy_version, label, staged, "
            "CASE WHEN status <> 'negative' THEN status "
            f"WHEN coalesce({granted_before}, 0) = 1 THEN 'withdrawn' ELSE 'denied' END AS status FROM ({sequence}) q"
        )
        write = "CASE WHEN staged = 1 THEN 1 ELSE 0 END" if history else "0"
        return f"SELECT {', '.join(_STAGE_COLUMNS)}, staged, {write} AS to_write FROM ({resolved}) z"

    def _latest(self, p: str, L: str) -> str:
        """The source's latest observation per key touched, as consentgate_source_latest will hold it
        after this ingest (store_latest). One parameter: the source."""
        cols = ", ".join(_STAGE_COLUMNS)
        candidates = (
            f"SELECT {cols} FROM {self.ref(FLAGGED)} WHERE staged = 1 UNION ALL "
            f"SELECT subject_key, purpose_key, purpose, status, severity, event_ts, expires_at, policy_version, label, "
            f"obs_id FROM {L} WHERE source = {p}"
        )
        ranked = (
            f"SELECT c.*, row_number() OVER (PARTITION BY subject_key, pkey ORDER BY event_ts DESC, severity, "
            f"obs_id DESC) AS rn FROM ({candidates}) c "
            f"WHERE {self._touched('c', 'pkey')}"
        )
        return f"SELECT {cols} FROM ({ranked}) z WHERE rn = 1"

    def _fixes(self, p: str, L: str) -> str:
        """For each key touched, the latest observation of any source (the state after store_latest:
        the others' as stored, this source's latest) where the log's latest event after the append (the
        log's and the new ones to write) is earlier and decides differently (grant or not, and a grant's
        expiry). One parameter: the source."""
        order = "ORDER BY event_ts DESC, severity, obs_id DESC"
        state = (
            "SELECT subject_key, purpose_key, purpose, status, severity, event_ts, expires_at, policy_version, "
            f"label, obs_id FROM {L} c WHERE c.source <> {p} "
            f"AND {self._touched('c', 'purpose_key')} UNION ALL "
            "SELECT subject_key, pkey, purpose, status, severity, event_ts, expires_at, policy_version, label, "
            f"obs_id FROM {self.ref(LATEST)}"
        )
        overall = (
            f"SELECT * FROM (SELECT c.*, row_number() OVER (PARTITION BY c.subject_key, c.purpose_key {order}) AS rn "
            f"FROM ({state}) c) o WHERE rn = 1"
        )
        in_log = f"SELECT * FROM {self.ref(FLAGGED)} WHERE staged = 0 OR to_write = 1"
        latest = f"SELECT * FROM (SELECT f.*, row_number() OVER (PARTITION BY subject_key, pkey {order}) AS rn FROM ({in_log}) f) l WHERE rn = 1"
        differs = (
            "(o.status = 'granted') <> (l.status = 'granted') OR (o.status = 'granted' AND "
            "(o.expires_at <> l.expires_at OR (o.expires_at IS NULL) <> (l.expires_at IS NULL)))"
        )
        return (
            "SELECT o.subject_key, o.purpose, o.status, o.event_ts, o.expires_at, o.label, o.policy_version, o.obs_id "
            f"FROM ({overall}) o LEFT JOIN ({latest}) l ON l.subject_key = o.subject_key AND l.pkey = o.purpose_key "
            "WHERE (l.subject_key IS NULL OR o.event_ts > l.event_ts OR (o.event_ts = l.event_ts AND o.severity < l.severity)) "
            f"AND (l.subject_key IS NULL OR {differs}) "
            f"AND NOT EXISTS (SELECT 1 FROM {self.log} e WHERE e.event_id = o.obs_id) "
            f"AND NOT EXISTS (SELECT 1 FROM {self.ref(FLAGGED)} w WHERE w.to_write = 1 AND w.obs_id = o.obs_id)"
        )

    def _to_append(self) -> str:
        return f"(kind = {NEW} AND to_write = 1) OR kind = {FIX_KIND}"

    def append(self, recorded_at: datetime) -> None:
        """The one write to the consent log: the new observations to write and the fixes."""
        p = self.d.param
        self.s.run(
            f"INSERT INTO {self.log} (subject_id, purpose, status, event_ts, recorded_at, expires_at, source, "
            f"policy_version, event_id) SELECT subject_key, purpose, status, event_ts, {p}, expires_at, label, "
            f"policy_version, obs_id FROM {self.t(STAGED)} WHERE {self._to_append()}",
            [recorded_at],
        )

    def written(self) -> int:
        """How many events append() writes: the new observations to write and the fixes."""
        return int(self.s.one(f"SELECT count(*) FROM {self.t(STAGED)} WHERE {self._to_append()}")[0])

    def store_latest(self, source: str, ingest_id: str) -> None:
        """The source's latest observations (LATEST_KIND) into consentgate_source_latest (on Spark, new
        versions its ingest's record commits). Every key touched has one."""
        p, L = self.d.param, tables.SOURCE_LATEST
        cols = ", ".join(_STAGE_COLUMNS)
        latest = f"SELECT {cols} FROM {self.t(STAGED)} WHERE kind = {LATEST_KIND}"
        into = "source, subject_key, purpose_key, purpose, status, severity, event_ts, expires_at, policy_version, label, obs_id, ingest_id"
        if self.d.transactional:
            touched = (
                f"EXISTS (SELECT 1 FROM {self.t(STAGED)} t WHERE t.kind = {LATEST_KIND} "
                f"AND t.subject_key = {L}.subject_key AND t.pkey = {L}.purpose_key)"
            )
            self.s.run(f"DELETE FROM {L} WHERE source = {p} AND {touched}", [source])
            self.s.run(
                f"INSERT INTO {L} ({into}) SELECT {p}, {cols}, {p} FROM ({latest}) z", [source, ingest_id]
            )
            return
        self.s.run(
            f"INSERT INTO {spark.log_table(L)} ({into}, {spark.VERSION}) SELECT {p}, {cols}, {p}, {p} FROM ({latest}) z",
            [source, ingest_id, spark.next_version()],
        )

    def drop_scratch(self) -> None:
        """Drop the scratch tables (on Spark the next source's replace them, and closing the
        session drops the last: spark.SparkConnection.release)."""
        if not self.d.transactional:
            return
        for name in (RAW, STAGED):
            self.s.run(f"DROP TABLE IF EXISTS {self.t(name)}")


def _stage(session: Session, pipe: _Pipeline, p: reading.ReadPlan, record: IngestRecord) -> int:
    """Stage the observations read past the watermark; returns how many."""
    pipe.create_raw()
    with tempfile.NamedTemporaryFile(
        "w", suffix=".csv", prefix="consentgate-ingest-", encoding="utf-8"
    ) as spool:
        staged = _stage_batches(session, pipe, p, record, spool)
        with session.stage("staging the observations of", p.source.name):
            pipe.load_raw(spool)
    if record.watermark_to is None:
        record.watermark_to = record.watermark_from
    return staged


def _stage_batches(
    session: Session, pipe: _Pipeline, p: reading.ReadPlan, record: IngestRecord, spool: IO[str]
) -> int:
    staged = 0
    for batch in reading.read(session, p, record.watermark_from):
        staged += len(batch.rows)
        record.observations_read += batch.read
        for reason, n in batch.rejected.items():
            record.rejected[reason] = record.rejected.get(reason, 0) + n
        if batch.watermark is not None and (
            record.watermark_to is None or batch.watermark > record.watermark_to
        ):
            record.watermark_to = batch.watermark
        with session.stage("staging the observations of", p.source.name):
            pipe.insert_raw(batch.rows, spool)
    return staged


def _ingest_one(session: Session, p: reading.ReadPlan, log_table: TableName, record: IngestRecord) -> None:
    pipe = _Pipeline(session, log_table)
    if not session.dialect.transactional:  # what other Spark sessions wrote since this one last looked
        for table in (p.table, log_table, *(spark.log_table(t) for t in tables.TABLES)):
            spark.refresh(session, table)
    record.watermark_from = tables.watermark(session, p.source.name)
    staged = _stage(session, pipe, p, record)
    record.recorded_at = utcnow()  # taken after reading: never earlier than what it records
    # No observation staged: no key is touched, so nothing can be written (nor any state change).
    with session.stage("appending to the consent log", log_table):
        if staged:
            pipe.stage(p.source.name, p.source.keeps_history)
            written = pipe.written()
            pipe.append(record.recorded_at)
            record.events_written = written
            pipe.store_latest(p.source.name, record.ingest_id)
        pipe.drop_scratch()
    record.finished_at = utcnow()
    record.status = "success"
    with session.stage("recording the ingest", p.source.name):
        tables.set_watermark(session, record)
        tables.write_record(session, record)


def _record_failure(session: Session, record: IngestRecord, exc: BaseException) -> None:
    """Record the failed ingest (log, watermark and state stay as they were). Never raises."""
    session.rollback()
    record.status, record.finished_at, record.error = "failed", utcnow(), one_line(exc)
    if session.dialect.transactional or not record.events_written:  # on Spark, appended events stay
        record.events_written, record.recorded_at = 0, None
    try:
        with session.transaction() as s:
            tables.ensure_tables(s)
            tables.write_record(s, record)
    except Exception as inner:  # noqa: BLE001 - must not hide the original error
        logger.warning("could not record the failed ingest of %s: %s", record.source, one_line(inner))


def _record(ingest_id: str, source: Source, consent_table: str) -> IngestRecord:
    return IngestRecord(ingest_id, source.name, source.kind.value, source.table, consent_table, utcnow())


def _plans(
    session: Session, sources: Sequence[Source], ingest_id: str, consent_table: str
) -> list[reading.ReadPlan]:
    """Every source checked before anything is ingested; the first unreadable one is recorded and raised."""
    plans = []
    for src in sources:
        try:
            with session.stage(f"checking consent source {src.name}", src.table):
                plans.append(reading.plan(session, src))
        except Exception as exc:
            _record_failure(session, _record(ingest_id, src, consent_table), exc)
            raise
    return plans


def ingest(
    session: Session,
    sources: Sequence[Source],
    *,
    consent_table: str = "consent_events",
    columns: ConsentColumns | None = None,
    ingest_id: str | None = None,
    raise_on_error: bool = True,
) -> list[IngestRecord]:
    """Ingest each source (in its own transaction) into the consent log; returns one record per source.

    Every source's table and columns are checked before anything is written: one that cannot be read
    raises IngestError and nothing is ingested. A source failing later is rolled back, recorded as
    failed, and raised (after the other sources, when raise_on_error is False it is only recorded).
    """
    iid = ingest_id or uuid.uuid4().hex
    with session.transaction() as s:
        tables.ensure_tables(s)
        log_table = tables.ensure_log(s, consent_table, columns)
    plans = _plans(session, sources, iid, str(log_table))
    out: list[IngestRecord] = []
    for p in plans:
        record = _record(iid, p.source, str(log_table))
        try:
            with session.transaction():
                _ingest_one(session, p, log_table, record)
        except BaseException as exc:
            _record_failure(session, record, exc)
            out.append(record)
            if raise_on_error or not isinstance(exc, Exception):
                raise
            continue
        logger.info(
            "ingested %s: %d observations read, %d events written",
            record.source,
            record.observations_read,
            record.events_written,
        )
        out.append(record)
    return out
