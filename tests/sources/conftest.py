"""Consent-source tests run on a real DuckDB database and on a real PostgreSQL server (the `db` fixture)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sources_db import Db  # noqa: E402


@pytest.fixture(params=["duckdb", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "duckdb":
        import duckdb

        path = tmp_path / "warehouse.duckdb"
        con = duckdb.connect(str(path))
    else:
        server = request.getfixturevalue("pg_db")
        con, path = server.connect(), tmp_path
    try:
        yield Db(request.param, con, path)
    finally:
        con.close()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Db]:
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    try:
        yield Db("duckdb", con, path)
    finally:
        con.close()
