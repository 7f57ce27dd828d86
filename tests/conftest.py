from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from pgserver import PgServer, fresh_database, running_server  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server, started once for the whole session."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_db(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """A fresh, empty database on the session's server."""
    yield fresh_database(pg_server, request.node.name)
