"""DbtBuildOperator on a tiny dbt-duckdb project: dbt sees the run's cut-off and run id, reads the DuckDB
file of the Airflow connection, and a failing dbt build fails the task without retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from cg_airflow import LOGICAL_DATE, duckdb_conn, run_dag, task_states, try_numbers, xcoms

pytestmark = pytest.mark.slow

PROFILES = """\
tiny:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('CONSENTGATE_DUCKDB') }}"
      schema: main
      threads: 1
"""
PROJECT = """\
name: tiny
version: "1.0"
config-version: 2
profile: tiny
model-paths: ["models"]
"""
MODEL = """\
select '{{ var("consentgate_run_id") }}' as run_id,
       cast('{{ var("consentgate_as_of") }}' as timestamp) as as_of,
       '{{ var("greeting", "none") }}' as greeting
"""
# A model that errors; DuckDB's error message quotes the value, which the log must not show.
BAD_MODEL = (
    "{{ config(materialized='table') }}\n"
    "select cast(email as integer) as email from (select 'ann@example.com' as email) as t\n"
)


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    project = tmp_path / "tiny"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(PROJECT)
    (project / "profiles.yml").write_text(PROFILES)
    (project / "models" / "run_info.sql").write_text(MODEL)
    (project / "models" / "bad.sql").write_text(BAD_MODEL)
    return project


def test_dbt_gets_the_runs_cutoff_and_id_and_failures_are_not_retried(
    airflow_db,
    tiny_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
) -> None:
    import duckdb
    from airflow.sdk import DAG
    from consentgate.airflow.operators import DbtBuildOperator

    path = tmp_path / "dbt.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setenv("AIRFLOW_CONN_CG_DBT", duckdb_conn(path))
    common = {
        "project_dir": str(tiny_project),
        "conn_id": "cg_dbt",
        "target_path": str(tmp_path / "target"),
        "log_path": str(tmp_path / "logs"),
    }
    with DAG("cg_dbt_tiny", schedule=None, start_date=LOGICAL_DATE, default_args={"retries": 3}) as dag:
        ok = DbtBuildOperator(
            task_id="dbt_run",
            command="run",
            select="run_info",
            vars={"greeting": "{{ dag.dag_id }}"},
            **common,
        )
        failing = DbtBuildOperator(task_id="dbt_bad", command="run", select="bad", **common)
        ok >> failing
    dag_run = run_dag(dag, LOGICAL_DATE)
    captured = capfd.readouterr()
    log = captured.out + captured.err

    assert "Failure in model bad" in log  # dbt's output is streamed to the task log
    # The error event's text (DuckDB's message, quoting the value) is withheld, not pattern-redacted.
    assert "dbt RunResultError (error): message withheld" in log
    assert "Could not convert" not in log
    assert "ann@example.com" not in log
    assert task_states(dag_run) == {"dbt_run": "success", "dbt_bad": "failed"}
    assert try_numbers(dag_run)["dbt_bad"] == 1  # a failing dbt model is not transient: no retry
    (result,) = xcoms(dag_run, "dbt_run")
    assert result["results"] == {"success": 1}
    assert result["run_id"] == dag_run.run_id
    con = duckdb.connect(str(path))
    try:
        row = con.execute("SELECT run_id, as_of, greeting FROM main.run_info").fetchone()
    finally:
        con.close()
    assert row[0] == dag_run.run_id
    assert row[1].isoformat() == "2026-06-01T00:00:00"
    assert row[2] == "cg_dbt_tiny"  # user vars are templated and passed through


def test_dbt_command_line_carries_vars_and_flags(tiny_project: Path) -> None:
    import json

    from consentgate.airflow.operators import DbtBuildOperator

    op = DbtBuildOperator(
        task_id="dbt",
        project_dir=str(tiny_project),
        target="duckdb",
        command="build --full-refresh",
        select="tag:ads",
        exclude="tag:slow",
        dbt_bin="dbt",
    )
    cmd = op.build_command({"consentgate_as_of": "2026-06-01T00:00:00", "consentgate_run_id": "r1"})
    assert cmd[:3] == ["dbt", "build", "--full-refresh"]
    assert cmd[cmd.index("--project-dir") + 1] == str(tiny_project.resolve())
    assert cmd[cmd.index("--profiles-dir") + 1] == str(tiny_project.resolve())
    assert cmd[cmd.index("--target") + 1] == "duckdb"
    assert json.loads(cmd[cmd.index("--vars") + 1]) == {
        "consentgate_as_of": "2026-06-01T00:00:00",
        "consentgate_run_id": "r1",
    }
    assert cmd[cmd.index("--select") + 1] == "tag:ads"
    assert cmd[cmd.index("--exclude") + 1] == "tag:slow"
