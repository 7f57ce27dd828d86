"""The dbt example project run by astronomer-cosmos, from the DAG file docs/cosmos.md tells users to copy
(docs/examples/consent_cosmos_dag.py), with dag.test(): per model (cosmos' default local execution mode,
one dbt invocation per model and per model's tests) and in watcher mode (one `dbt build`, watched per
model), on DuckDB and on PostgreSQL.

Every DAG run leaves one consentgate run, under the Airflow run's id, with the Airflow run's cut-off, a
lineage row for every gated model, and `consentgate verify` clean; a planted violation (a model letting
a customer without consent through) is recorded as a failed run."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cg_airflow import REPO, VENV_BIN, duckdb_conn, run_dag, task_states
from dbt_harness import Backend, copy_package, duckdb_backend, postgres_backend, run_dbt
from example_expectations import CALLS

pytestmark = pytest.mark.slow

DAG_FILE = REPO / "docs" / "examples" / "consent_cosmos_dag.py"
FIXTURES = Path(__file__).parent / "fixtures"
DAG_ID = "consent_cosmos_example"
GATED = sorted(CALLS)  # the example's models that call consented()
MODES = ["local", "watcher"]
BACKENDS = ["duckdb", "postgres"]


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the example's demo sources, made once; each test works on a copy."""
    base = tmp_path_factory.mktemp("cosmos_template")
    project = copy_package(base / "pkg")
    run_dbt(project, ["run-operation", "create_demo_sources"], duckdb_backend(base / "template.duckdb"))
    return base / "template.duckdb"


def warehouse(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Path, request: pytest.FixtureRequest
) -> tuple[Path, Backend]:
    """A private copy of the example project and a warehouse with the demo sources, wired as the
    Airflow connection the DAG file reads (CONSENTGATE_CONN_ID)."""
    project = copy_package(tmp_path / "pkg")  # dbt_packages/ installed, as `dbt deps` at deploy time
    if name == "duckdb":
        shutil.copyfile(template, tmp_path / "warehouse.duckdb")
        backend = duckdb_backend(tmp_path / "warehouse.duckdb")
        monkeypatch.setenv("CONSENTGATE_CONN_ID", "cg_warehouse")
        monkeypatch.setenv("AIRFLOW_CONN_CG_WAREHOUSE", duckdb_conn(tmp_path / "warehouse.duckdb"))
    else:
        pg = request.getfixturevalue("pg_db")
        backend = postgres_backend(pg, schema="example")
        run_dbt(project, ["run-operation", "create_demo_sources"], backend)
        monkeypatch.setenv("CONSENTGATE_CONN_ID", "cg_warehouse")
        monkeypatch.setenv(
            "AIRFLOW_CONN_CG_WAREHOUSE",
            json.dumps(
                {
                    "conn_type": "postgres",
                    "host": pg.host,
                    "port": pg.port,
                    "login": pg.user,
                    "password": "unused",
                    "schema": pg.dbname,
                }
            ),  # fmt: skip
        )
        monkeypatch.setenv("CONSENTGATE_DBT_SCHEMA", "example")
    monkeypatch.setenv("CONSENTGATE_DBT_TARGET", name)
    monkeypatch.setenv("CONSENTGATE_DBT_PROJECT_DIR", str(project))
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # cosmos runs `dbt`
    return project, backend


def load_dag(mode: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONSENTGATE_COSMOS_EXECUTION_MODE", mode)
    spec = importlib.util.spec_from_file_location(f"consent_cosmos_dag_{mode}", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def serial_watcher(dag: Any) -> None:
    """dag.test() runs one task at a time and ignores priority_weight, which is what makes cosmos'
    watcher producer (the one `dbt build`) start before the sensors that watch it. Make the sensors
    that have no upstream wait for the producer, so dag.test() runs it first (the scheduler needs
    nothing of the kind; cosmos' own CI does the same with trigger_rule="all_success")."""
    (producer,) = [t for t in dag.tasks if t.task_id.endswith(".dbt_producer_watcher")]
    for task in dag.tasks:
        if task is not producer and not task.upstream_task_ids:
            producer >> task
            task.trigger_rule = "all_success"


def _dicts(backend: Backend, sql: str) -> list[dict[str, Any]]:
    with backend.connect() as con:
        cur = con.cursor()
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run_cosmos(
    backend_name: str,
    mode: str,
    day: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    template: Path,
    request: pytest.FixtureRequest,
    *,
    planted: bool = False,
) -> dict[str, Any]:
    project, backend = warehouse(backend_name, tmp_path, monkeypatch, template, request)
    if planted:
        (project / "models" / "planted").mkdir()
        for name in ("planted_violation.sql", "planted_violation.yml"):
            shutil.copyfile(FIXTURES / name, project / "models" / "planted" / name)
    dag = load_dag(mode, monkeypatch)
    if mode == "watcher":
        serial_watcher(dag)
    # A distinct logical date per test: dag.test() runs of one DAG id never share a DagRun.
    logical = datetime(2026, 6, 1, 3, tzinfo=UTC) + timedelta(days=day)
    dag_run = run_dag(dag, logical)
    return {
        "dag_run": dag_run,
        "states": task_states(dag_run),
        "backend": backend,
        "runs": _dicts(backend, "select * from consentgate_runs"),
        "lineage": _dicts(backend, "select * from consentgate_lineage order by dataset"),
    }


def _day(backend_name: str, mode: str, planted: bool) -> int:
    return BACKENDS.index(backend_name) * 4 + MODES.index(mode) * 2 + int(planted)


def _cutoff(dag_run: Any) -> datetime:
    end = dag_run.data_interval_end or dag_run.run_after
    return end.astimezone(UTC).replace(tzinfo=None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend_name", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_cosmos_dag_run_leaves_one_complete_verified_run(
    airflow_db, backend_name, mode, tmp_path, monkeypatch, demo_template, request
) -> None:
    got = run_cosmos(
        backend_name, mode, _day(backend_name, mode, False), tmp_path, monkeypatch, demo_template, request
    )
    dag_run = got["dag_run"]
    assert str(dag_run.state) == "success", got["states"]
    # One run: under the Airflow run's id, with its cut-off, recorded successful.
    (run,) = got["runs"]
    assert run["run_id"] == f"{DAG_ID}:{dag_run.run_id}"
    assert run["as_of"] == _cutoff(dag_run)
    assert (run["status"], run["error"], run["trigger"]) == ("success", None, "dbt")
    # A lineage row for every gated model, all of this run, at this cut-off's consent fingerprint.
    assert sorted({r["dataset"].split("/")[0] for r in got["lineage"]}) == GATED
    assert json.loads(run["planned_datasets"]) == [r["dataset"] for r in got["lineage"]]
    assert {r["run_id"] for r in got["lineage"]} == {run["run_id"]}
    assert {r["consent_fingerprint"] for r in got["lineage"]} == {run["consent_fingerprint"]}

    from consentgate.engine.session import session_for
    from consentgate.evidence.verification import verify_run

    backend = got["backend"]
    with backend.connect() as con:
        result = verify_run(session_for(con, backend_name), run["run_id"])
    assert (result["status"], result["problems"], result["warnings"]) == ("verified", [], [])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend_name", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_planted_violation_is_recorded_as_a_failed_run(
    airflow_db, backend_name, mode, tmp_path, monkeypatch, demo_template, request
) -> None:
    got = run_cosmos(
        backend_name,
        mode,
        _day(backend_name, mode, True),
        tmp_path,
        monkeypatch,
        demo_template,
        request,
        planted=True,
    )
    assert str(got["dag_run"].state) == "failed"
    (run,) = got["runs"]
    assert run["run_id"] == f"{DAG_ID}:{got['dag_run'].run_id}"
    assert run["status"] == "failed"
    # Only the planted model's only_consented test failed; the tasks that succeeded left the run failed.
    assert re.fullmatch(
        r"1 node\(s\) failed: test\.consentgate_integration_tests\."
        r"consentgate_only_consented_planted_violation_customer_id__ad_targeting(\.[0-9a-f]+)?",
        run["error"],
    ), run["error"]
    assert sorted({r["dataset"].split("/")[0] for r in got["lineage"]}) == sorted(
        [*GATED, "planted_violation"]
    )

    from consentgate.engine.session import session_for
    from consentgate.evidence.verification import verify_run

    backend = got["backend"]
    with backend.connect() as con:
        result = verify_run(session_for(con, backend_name), run["run_id"])
    assert result["status"] == "failed"
    assert any("planted_violation: target" in p and "not consented" in p for p in result["problems"])
