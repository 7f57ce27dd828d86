"""The warehouse behind an Airflow connection: a consentgate Session plus where it lives.

DuckDB connections (conn type `duckdb`) open through the DuckDB provider's `DuckDBHook`; Spark Connect
connections (conn type `spark_connect`, e.g. `AIRFLOW_CONN_X='spark-connect://host:15002'`) open a Spark
Connect session from the connection's fields alone (spark_connect_url), without
apache-airflow-providers-apache-spark, whose `pyspark-client` dependency overwrites pyspark's files
(docs/spark.md); any other connection must resolve to a common-sql `DbApiHook` whose conn type names a
supported dialect (`postgres`). Only call this from `execute()`: it reads the connection and opens the
database.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentgate.engine import spark_thrift
from consentgate.engine.session import DUCKDB_CONFIG, Session, check_duckdb_file, open_failure, session_for
from consentgate.errors import (
    DatabaseLockedError,
    UnsupportedConnectionError,
    mask_url,
    raise_unchained,
    stage,
)
from consentgate.rule.names import TableName

log = logging.getLogger("consentgate")

# Airflow conn type -> consentgate dialect name.
DIALECTS = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "postgresql": "postgres",
    "spark_connect": "spark",
    "hiveserver2": "spark",  # Spark's Thrift server, through the Hive provider's HiveServer2Hook
}
#: The Spark Connect port when a spark_connect connection names none (Spark's default).
SPARK_CONNECT_PORT = 15002


@dataclass(frozen=True)
class Location:
    """Where a warehouse lives, for Asset URIs and OpenLineage dataset names. Never holds a secret.

    :param dialect: `duckdb`, `postgres` or `spark`
    :param path: the DuckDB database file (absolute), for DuckDB
    :param host: server host, for PostgreSQL and Spark Connect
    :param port: server port, for PostgreSQL and Spark Connect
    :param database: database name (the file stem for DuckDB, which is DuckDB's catalog name)
    """

    dialect: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None

    def resolved(self, table: str, default_schema: str) -> TableName:
        return TableName.parse(table).resolved(default_schema)

    def asset_uri(self, table: str, default_schema: str) -> str:
        """An Airflow 3 Asset URI for a table: `postgres://host:port/db/schema/table` (the Postgres
        provider's form) or `duckdb://localhost/abs/path/file.duckdb/schema/table` (a DuckDB file is local
        to the host that writes it; the explicit host keeps the URI unchanged by Airflow's normalisation)."""
        t = self.resolved(table, default_schema)
        if self.dialect == "postgres":
            return f"postgres://{self.host}:{self.port}/{self.database}/{t.schema}/{t.name}"
        if self.dialect == "spark":  # the Spark Connect server's catalog: sc://host:port/schema/table
            return f"sc://{self.host}:{self.port}/{t.schema}/{t.name}"
        return f"duckdb://localhost{self.path}/{t.schema}/{t.name}"

    def ol_namespace(self) -> str:
        """The OpenLineage dataset namespace (naming spec: `postgres://host:port`; DuckDB: the file)."""
        if self.dialect == "postgres":
            return f"postgres://{self.host}:{self.port}"
        if self.dialect == "spark":
            return f"sc://{self.host}:{self.port}"
        return f"duckdb://{self.path}"

    def ol_name(self, table: str, default_schema: str) -> str:
        t = self.resolved(table, default_schema)
        if self.dialect == "spark":  # Spark's catalog has schemas only
            return f"{t.schema}.{t.name}"
        return f"{self.database}.{t.schema}.{t.name}"


@dataclass
class Warehouse:
    """An open session on the connection's database, with its location."""

    conn_id: str
    session: Session
    location: Location

    @property
    def dialect(self) -> str:
        return self.location.dialect


def dialect_of(conn_type: str | None, hook: Any = None) -> str:
    """The consentgate dialect for an Airflow conn type (or the hook's dialect name)."""
    for candidate in (conn_type, getattr(hook, "dialect_name", None)):
        if candidate and candidate.lower() in DIALECTS:
            return DIALECTS[candidate.lower()]
    raise UnsupportedConnectionError(
        f"connection type {conn_type!r} is not supported; use a 'duckdb', 'postgres', 'spark_connect' or 'hiveserver2' connection"
    )


def spark_connect_url(conn: Any) -> str:
    """The `sc://host:port/;...` URL of a spark_connect connection, built as the Spark provider's
    SparkConnectHook builds it: host (an `sc://` prefix is allowed), port (default 15002), login as
    `user_id`, password as `token`, extra `use_ssl`. The token is never printed (errors.mask_url)."""
    from urllib.parse import quote as url_quote

    host = str(conn.host or "").strip().removeprefix("sc://").rstrip("/")
    if not host:
        raise UnsupportedConnectionError(
            f"connection {conn.conn_id!r} (type spark_connect) has no host; set it to the Spark Connect server"
        )
    params = []
    if conn.login:
        params.append(f"user_id={url_quote(str(conn.login), safe='')}")
    if conn.password:
        params.append(f"token={url_quote(str(conn.password), safe='')}")
    extra = conn.extra_dejson if conn.extra else {}
    if str(extra.get("use_ssl", "")).lower() in ("1", "true", "yes"):
        params.append("use_ssl=true")
    url = f"sc://{host}:{int(conn.port or SPARK_CONNECT_PORT)}"
    return url + ("/;" + ";".join(params) if params else "")


def spark_location(conn: Any) -> Location:
    """The Location of a spark_connect connection (the server of its URL), or of a hiveserver2 one (the
    Thrift server's host and port), without connecting."""
    if str(conn.conn_type or "").lower() == "hiveserver2":
        return Location(
            "spark", host=conn.host or "localhost", port=int(conn.port or spark_thrift.DEFAULT_PORT)
        )
    host, port = spark_connect_url(conn).removeprefix("sc://").split("/", 1)[0].rsplit(":", 1)
    return Location("spark", host=host, port=int(port))


def _open_spark_connect(conn_id: str) -> tuple[Any, Location]:
    from airflow.sdk import BaseHook

    from consentgate.engine.spark import SparkConnection, open_spark

    conn = BaseHook.get_connection(conn_id)
    url = spark_connect_url(conn)
    with stage("connecting to the Spark Connect server of connection", conn_id):
        spark = open_spark(url)
    # Owned: closing the connection (open_warehouse) stops the session.
    return SparkConnection(spark, owned=True), spark_location(conn)


def _open_hiveserver2(conn_id: str) -> tuple[Any, Location]:
    """Spark's Thrift server through the Hive provider's HiveServer2Hook (a DbApiHook over PyHive), on
    the same Spark path as Spark Connect (engine/spark_thrift.py)."""
    from airflow.sdk import BaseHook

    from consentgate.engine.spark_thrift import SparkThriftConnection, quiet_pyhive

    try:
        from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
    except ImportError:
        raise_unchained(
            UnsupportedConnectionError(
                f"connection {conn_id!r} (type hiveserver2) needs apache-airflow-providers-apache-hive: "
                "pip install 'consentgate[hive]'"
            )
        )
    conn = BaseHook.get_connection(conn_id)
    quiet_pyhive()
    with stage("connecting to the Spark Thrift server of connection", conn_id):
        con = SparkThriftConnection(HiveServer2Hook(hiveserver2_conn_id=conn_id).get_conn(), owned=True)
    return con, spark_location(conn)


_LOCK_PID = re.compile(r"\(PID (\d+)\)")


def _open_duckdb(conn_id: str) -> tuple[Any, Location]:
    import duckdb
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

    # No extension is installed or loaded behind consentgate's back (see db.DUCKDB_CONFIG).
    hook = DuckDBHook(
        duckdb_conn_id=conn_id,
        autoinstall_extensions=False,
        autoload_extensions=False,
        settings=dict(DUCKDB_CONFIG),
    )
    database = hook.get_database()
    if database == ":memory:" or database.startswith("md:"):
        raise UnsupportedConnectionError(
            f"connection {conn_id!r} resolves to DuckDB database {'in memory' if database == ':memory:' else 'on MotherDuck'}; "
            "set the connection's host to the database file path"
        )
    path = Path(database).expanduser().resolve()
    if not path.exists():
        raise UnsupportedConnectionError(
            f"connection {conn_id!r} points to {mask_url(str(path))!r}, which does not exist; create the warehouse first"
        )
    check_duckdb_file(path)
    try:
        con = hook.get_conn()
    except duckdb.Error as exc:
        failure = open_failure(path, exc)
    else:
        return con, Location("duckdb", path=str(path), database=path.stem)
    if isinstance(failure, DatabaseLockedError):
        m = _LOCK_PID.search(str(failure))
        who = f" (PID {m.group(1)})" if m else ""
        failure = DatabaseLockedError(
            f"database file {str(path)!r} is locked by another process{who}; DuckDB allows one writer "
            "per file: run consentgate tasks in a one-slot pool (see docs/airflow.md) or retry later"
        )
    raise_unchained(failure)


def _open_dbapi(conn_id: str) -> tuple[Any, Location]:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    hook = conn.get_hook()
    if not isinstance(hook, DbApiHook):
        raise UnsupportedConnectionError(
            f"connection {conn_id!r} (type {conn.conn_type!r}) has no SQL (DbApiHook) hook; "
            "use a 'duckdb' or 'postgres' connection"
        )
    dialect = dialect_of(conn.conn_type, hook)
    with stage("connecting to the database of connection", conn_id):
        con = hook.get_conn()
    port = int(conn.port) if conn.port else 5432
    database = conn.schema or getattr(hook, "database", None) or "postgres"
    return con, Location(dialect, host=conn.host or "localhost", port=port, database=database)


def conn_type(conn_id: str) -> str:
    from airflow.sdk import BaseHook

    return str(BaseHook.get_connection(conn_id).conn_type or "")


@contextmanager
def open_warehouse(conn_id: str) -> Iterator[Warehouse]:
    """Open the connection's database as a consentgate Session; closes it on exit.

    A missing connection, an in-memory DuckDB or an unsupported conn type fails (never silently enforces
    on a throw-away database). A DuckDB file locked by another process raises DatabaseLockedError.
    """
    ctype = conn_type(conn_id)
    kind = dialect_of(ctype)
    opener = {"duckdb": _open_duckdb, "spark": _open_spark_connect}.get(kind, _open_dbapi)
    if ctype.lower() == "hiveserver2":
        opener = _open_hiveserver2
    con, location = opener(conn_id)
    session = session_for(con, location.dialect)
    try:
        yield Warehouse(conn_id, session, location)
    finally:
        session.rollback()
        try:
            con.close()
        except Exception as exc:  # noqa: BLE001 - closing must not hide the real outcome
            log.warning("closing connection %s failed: %s", conn_id, type(exc).__name__)


def duckdb_path(conn_id: str) -> str | None:
    """The DuckDB database file of a connection (None for other connection types)."""
    if dialect_of(conn_type(conn_id)) != "duckdb":
        return None
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

    database = DuckDBHook(duckdb_conn_id=conn_id).get_database()
    return str(Path(database).expanduser().resolve())


def dbt_env(conn_id: str | None) -> dict[str, str]:
    """Environment a consentgate dbt profile reads for the connection: CONSENTGATE_DBT_TARGET (the
    profile target of the connection's dialect, `duckdb`, `postgres` or `spark`), and CONSENTGATE_DUCKDB
    (the DuckDB file), CONSENTGATE_PG_HOST/PORT/USER/PASSWORD/DBNAME/SCHEMA for PostgreSQL, or
    SPARK_REMOTE (the Spark Connect URL dbt-spark's `method: session` connects to) for Spark, or
    CONSENTGATE_SPARK_THRIFT_HOST/PORT/USER (target `spark_thrift`, dbt-spark's `method: thrift`) for a
    hiveserver2 connection to Spark's Thrift server."""
    if not conn_id:
        return {}
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if dialect_of(conn.conn_type) == "duckdb":
        path = duckdb_path(conn_id)
        # The target follows the connection: a profile whose default target is another engine would
        # otherwise build (and audit) a different database than the one the operators enforced.
        return {"CONSENTGATE_DBT_TARGET": "duckdb", **({"CONSENTGATE_DUCKDB": path} if path else {})}
    if (
        str(conn.conn_type or "").lower() == "hiveserver2"
    ):  # dbt-spark `method: thrift` (docs/spark.md#thrift)
        where = spark_location(conn)
        return {
            "CONSENTGATE_DBT_TARGET": "spark_thrift",
            "CONSENTGATE_SPARK_THRIFT_HOST": str(where.host),
            "CONSENTGATE_SPARK_THRIFT_PORT": str(where.port),
            "CONSENTGATE_SPARK_THRIFT_USER": conn.login or "",
        }
    if dialect_of(conn.conn_type) == "spark":
        return {"CONSENTGATE_DBT_TARGET": "spark", "SPARK_REMOTE": spark_connect_url(conn)}
    env = {
        "CONSENTGATE_DBT_TARGET": "postgres",
        "CONSENTGATE_PG_HOST": conn.host or "localhost",
        "CONSENTGATE_PG_PORT": str(conn.port or 5432),
        "CONSENTGATE_PG_USER": conn.login or "",
        "CONSENTGATE_PG_PASSWORD": conn.password or "",
        "CONSENTGATE_PG_DBNAME": conn.schema or "postgres",
        # dbt's target schema holds its models and (by default) the evidence tables: keep it where the
        # operators write them, the connection's default schema.
        "CONSENTGATE_PG_SCHEMA": os.environ.get("CONSENTGATE_PG_SCHEMA", "public"),
    }
    return env
