"""Fixtures for the Airflow integration tests (helpers and the environment live in cg_airflow.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cg_airflow import AIRFLOW_HOME, POOL, airflow_cli, build_demo, duckdb_conn


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """`airflow db migrate` once per session, and the one-slot DuckDB pool the nightly DAG uses."""
    airflow_cli("db", "migrate")
    airflow_cli("pools", "set", POOL, "1", "consentgate: one DuckDB writer at a time")
    import airflow.configuration

    assert Path(airflow.configuration.AIRFLOW_HOME) == AIRFLOW_HOME
    yield AIRFLOW_HOME


@pytest.fixture
def demo_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh demo warehouse, wired as the `duckdb_default` Airflow connection."""
    path = build_demo(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", duckdb_conn(path))
    return path
