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

#: scripts/test.sh runs two pytest-xdist workers; the scheduler below sends work units, largest first.
#: A unit runs on one worker, so a session fixture it needs is started by one worker only:
#: - CONNECT_UNIT: the tests on the Spark Connect cluster (one cluster, one Derby metastore), and those
#:   that run dbt in the repository's own example project (`dbt deps`, marked repo_project), which the
#:   Spark nightly test does too;
#: - THRIFT_UNIT: the tests on Spark's Thrift server (a second Spark, with a metastore of its own);
#: - every other module is a unit of its own (its module fixtures are set up once).
CONNECT_UNIT = "spark-connect-and-repo-project"
THRIFT_UNIT = "spark-thrift"
REPO_PROJECT_MODULES = frozenset(
    {
        "tests/airflow/test_airflow_ingest_e2e.py",
        "tests/airflow/test_airflow_nightly_e2e.py",
        "tests/airflow/test_airflow_postgres_e2e.py",
        "tests/cosmos/test_nightly_run_verifies_clean.py",
    }
)
CONNECT_FIXTURES = frozenset({"spark_server", "spark_session"})
THRIFT_FIXTURES = frozenset({"spark_thrift_server", "thrift_connection"})


def _unit(nodeid: str) -> str:
    """The work unit of a test, from its node id alone (the controller collects nothing)."""
    module = nodeid.split("::")[0]
    name = Path(module).name
    if "thrift" in name:
        return THRIFT_UNIT
    if "spark" in name or module in REPO_PROJECT_MODULES:
        return CONNECT_UNIT
    return module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units by _unit. (xdist's own `xdist_group` mark cannot do this on pytest 9.2:
    pytest-dev/pytest-xdist#1386, the group suffix of a node id no longer takes effect.)"""
    if config.getvalue("dist") not in ("load", "loadscope"):
        return None  # an explicit --dist each/loadfile/worksteal: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class Scheduler(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return Scheduler(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test whose module name puts it in the wrong unit would run beside the tests it must not run
    beside (two clusters, or two dbt runs in one project): refuse the collection and name it."""
    for item in items:
        module = item.nodeid.split("::")[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        needs = (
            THRIFT_UNIT if fixtures & THRIFT_FIXTURES
            else CONNECT_UNIT if fixtures & CONNECT_FIXTURES or item.get_closest_marker("repo_project")
            else None
        )  # fmt: skip
        if fixtures & THRIFT_FIXTURES and fixtures & CONNECT_FIXTURES:
            raise pytest.UsageError(f"{item.nodeid} uses the Thrift server and the Connect cluster: split it")
        if needs and _unit(item.nodeid) != needs:
            raise pytest.UsageError(
                f"{module} must run in the work unit {needs!r}: name it *thrift* or *spark*, or list it "
                "in REPO_PROJECT_MODULES (tests/conftest.py)"
            )
        if module in REPO_PROJECT_MODULES and item.get_closest_marker("repo_project") is None:
            raise pytest.UsageError(f"{module} is in REPO_PROJECT_MODULES: mark its tests repo_project")


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
