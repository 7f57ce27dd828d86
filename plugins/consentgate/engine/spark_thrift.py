"""Spark through its Thrift server (the HiveServer2 protocol: PyHive, Airflow's HiveServer2Hook), on the
same Spark path as a SparkSession: run tables switched by a view, append-only evidence (engine/spark.py).

The protocol has no statement parameters: `?` markers are filled in client-side, each value as a Spark
literal of its type (strings with backslash escapes, spark._literal; the session's
`spark.sql.parser.escapedStringLiterals` is pinned to false so they read back exactly), never as raw
text. Server errors become ThriftServerError, whose message (it can quote row values) the Session
withholds like every engine message; PyHive's statement and response logging is switched off (it would
log the filled-in values).

PyHive is never imported here: the connection is handed in (HiveServer2Hook.get_conn(), pyhive.hive.connect).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from consentgate.engine.spark import NOT_FOUND, SparkConnection, _literal, described_columns, to_spark_sql
from consentgate.errors import raise_unchained
from consentgate.rule.names import quote

#: PyHive logs each statement at INFO (parameters filled in) and each response (rows too) at DEBUG.
THRIFT_LOGGERS = ("pyhive.hive", "pyhive.common")
#: The Thrift server's port when a URL or connection names none (HiveServer2's default).
DEFAULT_PORT = 10000
#: Settings every Thrift session gets: UTC like the rule's literals; backslash escapes in literals.
SESSION_SETTINGS = {"spark.sql.session.timeZone": "UTC", "spark.sql.parser.escapedStringLiterals": "false"}
#: Rows per fetch round trip (PyHive's default is 1000).
FETCH_SIZE = 10_000
_CONDITION = re.compile(r"[^'\"`\[]*\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)\]")


class ThriftServerError(Exception):
    """A statement the Thrift server refused. Its message is the server's (withheld by Session);
    `getCondition()` and `sqlstate` are Spark's error condition and SQLSTATE, as pyspark's errors have."""

    def __init__(self, message: str, condition: str | None, sqlstate: str | None) -> None:
        super().__init__(message)
        self._condition = condition
        self.sqlstate = sqlstate

    def getCondition(self) -> str | None:  # noqa: N802 - pyspark's name (spark._condition reads it)
        return self._condition


def quiet_pyhive() -> None:
    """Switch off PyHive's statement and response logging (call before connecting: connect() runs a
    statement too), and the Thrift transport's tracebacks of a refused connection (consentgate reports
    it in one line)."""
    for name in THRIFT_LOGGERS:
        logging.getLogger(name).disabled = True
    logging.getLogger("thrift").setLevel(logging.CRITICAL + 1)


def is_thrift_connection(connection: Any) -> bool:
    """A PyHive HiveServer2 connection (what HiveServer2Hook.get_conn() returns)."""
    return type(connection).__module__.startswith("pyhive.")


def spark_literal(value: Any) -> str:
    """`value` as a Spark SQL literal of the type Spark Connect gives the same parameter."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(value):
            return f"CAST('{'-' if value < 0 else ''}Infinity' AS DOUBLE)"
        return f"{value!r}D"
    if isinstance(value, Decimal) and value.is_finite():
        return f"{value:f}BD"
    if isinstance(value, str):
        return _literal(value)
    if isinstance(value, datetime):  # naive is UTC (spark._arg); the session's zone is UTC
        utc = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return f"TIMESTAMP '{utc.isoformat(sep=' ', timespec='microseconds')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bytes | bytearray):
        return f"X'{bytes(value).hex()}'"
    raise TypeError(
        f"a statement parameter of type {type(value).__name__} cannot be sent to Spark's Thrift server"
    )


def _skip(sql: str, i: int) -> int:
    """The index after the quoted literal, quoted identifier or comment starting at `i` (else i + 1)."""
    n, c = len(sql), sql[i]
    if c in "'\"`":
        j = i + 1
        while j < n:
            if sql[j] == "\\" and c != "`":
                j += 2
            elif sql[j] == c:
                if j + 1 < n and sql[j + 1] == c:
                    j += 2
                else:
                    return j + 1
            else:
                j += 1
        return n
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return n if end < 0 else end + 1
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return n if end < 0 else end + 2
    return i + 1


def render(sql: str, params: Sequence[Any]) -> str:
    """Spark SQL `sql` with each `?` marker outside literals, identifiers and comments replaced by the
    literal of the next parameter; the number of markers must equal the number of parameters."""
    pieces: list[str] = []  # the text between markers
    i = start = 0
    while i < len(sql):
        if sql[i] == "?":
            pieces.append(sql[start:i])
            start = i = i + 1
        else:
            i = _skip(sql, i)
    pieces.append(sql[start:])
    if len(pieces) - 1 != len(params):
        raise ValueError(
            f"the statement has {len(pieces) - 1} parameter markers for {len(params)} parameters"
        )
    out = [pieces[0]]
    for value, text in zip(params, pieces[1:], strict=True):
        out += [spark_literal(value), text]
    return "".join(out)


def _server_error(exc: BaseException) -> BaseException:
    """PyHive's error for a refused statement as a ThriftServerError (condition, SQLSTATE); others as
    they are."""
    status = getattr(exc.args[0], "status", None) if exc.args else None
    if status is None:
        return exc
    message = str(getattr(status, "errorMessage", "") or "")
    m = _CONDITION.match(message)
    state = getattr(status, "sqlState", None)
    return ThriftServerError(message, m.group(1) if m else None, str(state) if state else None)


def _convert(type_code: str, value: Any) -> Any:
    """A result value as the Spark Connect path returns it: the Thrift server sends timestamps, dates
    and decimals as text (timestamps in the session's zone, UTC)."""
    if not isinstance(value, str):
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
    if type_code.startswith("TIMESTAMP"):
        return datetime.fromisoformat(value)
    if type_code == "DATE_TYPE":
        return date.fromisoformat(value)
    if type_code == "DECIMAL_TYPE":
        return Decimal(value)
    return value


class SparkThriftCursor:
    """The cursor subset Session uses (like spark.SparkCursor): execute with `?` parameters, fetchall,
    description."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._cursor.arraysize = FETCH_SIZE
        self._rows: list[tuple[Any, ...]] | None = None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        text = render(to_spark_sql(sql), list(params or ()))
        self._rows = None
        try:
            self._cursor.execute(text)  # no parameters: PyHive sends the text as it is
        except Exception as exc:
            err = _server_error(exc)
            if err is exc:
                raise
        else:
            return
        raise_unchained(err)

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            description = self._cursor.description
            if not description:  # a command: no result set
                self._rows = []
            else:
                self._rows = self._converted(self._cursor.fetchall())
        return self._rows

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        """The next `size` rows of a query (PyHive fetches FETCH_SIZE rows per round trip)."""
        return self._converted(self._cursor.fetchmany(size))

    def _converted(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        types = [str(d[1] or "") for d in self._cursor.description or []]
        return [tuple(_convert(t, v) for t, v in zip(types, row, strict=True)) for row in rows]

    def close(self) -> None:
        with suppress(Exception):  # the operation is closed with its session anyway
            self._cursor.close()

    @property
    def description(self) -> list[tuple[str, None, None, None, None, None, None]]:
        return [(str(d[0]), None, None, None, None, None, None) for d in self._cursor.description or []]


class SparkThriftConnection(SparkConnection):
    """A HiveServer2 connection to Spark's Thrift server as the connection a Session wraps, on the same
    Spark path as a SparkSession (a SparkConnection: no transactions, durable scratch, catalog columns).
    One Thrift session: its temporary views and settings last as long as the connection."""

    def __init__(self, connection: Any, *, owned: bool = False) -> None:
        quiet_pyhive()
        self.hive = connection
        self.spark = None  # no SparkSession behind this connection
        self._owned = owned
        self.durable: dict[str, str] = {}
        self.swept = False
        cur = self.cursor()
        for key, value in SESSION_SETTINGS.items():
            cur.execute(f"SET {key}={value}")

    def cursor(self) -> SparkThriftCursor:  # type: ignore[override]
        return SparkThriftCursor(self.hive.cursor())

    def close(self) -> None:
        self.release()
        if self._owned:
            self.hive.close()

    def release(self) -> None:
        for table in self.durable.values():
            with suppress(Exception):  # left behind: dropped by a later run (spark.SCRATCH_MAX_AGE)
                self.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        self.durable.clear()

    def columns(self, schema: str, name: str) -> list[tuple[str, str, str, str]]:
        cur = self.cursor()
        try:
            cur.execute(f"DESCRIBE TABLE {quote(schema)}.{quote(name)}")
        except ThriftServerError as exc:
            if exc.getCondition() in NOT_FOUND:
                return []
            raise
        return described_columns(cur.fetchall(), schema, name)
