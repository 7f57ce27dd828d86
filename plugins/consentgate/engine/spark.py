"""Spark as an engine: a SparkSession (Spark Connect or classic) behind the DB-API shape `Session` drives,
and the two things Spark lacks, done without transactions.

- Atomic replace: every run writes a target's rows to a table of its own (`<target>__cg_<token>`);
  readers see the target as a view, switched to the new table by one `CREATE OR REPLACE VIEW` (one
  metastore operation) after the run's lineage row is written. A run killed before the switch leaves
  readers on the old table; older run tables are dropped after the switch (the previous one is kept
  for queries still reading it).
- Evidence: `consentgate_runs` and `consentgate_lineage` are views over append-only `*_log` tables;
  every change of a run is a new row version, and the view shows the latest. The `success` version of a
  run is written last, after every switch, so a run killed at any point never shows as `success`.

pyspark is imported only when a session is opened (`open_spark`), never at import time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from consentgate.errors import DatabaseUnavailableError, TargetError, error_class, mask_url, raise_unchained
from consentgate.rule.names import TableName, quote

#: pyspark's client logs the full server message of every failed statement (it can quote row values):
#: consentgate reports failures itself, through errors.withheld.
QUERY_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
#: Separates a target's name from the token of a run's own table: `web_events__cg_20261201T020000_1a2b3c4d`.
RUN_TABLE_MARK = "__cg_"
#: View properties naming the run table readers see and the run that wrote it.
TABLE_PROPERTY, RUN_PROPERTY = "consentgate.table", "consentgate.run_id"
#: The physical, append-only table of each evidence view, and the columns naming one row of it.
LOG_SUFFIX = "_log"
VERSION = "version"
#: A version whose `trigger` is this hides its key from the view: the row is gone (dbt's log_lineage
#: writes one for a model's lineage row that a later invocation of the run no longer has).
TOMBSTONE = "superseded"
#: Retries of the first round trip to a Spark Connect server before it counts as unreachable.
PROBE_RETRIES = 4
#: Error conditions of DESCRIBE for a relation that does not exist.
NOT_FOUND = ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND")
_DDL_TABLE = re.compile(r"create\s+table\s+if\s+not\s+exists\s+(\w+)\s*\((.*)\)\s*$", re.I | re.S)


def to_spark_sql(sql: str) -> str:
    """`sql` with "double-quoted" identifiers (rule.names.quote) as Spark's `backquoted` ones; string
    literals (single quotes, with '' and backslash escapes) are copied unchanged."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif c == '"':
            j = i + 1
            ident: list[str] = []
            while j < n:
                if sql[j] == '"':
                    if j + 1 < n and sql[j + 1] == '"':
                        ident.append('"')
                        j += 2
                        continue
                    break
                ident.append(sql[j])
                j += 1
            out.append("`" + "".join(ident).replace("`", "``") + "`")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _arg(value: Any) -> Any:
    """A statement parameter as Spark reads it: a naive datetime is UTC (pyspark would read it in the
    client's local time zone)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _value(value: Any) -> Any:
    """A result value: timestamps as naive UTC, like the other engines return them."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class SparkCursor:
    """The DB-API cursor subset Session uses: execute with `?` parameters, fetchall, description."""

    def __init__(self, spark: Any) -> None:
        self._spark = spark
        self._frame: Any = None
        self._rows: list[tuple[Any, ...]] | None = None
        self._names: list[str] = []
        self._stream: Iterator[Any] | None = None
        self._pending: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        args = [_arg(p) for p in params] if params else None
        # Commands (DDL, INSERT) run here; a query runs when its rows are fetched.
        self._frame = self._spark.sql(to_spark_sql(sql), args=args)
        self._rows, self._stream, self._pending = None, None, []

    def _fetch(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            table = self._frame.toArrow()  # exact types; timestamps in UTC whatever the client's zone
            self._names = list(table.column_names)
            cols = [[_value(v) for v in c.to_pylist()] for c in table.columns]
            self._rows = list(zip(*cols, strict=True)) if cols else []
        return self._rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._fetch()

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        """The next `size` rows, streamed: the client holds one Arrow batch of the result at a time
        (Spark Connect; a classic session fetches the result once)."""
        if self._stream is None:
            self._stream = self._batches()
        out: list[tuple[Any, ...]] = []
        while len(out) < size:
            if not self._pending:
                table = next(self._stream, None)
                if table is None:
                    break
                cols = [[_value(v) for v in c.to_pylist()] for c in table.columns]
                self._pending = list(zip(*cols, strict=True)) if cols else []
                continue
            take = size - len(out)
            out.extend(self._pending[:take])
            self._pending = self._pending[take:]
        return out

    def _batches(self) -> Iterator[Any]:
        frame = self._frame
        client = getattr(getattr(frame, "_session", None), "client", None)
        if client is None or not hasattr(client, "to_table_as_iterator"):
            yield frame.toArrow()
            return
        # What DataFrame.toLocalIterator streams, kept as Arrow: exact types, timestamps in UTC.
        for item in client.to_table_as_iterator(frame._plan.to_proto(client), frame._plan.observations):  # noqa: SLF001
            if hasattr(item, "column_names"):  # a pyarrow Table (the first item is the schema)
                yield item

    def close(self) -> None:
        self._stream, self._pending, self._frame = None, [], None

    @property
    def description(self) -> list[tuple[str, None, None, None, None, None, None]]:
        self._fetch()
        return [(name, None, None, None, None, None, None) for name in self._names]


class SparkConnection:
    """A SparkSession as the connection a Session wraps. There are no transactions: commit and rollback
    do nothing (`autocommit` is False, so Session issues no BEGIN). The session's time zone is set to UTC
    (the rule's literals and casts are UTC)."""

    autocommit = False

    def __init__(self, spark: Any, *, owned: bool = False) -> None:
        for name in QUERY_LOGGERS:
            logging.getLogger(name).disabled = True
        self.spark = spark
        self._owned = owned
        self.durable: dict[str, str] = {}  # scratch name -> the table behind it (durable_scratch)
        self.swept = False  # whether killed runs' scratch tables were looked for (durable_scratch)
        spark.conf.set("spark.sql.session.timeZone", "UTC")

    def cursor(self) -> SparkCursor:
        return SparkCursor(self.spark)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.release()
        if self._owned:
            self.spark.stop()

    def release(self) -> None:
        """Drop the tables this connection wrote for durable scratch (the run's consent snapshot)."""
        for table in self.durable.values():
            with suppress(Exception):  # a table left behind is dropped by a later run (SCRATCH_MAX_AGE)
                self.spark.sql(f"DROP TABLE IF EXISTS {to_spark_sql(table)}")
        self.durable.clear()

    def columns(self, schema: str, name: str) -> list[tuple[str, str, str, str]]:
        """(schema, table, column, type) of a table or view, as information_schema would list them;
        empty when it does not exist. Spark's catalog is case-insensitive: names come back as stored."""
        ref = f"{quote(schema)}.{quote(name)}"
        try:
            rows = self.spark.sql(f"DESCRIBE TABLE {to_spark_sql(ref)}").collect()
        except Exception as exc:
            if _condition(exc) in NOT_FOUND:
                return []
            raise
        return described_columns(rows, schema, name)


def described_columns(rows: Sequence[Any], schema: str, name: str) -> list[tuple[str, str, str, str]]:
    """(schema, table, column, type) from the rows of `DESCRIBE TABLE schema.name`."""
    found: list[tuple[str, str, str, str]] = []
    for row in rows:
        col, dtype = str(row[0] or ""), str(row[1] or "")
        if not col or col.startswith("#"):
            break  # partition and detail sections follow the columns
        found.append((schema.lower(), name.lower(), col, dtype))
    return found


def _condition(exc: BaseException) -> str | None:
    """The error condition of a pyspark exception (`TABLE_OR_VIEW_NOT_FOUND`), else None."""
    get = getattr(exc, "getCondition", None)
    return str(get()) if callable(get) and get() else None


def _probe(spark: Any) -> None:
    """One round trip, retried for seconds, not the client's default of ten minutes and more."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    client = spark.client
    policies = client.get_retry_policies()
    client.set_retry_policies([DefaultPolicy(max_retries=PROBE_RETRIES, max_backoff=2000)])
    try:
        spark.sql("SELECT 1").collect()
    except Exception:
        with suppress(Exception):  # with the short retries, or its exit handler retries for minutes
            spark.stop()
        raise
    client.set_retry_policies(policies)


def open_spark(url: str) -> Any:
    """A new Spark Connect session for `sc://host:port[/;token=...]` (the token is never printed)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise_unchained(DatabaseUnavailableError("sc:// URLs need pyspark: pip install 'consentgate[spark]'"))
    try:
        spark = SparkSession.builder.remote(url).create()
        _probe(spark)  # the builder connects lazily: fail here, naming the URL
    except Exception as exc:  # noqa: BLE001 - any client error means: not reachable
        failure = DatabaseUnavailableError(
            f"cannot connect to Spark Connect at {mask_url(url)!r} ({error_class(exc)}: server unreachable, "
            "token refused or wrong port)"
        )
    else:
        return spark
    raise_unchained(failure)


def is_spark_session(connection: Any) -> bool:
    return type(connection).__module__.startswith("pyspark.")


def refresh(session: Any, table: Any) -> None:
    """Drop this session's cached metadata and file listing of `table` (a TableName or SQL name):
    Spark keeps them per session, so without it a session that read a table before would not see
    rows another session appended since (a withdrawal appended by tonight's ingest, for one). A table
    that does not exist is left to the caller's own check, which names it."""
    name = table.sql() if hasattr(table, "sql") else str(table)
    cursor = session.connection.cursor()

    def run() -> None:
        try:
            cursor.execute(f"REFRESH TABLE {name}")
        except Exception as exc:
            if _condition(exc) not in NOT_FOUND:
                raise

    with session.stage("refreshing", name):
        session._call(run)  # noqa: SLF001 - one statement, its not-found condition read here


#: The most bytes of subject keys an enforcement on Spark broadcasts to every task instead of shuffling
#: the source to meet them: the decided keys (semantics.decided_rows and decided_consented_select, no
#: key table), else the key table's consented values (semantics.consented_select). Spark's own
#: threshold, 10 MB, is for sizes it can prove, and it cannot prove the size of a cache: without the
#: hint, the write of 10M rows took 22 s instead of 7.6 s (docs/performance.md). 64 MiB of keys costs
#: the driver, which builds the broadcast, a few hundred MB at most.
BROADCAST_KEY_BYTES = 64 * 2**20


def observes(session: Any) -> bool:
    """Whether `session` runs on a SparkSession (Connect or classic), whose writes can observe metrics;
    the Thrift server takes SQL only."""
    return getattr(session.connection, "spark", None) is not None


def new_observation(spark: Any) -> Any:
    """A new Observation of the kind `spark` reports metrics to (Spark Connect's or the classic one)."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        from pyspark.sql.connect.observation import Observation
    else:
        from pyspark.sql.observation import Observation
    return Observation(f"consentgate_{_token()}")


def observed_rows(spark: Any, source: str, decided: Any, observation: Any) -> Any:
    """The DataFrame of the rows of `source` (SQL name) that `decided` (semantics.ObservedDecisions)
    keeps, each joined to its decision (broadcast), with the counts of every row observed by
    `observation` (c0, c1, ... in the order of decided.counts) when an action runs it."""
    from pyspark.sql import functions as F

    metrics = [F.expr(to_spark_sql(c)).alias(f"c{i}") for i, c in enumerate(decided.counts)]
    rows = spark.sql(f"SELECT * FROM {to_spark_sql(source)}").alias("s")
    decisions = F.broadcast(spark.sql(f"SELECT * FROM {to_spark_sql(decided.decided)}").alias("dd"))
    joined = rows.join(decisions, F.expr(to_spark_sql(decided.on)), "left")
    return joined.observe(observation, *metrics).where(F.expr(to_spark_sql(decided.consented))).select("s.*")


def observed_counts(observation: Any, decided: Any) -> list[int]:
    """The counts an action of observed_rows reported, in the order of decided.counts."""
    values = observation.get
    return [int(values[f"c{i}"] or 0) for i in range(len(decided.counts))]


def write_observed(session: Any, table: str, source: str, decided: Any) -> list[int]:
    """Write observed_rows to the new parquet table `table` and return its counts, observed while the
    rows were written: one pass over the source, instead of one to count and one to write."""
    spark = session.connection.spark
    observation = new_observation(spark)

    def write() -> list[int]:
        observed_rows(spark, source, decided, observation).write.format("parquet").saveAsTable(
            to_spark_sql(table)
        )
        return observed_counts(observation, decided)

    return session._call(write)  # noqa: SLF001 - a DataFrame write, its failure reported as a statement's


# -- durable scratch ---------------------------------------------------------------------------------

#: Durable scratch tables (`_consentgate_snapshot_<token>`) older than this are left by killed runs.
SCRATCH_MAX_AGE = timedelta(days=1)
DURABLE_MARK = "_consentgate_scratch_"


def durable_scratch(
    session: Any, name: str, select_sql: str, params: Sequence[Any], observe: Sequence[str] = ()
) -> list[Any] | None:
    """Scratch table `name` (a temporary view) over a table written once, in the current schema.

    A cached view is no snapshot on Spark: an INSERT into a table the view reads re-computes the cache.
    So the consent snapshot is written to a table of its own, which no one else writes, and dropped
    when the session is closed (killed runs' are dropped by a later run after SCRATCH_MAX_AGE).

    `observe`: aggregates over the rows written (SQL over select_sql's columns, none of them ever
    null). On a SparkSession they are observed in the write's own job and returned, in order (the
    same values as one query over the table, without its job); elsewhere, or where the write did not
    report them all, None: query the table."""
    conn: SparkConnection = session.connection
    previous = conn.durable.pop(name, None)
    token = _token()
    table = f"{quote(DURABLE_MARK + token)}"
    observed = None
    if observe and observes(session):
        observed = _write_observed_table(session, table, select_sql, params, observe)
    else:
        session.run(f"CREATE TABLE {table} USING parquet AS {select_sql}", params)
    conn.durable[name] = table
    session.run(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS SELECT * FROM {table}")
    if previous:
        session.run(f"DROP TABLE IF EXISTS {previous}")
    if not conn.swept:  # once per connection
        conn.swept = True
        _drop_left_behind(session)
    return observed


def _write_observed_table(
    session: Any, table: str, select_sql: str, params: Sequence[Any], observe: Sequence[str]
) -> list[Any] | None:
    """CREATE TABLE `table` USING parquet AS select_sql, as a DataFrame write whose job also computes
    the aggregates `observe` over the rows it writes; their values, or None if Spark reported none."""
    from pyspark.sql import functions as F

    spark = session.connection.spark
    observation = new_observation(spark)
    metrics = [F.expr(to_spark_sql(m)).alias(f"m{i}") for i, m in enumerate(observe)]

    def write() -> list[Any] | None:
        args = [_arg(p) for p in params] or None
        frame = spark.sql(to_spark_sql(select_sql), args=args).observe(observation, *metrics)
        frame.write.format("parquet").saveAsTable(to_spark_sql(table))
        values = [observation.get.get(f"m{i}") for i in range(len(metrics))]
        return None if any(v is None for v in values) else values  # none is null when reported

    return session._call(write)  # noqa: SLF001 - a DataFrame write, its failure reported as a statement's


def durable_table(session: Any, name: str, columns: Sequence[tuple[str, str]]) -> str:
    """An empty durable scratch table `name` (a temporary view over a table of its own, as
    durable_scratch) with these (name, Spark type) columns; returns the table behind it, for writes."""
    conn: SparkConnection = session.connection
    drop_durable(session, name)
    table = quote(DURABLE_MARK + _token())
    typed = ", ".join(f"{quote(n)} {t}" for n, t in columns)
    session.run(f"CREATE TABLE {table} ({typed}) USING parquet")
    conn.durable[name] = table
    session.run(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS SELECT * FROM {table}")
    return table


def drop_durable(session: Any, name: str) -> None:
    """Drop the durable scratch `name` (its view and the table behind it), if this session made one."""
    table = session.connection.durable.pop(name, None)
    if table:
        session.run(f"DROP VIEW IF EXISTS {name}")
        session.run(f"DROP TABLE IF EXISTS {table}")


#: Rows per INSERT ... VALUES statement where no DataFrame can carry them (the Thrift server).
VALUES_ROWS = 1000


def append_rows(
    session: Any, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Append Python rows to `table`: through one Arrow-backed DataFrame on a SparkSession, else in
    INSERT ... VALUES statements with parameters (rendered as literals, never as text)."""
    if not rows:
        return
    spark = getattr(session.connection, "spark", None)
    if spark is not None:
        from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

        types = {"STRING": StringType(), "INTEGER": IntegerType(), "TIMESTAMP": TimestampType()}
        schema = StructType([StructField(n, types[t]) for n, t in columns])
        frame = spark.createDataFrame([tuple(_arg(v) for v in r) for r in rows], schema)
        session._call(lambda: frame.write.insertInto(to_spark_sql(table)))  # noqa: SLF001
        return
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    for i in range(0, len(rows), VALUES_ROWS):
        chunk = rows[i : i + VALUES_ROWS]
        session.run(
            f"INSERT INTO {table} VALUES " + ", ".join([one] * len(chunk)), [v for r in chunk for v in r]
        )


def _drop_left_behind(session: Any) -> None:
    """Drop durable scratch tables older than SCRATCH_MAX_AGE: left by killed runs."""
    oldest = (datetime.now(UTC) - SCRATCH_MAX_AGE).strftime("%Y%m%dt%H%M%S%f")
    for row in session.all(f"SHOW TABLES LIKE '{DURABLE_MARK}*'"):
        left = str(row[1])
        if left.startswith(DURABLE_MARK) and left[len(DURABLE_MARK) :] < oldest and not bool(row[2]):
            session.run(f"DROP TABLE IF EXISTS {quote(left)}")


# -- atomic replace --------------------------------------------------------------------------------

_token_lock = threading.Lock()
_last_token = [""]


def _token() -> str:
    """Increasing within this process, unique across processes: UTC time to the microsecond + random."""
    with _token_lock:
        stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f")
        token = f"{stamp}_{uuid.uuid4().hex[:8]}"
        if token <= _last_token[0]:
            token = _last_token[0][:-8] + uuid.uuid4().hex[:8]
        _last_token[0] = token
        return token


def _property(session: Any, target: TableName, key: str) -> str | None:
    rows = session.all(f"SHOW TBLPROPERTIES {target.sql()} ('{key}')")
    value = str(rows[0][1]) if rows else ""
    return None if not rows or "does not have property" in value else value


def _is_view(session: Any, target: TableName) -> bool:
    rows = session.all(f"DESCRIBE TABLE EXTENDED {target.sql()}")
    return any(str(r[0]) == "Type" and str(r[1]).upper() == "VIEW" for r in rows)


def new_run_table(session: Any, target: TableName) -> TableName:
    """The table this run writes `target`'s rows to. The target must be absent or a view consentgate
    switches (a table or another view of that name is refused: replacing it would not be atomic)."""
    t = target.resolved(session.default_schema)
    if session.connection.columns(t.schema, t.name):
        if not _is_view(session, t) or _property(session, t, TABLE_PROPERTY) is None:
            raise TargetError(
                f"target {str(target)!r} exists and is not a view written by consentgate; on Spark a target "
                "is a view switched atomically between run tables: drop or rename it, or choose another target"
            )
    return TableName(t.schema, f"{t.name}{RUN_TABLE_MARK}{_token()}".lower())


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def publish(session: Any, target: TableName, table: TableName, run_id: str) -> None:
    """Switch readers of `target` to `table` in one statement, then drop this target's run tables older
    than `table` except the one readers saw until now."""
    t = target.resolved(session.default_schema)
    previous = _property(session, t, TABLE_PROPERTY) if session.connection.columns(t.schema, t.name) else None
    session.run(
        f"CREATE OR REPLACE VIEW {t.sql()} TBLPROPERTIES ({_literal(TABLE_PROPERTY)} = {_literal(table.name)}, "
        f"{_literal(RUN_PROPERTY)} = {_literal(run_id)}) AS SELECT * FROM {table.sql()}"
    )
    prefix = f"{t.name}{RUN_TABLE_MARK}".lower()
    for row in session.all(f"SHOW TABLES IN {quote(t.schema or '')} LIKE '{prefix}*'"):
        name = str(row[1])
        if name.startswith(prefix) and name < table.name and name != previous and not bool(row[2]):
            session.run(f"DROP TABLE IF EXISTS {TableName(t.schema, name).sql()}")


def live_table(session: Any, target: TableName) -> str | None:
    """The run table readers of `target` see now (None when it is not a consentgate view)."""
    t = target.resolved(session.default_schema)
    if not session.connection.columns(t.schema, t.name):
        return None
    return _property(session, t, TABLE_PROPERTY)


# -- append-only evidence ----------------------------------------------------------------------------

_version_lock = threading.Lock()
_last_version = [0]


def next_version() -> int:
    """A row version: microseconds since 1970, strictly increasing within this process."""
    with _version_lock:
        v = max(time.time_ns() // 1000, _last_version[0] + 1)
        _last_version[0] = v
        return v


def log_table(table: str) -> str:
    return table + LOG_SUFFIX


def _spark_column(line: str) -> tuple[str, str] | None:
    body = line.split("--", 1)[0].strip().rstrip(",").strip()
    if not body:
        return None
    name, sql_type = body.split()[:2]
    return name, "STRING" if sql_type.lower() in ("varchar", "text") else sql_type.upper()


def ensure_evidence(
    session: Any, ddl: str, keys: dict[str, Sequence[str]], committed: dict[str, str] | None = None
) -> None:
    """Create Spark's evidence tables from the portable DDL, those the current schema lacks: for each
    table an append-only `<table>_log` (the same columns and a `version`) and a view `<table>` showing
    each key's latest version, unless that version is a TOMBSTONE (dbt's spark__log_lineage writes the
    same tables, macros/spark). `committed` maps a table to the condition a version of it (alias
    `_consentgate_v`) must meet to count at all: a version written by a run or ingest that never
    committed is invisible. One listing of the schema, not a metastore round trip per object."""
    objects = _evidence_objects(ddl, keys, committed or {})
    listed = session.all(f"SHOW TABLES LIKE '{'|'.join(name for name, _s in objects)}'")
    have = {str(row[1]).lower() for row in listed if not bool(row[2])}
    for name, statement in objects:
        if name.lower() not in have:
            session.run(statement)  # IF NOT EXISTS: a concurrent run may have created it meanwhile


def _evidence_objects(
    ddl: str, keys: dict[str, Sequence[str]], committed: dict[str, str]
) -> list[tuple[str, str]]:
    """(name, CREATE ... IF NOT EXISTS statement) of each evidence log and view, logs first."""
    statements: list[tuple[str, str]] = []
    for chunk in ddl.split(";"):
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--"))
        m = _DDL_TABLE.search(body.strip())
        if not m:
            continue
        table = m.group(1)
        columns = [c for c in (_spark_column(line) for line in m.group(2).splitlines()) if c]
        names = ", ".join(quote(n) for n, _t in columns)
        typed = ", ".join(f"{quote(n)} {t}" for n, t in columns)
        log = log_table(table)
        statements.append(
            (log, f"CREATE TABLE IF NOT EXISTS {quote(log)} ({typed}, {VERSION} BIGINT) USING parquet")
        )
        partition = ", ".join(quote(k) for k in keys[table])
        where = f" WHERE {committed[table]}" if table in committed else ""
        live = f" AND coalesce({quote('trigger')}, '') <> '{TOMBSTONE}'" if "trigger" in dict(columns) else ""
        view = (
            f"CREATE VIEW IF NOT EXISTS {quote(table)} AS SELECT {names} FROM (SELECT *, row_number() OVER "
            f"(PARTITION BY {partition} ORDER BY {VERSION} DESC) AS _consentgate_n FROM {quote(log)} "
            f"_consentgate_v{where}) WHERE _consentgate_n = 1{live}"
        )
        statements.append((table, view))
    return statements
