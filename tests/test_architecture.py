"""The layer contract of docs/architecture.md holds, and imports stay cheap where it matters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("duckdb", "pandas", "dbt", "psycopg2", "psycopg", "openlineage", "fastapi", "pyspark", "yaml")

_PROBE = """
import importlib, json, sys, time
before = set(sys.modules)
start = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
elapsed = time.perf_counter() - start
new = set(sys.modules) - before
print(json.dumps({"seconds": elapsed, "new": sorted(new)}))
"""


def _imports(*modules: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heavy(new: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in new if m.split(".")[0] in HEAVY})


def test_the_import_contract_holds() -> None:
    """lint-imports checks the layers, that only consentgate.airflow imports Airflow and nothing dbt."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout
    assert result.stdout.count("KEPT") >= 3


def test_import_consentgate_loads_no_engine_database_or_yaml() -> None:
    probe = _imports("consentgate")
    print(f"import consentgate: {probe['seconds']:.3f}s")
    assert _heavy(probe["new"]) == []
    assert [m for m in probe["new"] if m.startswith("consentgate.")] == []


@pytest.mark.parametrize(
    "module",
    [
        "consentgate.engine.enforcement",
        "consentgate.evidence.report",
        "consentgate.evidence.verification",
        "consentgate.dbt.coverage",
        "consentgate.cli",
    ],
)
def test_light_layers_import_no_database_driver_or_client(module: str) -> None:
    """The engine and the readers load DuckDB, PyYAML and the OpenLineage client only when used."""
    probe = _imports(module)
    print(f"import {module}: {probe['seconds']:.3f}s")
    assert _heavy(probe["new"]) == []
    assert not any(m == "airflow" or m.startswith("airflow.") for m in probe["new"])


def test_importing_the_operators_loads_no_database_dbt_or_lineage_client() -> None:
    """What a DAG file pays for the operators, beyond Airflow's own SDK."""
    base = _imports("airflow.sdk")
    probe = _imports("airflow.sdk", "consentgate.airflow.operators")
    print(f"airflow.sdk: {base['seconds']:.3f}s; with consentgate.airflow.operators: {probe['seconds']:.3f}s")
    extra = sorted(set(probe["new"]) - set(base["new"]))
    assert _heavy(extra) == []
    assert not [m for m in extra if m.startswith("airflow.providers")]
