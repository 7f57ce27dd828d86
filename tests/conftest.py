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
#: - CONNECT_UNIT: the tests on the Spark Connect cluster (one cluster, one Derby metastore);
#: - THRIFT_UNIT: the tests on Spark's Thrift server (a second Spark, with a metastore of its own);
#: - every other module is a unit of its own (its module fixtures are set up once).
#: dbt never runs in the repository's own project (two workers would share it): see repo_untouched.
CONNECT_UNIT = "spark-connect"
THRIFT_UNIT = "spark-thrift"
CONNECT_FIXTURES = frozenset({"spark_server", "spark_session"})
THRIFT_FIXTURES = frozenset({"spark_thrift_server", "thrift_connection"})


def _unit(nodeid: str) -> str:
    """The work unit of a test, from its node id alone (the controller collects nothing)."""
    module = nodeid.split("::")[0]
    name = Path(module).name
    if "thrift" in name:
        return THRIFT_UNIT
    if "spark" in name:
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
    beside (two clusters on one metastore, or two workers starting one): refuse the collection and name it."""
    for item in items:
        module = item.nodeid.split("::")[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        needs = (
            THRIFT_UNIT
            if fixtures & THRIFT_FIXTURES
            else CONNECT_UNIT
            if fixtures & CONNECT_FIXTURES
            else None
        )
        if fixtures & THRIFT_FIXTURES and fixtures & CONNECT_FIXTURES:
            raise pytest.UsageError(f"{item.nodeid} uses the Thrift server and the Connect cluster: split it")
        if needs and _unit(item.nodeid) != needs:
            raise pytest.UsageError(
                f"{module} must run in the work unit {needs!r}: name it *thrift* or *spark*"
            )


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_mtime_ns for p in root.rglob("*")}


@pytest.fixture(scope="session", autouse=True)
def repo_untouched() -> Iterator[None]:
    """No test writes into the repository's dbt project (`dbt deps`, target/, logs/): dbt runs in private
    copies (tests/dbt/dbt_harness.copy_package; the nightly DAG's through cg_airflow.DBT_PROJECT), so
    tests on two workers never share a project and a fresh clone gets nothing a test left behind."""
    root = TESTS.parent / "dbt_project"
    before = _tree(root)
    yield
    changed = sorted(set(before.items()) ^ set(_tree(root).items()))
    if changed:
        raise AssertionError(f"a test wrote into {root}: {sorted({name for name, _ in changed})[:10]}")


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
