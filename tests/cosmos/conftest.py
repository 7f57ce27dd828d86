"""Fixtures for the astronomer-cosmos tests: the Airflow test environment of tests/airflow (a private
AIRFLOW_HOME, set before anything imports airflow) and the dbt harness of tests/dbt."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in ("airflow", "dbt"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from cg_airflow import AIRFLOW_HOME, POOL, airflow_cli  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """`airflow db migrate` once per session, and the one-slot DuckDB pool the example DAG uses."""
    airflow_cli("db", "migrate")
    airflow_cli("pools", "set", POOL, "1", "consentgate: one DuckDB writer at a time")
    yield AIRFLOW_HOME
