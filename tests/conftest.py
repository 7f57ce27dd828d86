from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from pgserver import PgServer, fresh_database, running_server  # noqa: E402
from sparkserver import (  # noqa: E402
    SparkServer,
    ThriftServer,
    fresh_schema,
    fresh_thrift_schema,
    running_thrift_server,
)
from sparkserver import running_server as running_spark  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server, started once for the whole session."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_db(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """A fresh, empty database on the session's server."""
    yield fresh_database(pg_server, request.node.name)


@pytest.fixture(scope="session")
def spark_server() -> Iterator[SparkServer]:
    """A real Spark cluster (master, worker, Spark Connect server), started once for the whole session."""
    with running_spark() as server:
        yield server


@pytest.fixture
def spark_session(spark_server: SparkServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new Spark Connect session whose current schema is a fresh, empty one named after the test
    (`spark_session.catalog.currentDatabase()`); stopped after the test."""
    spark, _schema = fresh_schema(spark_server, request.node.name)
    try:
        yield spark
    finally:
        spark.stop()


@pytest.fixture(scope="session")
def spark_thrift_server() -> Iterator[ThriftServer]:
    """A real Spark Thrift server (HiveServer2 protocol, local[2], its own metastore), started once for
    the whole session."""
    with running_thrift_server() as server:
        yield server


@pytest.fixture
def thrift_connection(spark_thrift_server: ThriftServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new SparkThriftConnection (one Thrift session) whose current schema is a fresh, empty one named
    after the test; closed after the test."""
    con, _schema = fresh_thrift_schema(spark_thrift_server, request.node.name)
    try:
        yield con
    finally:
        con.close()
