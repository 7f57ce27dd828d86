"""A thin session over a DB-API connection (DuckDB or PostgreSQL), with the dialect it speaks."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from consentgate.engine import spark, spark_thrift, termination
from consentgate.errors import (
    ConsentGateError,
    DatabaseLockedError,
    DatabaseNotFoundError,
    DatabaseUnavailableError,
    InvalidIdentifierError,
    NotADatabaseError,
    UnsupportedConnectionError,
    error_class,
    mask_url,
    raise_unchained,
    withheld,
)
from consentgate.rule.dialects import DUCKDB, SPARK, Dialect, for_name
from consentgate.rule.names import TableName

F = TypeVar("F", bound=Callable[..., Any])
#: How often a statement a signal interrupted is interrupted again until it stops (interrupt_running).
INTERRUPT_EVERY_S = 0.05


class Session:
    """Executes statements on one connection; owns transaction boundaries."""

    def __init__(self, connection: Any, dialect: Dialect, *, owned: bool = False) -> None:
        self.connection = connection
        self.dialect = dialect
        self._owned = owned
        # A DuckDB "cursor" is a second connection with its own transaction: use the connection itself.
        self._cursor = connection if dialect is DUCKDB else connection.cursor()
        self._default_schema: str | None = None
        self._stage: tuple[str, object] = ("running a statement", None)
        self._statements = 0  # statements started
        self._running = 0  # the number of the statement running now, 0 between statements
        self._interrupted = 0  # the number of the statement a signal interrupted
        # Held while a statement is registered and while a signal's thread interrupts: an interrupt
        # decided for one statement can never land on the next one (interrupt_running).
        self._interrupting = threading.Lock()
        if dialect is DUCKDB:
            termination.watch(self)

    @contextmanager
    def stage(self, what: str, table: object = None) -> Iterator[None]:
        """Name what the block's statements do: a failing one raises a DatabaseError naming `what` and
        `table` and the engine's error class, never the engine's message (it can quote row values)."""
        before, self._stage = self._stage, (what, table)
        try:
            yield
        finally:
            self._stage = before

    def _execute(self, sql: str, params: Sequence[Any], fetch: bool = False) -> list[Any] | None:
        with self._interrupting:
            self._statements += 1
            self._running = self._statements
        try:
            # psycopg2 formats '%' only when given parameters; keep statements without them verbatim.
            self._cursor.execute(sql, list(params) if params else None)
            return self._cursor.fetchall() if fetch else None
        except Exception as exc:
            if self._interrupted == self._running:
                termination.check()  # the failure is the signal's: raise it, not the engine's error
            err = withheld(exc, *self._stage)
            if err is exc:
                raise
        finally:
            self._running = 0
        raise_unchained(err)

    def interrupt_running(self) -> None:
        """Interrupt the statement running now (DuckDB), from a thread, until it stops; the next
        statement is never touched. Called on a signal by termination's watcher thread and handler.

        Checking that the statement still runs and interrupting it happen under the lock that the
        next statement must take to start. Without it, a thread paused between the two (a loaded
        machine, the GIL) interrupted whatever ran next: the statements recording the run as failed,
        which then stayed `running`. An interrupt landing after the statement ended and before the
        next began touches nothing (DuckDB clears it when a query begins)."""
        running = self._running
        if not running or self._interrupted == running:  # between statements, or already being stopped
            return
        self._interrupted = running

        def interrupt() -> None:
            while True:
                with self._interrupting:
                    if self._running != running:
                        return
                    self.connection.interrupt()
                time.sleep(INTERRUPT_EVERY_S)

        threading.Thread(target=interrupt, name="consentgate-interrupt", daemon=True).start()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """fn() with its failure reported as _execute reports a statement's."""
        try:
            return fn()
        except Exception as exc:
            err = withheld(exc, *self._stage)
            if err is exc:
                raise
        raise_unchained(err)

    def scratch(
        self,
        name: str,
        select_sql: str,
        params: Sequence[Any] = (),
        *,
        durable: bool = False,
        observe: Sequence[str] = (),
        cache: bool = True,
    ) -> list[Any] | None:
        """(Re)create the session-private scratch table `name` (rule.semantics.scratch) as select_sql.
        `durable`: its rows must never be computed again (the consent snapshot), which on Spark takes a
        table of its own (spark.durable_scratch). `observe` (durable only): aggregates over its rows,
        returned when a SparkSession computed them while writing it (spark.durable_scratch); None
        means: query the table for them. `cache`: false for rows read once (Dialect.create_scratch)."""
        if durable and not self.dialect.transactional:
            return spark.durable_scratch(self, name, select_sql, params, observe)
        for stmt in self.dialect.drop_scratch(name):
            self.run(stmt)
        first, *rest = self.dialect.create_scratch(name, select_sql, cache=cache)
        self.run(first, params)
        for stmt in rest:
            self.run(stmt)
        return None

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        # DuckDB 2.0 streams results: drain them so the connection is free for the next statement.
        self._execute(sql, params, fetch=self.dialect is DUCKDB)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._execute(sql, params, fetch=True) or []]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        rows = self.all(sql, params)
        if not rows:
            raise LookupError("query returned no row")
        return rows[0]

    def _autocommit(self) -> bool:
        """A DB-API connection in autocommit mode (psycopg2 `autocommit = True`): its commit() and
        rollback() do nothing, so transactions are opened and closed by explicit statements."""
        return self.dialect is not DUCKDB and getattr(self.connection, "autocommit", False) is True

    def begin(self) -> None:
        if self.dialect is DUCKDB:
            self.connection.begin()
        elif self._autocommit():
            self._cursor.execute("BEGIN")

    def commit(self) -> None:
        if self._autocommit():
            self._cursor.execute("COMMIT")
        else:
            self.connection.commit()

    def rollback(self) -> None:
        try:
            if self._autocommit():
                self._cursor.execute("ROLLBACK")  # only a notice when no transaction is open
            else:
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
        if not self.dialect.information_schema:  # Spark: the connection asks the catalog
            with self.stage("reading the columns of", table):
                rows = self._call(lambda: self.connection.columns(t.schema, t.name))
        else:
            rows = self.all(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                f"WHERE lower(table_schema) = lower({p}) AND lower(table_name) = lower({p}) "
                "ORDER BY table_schema, table_name, ordinal_position",
                [t.schema, t.name],
            )
        found = {(str(r[0]), str(r[1])) for r in rows}
        # An exact name wins (consentgate quotes every identifier); two tables that differ only in case
        # and neither named exactly would merge their columns: refuse, naming both.
        chosen = (t.schema, t.name) if (t.schema, t.name) in found else None
        if chosen is None and len(found) > 1:
            names = " and ".join(repr(f"{a}.{b}") for a, b in sorted(found))
            raise InvalidIdentifierError(
                f"table {str(table)!r} matches {names}, which differ only in case; name one exactly"
            )
        chosen = chosen or next(iter(found), None)
        return {str(r[2]): str(r[3]) for r in rows if (str(r[0]), str(r[1])) == chosen} or None

    def close(self) -> None:
        if self._owned:
            self.connection.close()
        elif isinstance(self.connection, spark.SparkConnection):
            self.connection.release()  # someone else's session: drop only what this run wrote


def staged(what: str, table: Callable[..., object]) -> Callable[[F], F]:
    """Decorate a method of an object holding `.session`: statements it runs fail as a DatabaseError
    naming `what` and `table(self, *args)` (e.g. `reading the consent log 'main.consent_events'`)."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self.session.stage(what, table(self, *args, **kwargs)):
                return method(self, *args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


#: No extension is installed or loaded behind consentgate's back (a SQLite file given as --database
#: would otherwise make DuckDB download `sqlite_scanner` over the network).
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_MAGIC_OFFSET, _MAGIC, _HEADER_SIZE = 8, b"DUCK", 3 * 4096


def check_duckdb_file(p: Path) -> None:
    """Refuse, before DuckDB touches it, a file that is not a DuckDB database (SQLite, random bytes,
    empty, cut short in its header), so a failed open never writes to it."""
    if not p.is_file():
        if p.exists():
            raise NotADatabaseError(f"database path {str(p)!r} is not a file; pass a DuckDB database file")
        return
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"SQLite format 3"):
        raise NotADatabaseError(
            f"database file {str(p)!r} is a SQLite database, not DuckDB; pass a DuckDB file"
        )
    if head[_MAGIC_OFFSET : _MAGIC_OFFSET + len(_MAGIC)] != _MAGIC:
        raise NotADatabaseError(
            f"database file {str(p)!r} is not a DuckDB database ({size} bytes, no DuckDB header); "
            "pass a DuckDB file, or a path that does not exist yet to create one"
        )
    if size < _HEADER_SIZE:
        raise NotADatabaseError(
            f"database file {str(p)!r} is truncated ({size} bytes, shorter than a DuckDB header); "
            "restore it from a backup"
        )


def open_failure(p: Path, exc: Exception) -> ConsentGateError:
    text = str(exc)
    if "lock" in text.lower():
        m = re.search(r"\(PID (\d+)\)", text)
        who = f" (PID {m.group(1)})" if m else ""
        return DatabaseLockedError(
            f"database file {str(p)!r} is locked by another process{who}; wait for it to finish or stop it, then retry"
        )
    return NotADatabaseError(
        f"database file {str(p)!r} cannot be opened by DuckDB ({error_class(exc)}: damaged, truncated or "
        "written by another DuckDB version); restore it from a backup"
    )


def open_duckdb(path: str | Path, *, read_only: bool = False, must_exist: bool = True) -> Session:
    """Open a DuckDB file, with extension auto-install and auto-load off. A file that is not a DuckDB
    database is refused before DuckDB opens it; a lock held by another process becomes a one-line
    DatabaseLockedError."""
    import duckdb

    p = Path(path)
    memory = str(path) == ":memory:"
    if must_exist and not memory and not p.exists():
        raise DatabaseNotFoundError(
            f"database file {mask_url(str(p))!r} does not exist; create it first (e.g. `consentgate demo --database {p}`)"
        )
    if not memory:
        check_duckdb_file(p)
    try:
        con = duckdb.connect(str(p), read_only=read_only, config=dict(DUCKDB_CONFIG))
    except duckdb.Error as exc:
        failure = open_failure(p, exc)
    else:
        return Session(con, DUCKDB, owned=True)
    raise_unchained(failure)


#: URL schemes `open_database` understands (a target without `://` is a DuckDB file path).
POSTGRES_SCHEMES = ("postgresql", "postgres")
#: Spark Connect (`sc://host:15002`, Databricks: `sc://host:443/;token=...`): engine/spark.py.
SPARK_CONNECT_SCHEME = "sc"
#: Spark's Thrift server (HiveServer2), PyHive's URL: `hive://user[:password]@host:10000/schema`.
THRIFT_SCHEME = "hive"


def url_scheme(target: str | Path) -> str | None:
    """The scheme of a connection URL (`postgresql`, `duckdb`, ...), or None for a plain file path."""
    text = str(target)
    if isinstance(target, Path) or "://" not in text:
        return None
    return text.split("://", 1)[0].lower()


def open_database(target: str | Path, *, read_only: bool = False, must_exist: bool = True) -> Session:
    """Open what `--database` names: a DuckDB file path (or `duckdb:///path`), or a PostgreSQL URL
    (`postgresql://user:password@host:5432/db`; the password is masked wherever it is printed)."""
    scheme = url_scheme(target)
    text = str(target)
    if scheme is None:
        return open_duckdb(target, read_only=read_only, must_exist=must_exist)
    if scheme == "duckdb":
        return open_duckdb(text.split("://", 1)[1] or ":memory:", read_only=read_only, must_exist=must_exist)
    if scheme in POSTGRES_SCHEMES:
        return open_postgres(text, read_only=read_only)
    if scheme == SPARK_CONNECT_SCHEME:
        return Session(spark.SparkConnection(spark.open_spark(text), owned=True), SPARK, owned=True)
    if scheme == THRIFT_SCHEME:
        return open_thrift(text)
    raise UnsupportedConnectionError(
        f"database URL {mask_url(text)!r}: scheme {scheme!r} is not supported "
        "(use a DuckDB file path, duckdb:///path, postgresql://user@host:port/db, sc://host:port or "
        "hive://user@host:port/schema)"
    )


def open_thrift(url: str) -> Session:
    """Connect to a Spark Thrift server with PyHive: `hive://user[:password]@host[:10000][/schema]` (a
    password means LDAP authentication; it is masked wherever the URL is printed)."""
    try:
        from pyhive import hive
    except ImportError:
        raise_unchained(
            UnsupportedConnectionError("hive:// URLs need PyHive: pip install 'consentgate[hive]'")
        )
    parts = urlsplit(url)
    spark_thrift.quiet_pyhive()  # before connecting: connect() runs a statement too
    try:
        con = hive.connect(
            parts.hostname or "localhost",
            port=parts.port or spark_thrift.DEFAULT_PORT,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            auth="LDAP" if parts.password else "NONE",
            database=parts.path.strip("/") or "default",
        )
    except Exception as exc:  # noqa: BLE001 - any client error means: not reachable
        failure = DatabaseUnavailableError(
            f"cannot connect to the Thrift server at {mask_url(url)!r} ({error_class(exc)}: server "
            "unreachable, login refused or no such schema)"
        )
    else:
        return Session(spark_thrift.SparkThriftConnection(con, owned=True), SPARK, owned=True)
    raise_unchained(failure)


def open_postgres(url: str, *, read_only: bool = False) -> Session:
    """Connect to PostgreSQL with psycopg2. A failed connection is one line naming the masked URL and
    the driver's error class; the driver's own text is withheld like every engine message."""
    try:
        import psycopg2
    except ImportError:
        raise_unchained(
            UnsupportedConnectionError(
                "PostgreSQL URLs need the psycopg2 driver: pip install 'consentgate[postgres]'"
            )
        )
    try:
        # `read_only` is not a READ ONLY transaction here: verify and the subject report build temporary
        # scratch tables, which PostgreSQL forbids in one. The commands that pass it only read.
        con = psycopg2.connect(url, application_name="consentgate")
    except psycopg2.Error as exc:
        failure = DatabaseUnavailableError(
            f"cannot connect to {mask_url(url)!r} ({error_class(exc)}: server unreachable, login refused "
            "or no such database)"
        )
    else:
        return Session(con, for_name("postgres"), owned=True)
    raise_unchained(failure)


def session_for(connection: Any, dialect: str | Dialect | None = None) -> Session:
    """Wrap a connection someone else owns (an Airflow hook's, a test's)."""
    if isinstance(dialect, Dialect):
        d = dialect
    elif dialect:
        d = for_name(dialect)
    else:
        d = DUCKDB if "duckdb" in type(connection).__module__ else for_name("postgres")
    if spark_thrift.is_thrift_connection(connection):  # Spark's Thrift server (HiveServer2, PyHive)
        connection, d = spark_thrift.SparkThriftConnection(connection), SPARK
    elif d is SPARK or isinstance(connection, spark.SparkConnection) or spark.is_spark_session(connection):
        if not isinstance(connection, spark.SparkConnection):
            connection = spark.SparkConnection(connection)
        d = SPARK
    return Session(connection, d, owned=False)


def resolved_key(session: Session, table: TableName) -> tuple[str, str]:
    """Which table `table` names in this session, as the engine resolves it: the (schema, name) of the
    existing relation (PostgreSQL: through the search_path, via to_regclass), else the schema a
    CREATE would use (the current schema). Lower case: a false match only refuses, never overwrites."""
    table.check_length(session.dialect.name)
    if session.dialect.name == "postgres":
        rows = session.all(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(%s)",
            [table.sql()],
        )
        if rows:
            return (str(rows[0][0]).lower(), str(rows[0][1]).lower())
    return table.key(session.default_schema)
