"""A thin session over a DB-API connection (DuckDB or PostgreSQL), with the dialect it speaks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consentgate.dialects import DUCKDB, Dialect, for_name
from consentgate.errors import DatabaseLockedError, DatabaseNotFoundError
from consentgate.names import TableName


class Session:
    """Executes statements on one connection; owns transaction boundaries."""

    def __init__(self, connection: Any, dialect: Dialect, *, owned: bool = False) -> None:
        self.connection = connection
        self.dialect = dialect
        self._owned = owned
        # A DuckDB "cursor" is a second connection with its own transaction: use the connection itself.
        self._cursor = connection if dialect is DUCKDB else connection.cursor()
        self._default_schema: str | None = None

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        # psycopg2 formats '%' only when given parameters; keep statements without them verbatim.
        self._cursor.execute(sql, list(params) if params else None)

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._execute(sql, params)
        if self.dialect is DUCKDB:
            # DuckDB 2.0 streams results: drain them so the connection is free for the next statement.
            self._cursor.fetchall()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._execute(sql, params)
        return [tuple(r) for r in self._cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        rows = self.all(sql, params)
        if not rows:
            raise LookupError("query returned no row")
        return rows[0]

    def begin(self) -> None:
        if self.dialect is DUCKDB:
            self.connection.begin()

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        try:
            self.connection.rollback()
        except Exception:  # noqa: BLE001 - nothing to roll back
            pass

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @property
    def default_schema(self) -> str:
        if self._default_schema is None:
            self._default_schema = str(self.one(f"SELECT {self.dialect.default_schema_sql}")[0])
        return self._default_schema

    def columns(self, table: TableName) -> dict[str, str] | None:
        """{column name: data type} of a table or view, or None when it does not exist."""
        t = table.resolved(self.default_schema)
        p = self.dialect.param
        rows = self.all(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE lower(table_schema) = lower({p}) AND lower(table_name) = lower({p}) "
            "ORDER BY ordinal_position",
            [t.schema, t.name],
        )
        return {str(name): str(dtype) for name, dtype in rows} or None

    def close(self) -> None:
        if self._owned:
            self.connection.close()


_LOCK = re.compile(r"Could not set lock on file.*?(\(PID \d+\))?", re.S)


def open_duckdb(path: str | Path, *, read_only: bool = False, must_exist: bool = True) -> Session:
    """Open a DuckDB file. A lock held by another process becomes a one-line DatabaseLockedError."""
    import duckdb

    p = Path(path)
    if must_exist and str(path) != ":memory:" and not p.exists():
        raise DatabaseNotFoundError(
            f"database file {str(p)!r} does not exist; create it first (e.g. `consentgate demo --database {p}`)"
        )
    try:
        con = duckdb.connect(str(p), read_only=read_only)
    except duckdb.IOException as exc:
        m = re.search(r"\(PID (\d+)\)", str(exc))
        if "lock" in str(exc).lower():
            who = f" (PID {m.group(1)})" if m else ""
            raise DatabaseLockedError(
                f"database file {str(p)!r} is locked by another process{who}; "
                "wait for it to finish or stop it, then retry"
            ) from None
        raise
    return Session(con, DUCKDB, owned=True)


def session_for(connection: Any, dialect: str | Dialect | None = None) -> Session:
    """Wrap a connection someone else owns (an Airflow hook's, a test's)."""
    if isinstance(dialect, Dialect):
        d = dialect
    elif dialect:
        d = for_name(dialect)
    else:
        d = DUCKDB if "duckdb" in type(connection).__module__ else for_name("postgres")
    return Session(connection, d, owned=False)
