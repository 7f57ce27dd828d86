"""Fixtures for the dbt package tests (tests/dbt/). Reuses the session PostgreSQL server (pg_server)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dbt_harness import (  # noqa: E402
    Backend,
    copy_package,
    duckdb_backend,
    example_on_duckdb,
    postgres_backend,
    run_dbt,
)


@pytest.fixture(scope="session")
def demo_duckdb_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the example's demo sources (`dbt run-operation create_demo_sources`),
    made once per session; tests work on copies of it."""
    base = tmp_path_factory.mktemp("demo_template")
    project = copy_package(base / "pkg")
    backend = duckdb_backend(base / "template.duckdb")
    run_dbt(project, ["run-operation", "create_demo_sources"], backend)
    return base / "template.duckdb"


@pytest.fixture
def example_duckdb(tmp_path: Path, demo_duckdb_template: Path) -> tuple[Path, Backend]:
    """A private copy of the example project on a private DuckDB file with the demo sources."""
    return example_on_duckdb(tmp_path, demo_duckdb_template)


@pytest.fixture
def example_postgres(tmp_path: Path, pg_db) -> Iterator[tuple[Path, Backend]]:  # noqa: ANN001
    """A private copy of the example project on a fresh PostgreSQL database, demo sources loaded."""
    project = copy_package(tmp_path / "pkg")
    backend = postgres_backend(pg_db, schema="example")
    run_dbt(project, ["run-operation", "create_demo_sources"], backend)
    yield project, backend
