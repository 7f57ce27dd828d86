"""The dags/ folder loads cleanly, the nightly DAG has the promised shape, and parsing it is cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from cg_airflow import AIRFLOW_ENV, REPO

DAG_ID = "consent_enforcement_nightly"
DAG_FILE = REPO / "dags" / "consent_enforcement_nightly.py"
WAREHOUSE_TASKS = (
    "ingest_source",
    "check_consent_source",
    "enforce_consent",
    "dbt_build_ad_targeting",
    "audit_ad_targeting",
    "close_run",
)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_folder_loads_without_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dag_ids


def test_nightly_dag_runs_daily_at_two_utc_one_run_at_a_time(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    assert dag.timetable.expression == "0 2 * * *"
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.catchup is False
    assert dag.max_active_runs == 1


def test_nightly_dag_has_the_enforcement_pipeline(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    assert set(dag.task_ids) == {
        "plan_sources",
        "ingest_source",
        "check_consent_source",
        "enforce_consent",
        "dbt_build_ad_targeting",
        "ad_targeting_outputs",
        "audit_ad_targeting",
        "close_run",
    }

    def downstream(task_id: str) -> set[str]:
        return set(dag.get_task(task_id).downstream_task_ids)

    # Every consent source is ingested (one mapped task each) before the consent check opens the run.
    assert downstream("plan_sources") == {"ingest_source"}
    assert downstream("ingest_source") == {"check_consent_source"}
    assert set(dag.get_task("check_consent_source").upstream_task_ids) == {"ingest_source"}
    assert downstream("check_consent_source") == {"enforce_consent", "ad_targeting_outputs"}
    assert downstream("enforce_consent") == {"dbt_build_ad_targeting"}
    assert downstream("dbt_build_ad_targeting") == {"ad_targeting_outputs"}
    assert downstream("ad_targeting_outputs") == {"audit_ad_targeting"}
    assert downstream("audit_ad_targeting") == {"close_run"}
    # The enforcement and the audits are mapped, one task instance per dataset / output.
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.get_task("ingest_source"), MappedOperator)
    assert isinstance(dag.get_task("enforce_consent"), MappedOperator)
    assert isinstance(dag.get_task("audit_ad_targeting"), MappedOperator)


def test_the_dbt_models_to_audit_come_from_the_dbt_build_not_from_a_list_in_the_dag(dagbag) -> None:
    """One source of truth: the dbt project marks its ad-targeting models (meta.consentgate); the DAG
    audits what the build's manifest says, passed from the dbt task's XCom, and has no model list."""
    dag = dagbag.dags[DAG_ID]
    assert "ad_targeting_models" not in dag.params
    assert "AD_TARGETING_MODELS" not in DAG_FILE.read_text()
    outputs = dag.get_task("ad_targeting_outputs")
    assert "dbt_build_ad_targeting" in outputs.upstream_task_ids
    assert "dbt_build_ad_targeting" in str(outputs.op_args) + str(outputs.op_kwargs)
    dbt = dag.get_task("dbt_build_ad_targeting")
    assert "key='policy'" in dbt.policy  # the policy's purposes are declared to dbt
    assert [o.name for o in dbt.outlets] == ["consentgate_consented"]  # each model built: an asset event


def test_transient_failures_retry_with_backoff_and_close_run_always_runs(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    for task_id in ("check_consent_source", "dbt_build_ad_targeting"):
        task = dag.get_task(task_id)
        assert task.retries >= 2
        assert task.retry_exponential_backoff
        assert task.max_retry_delay >= timedelta(minutes=5)
    ingest = dag.get_task("ingest_source")
    assert ingest.retries >= 2 and ingest.retry_exponential_backoff
    # No source: the mapped ingest is skipped and the check still runs. A failed ingest: it does not.
    assert dag.get_task("check_consent_source").trigger_rule == "none_failed"
    close = dag.get_task("close_run")
    assert close.trigger_rule == "all_done"
    assert close.retries == 0


def test_every_task_that_opens_the_warehouse_runs_in_the_duckdb_pool(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    for task_id in WAREHOUSE_TASKS:
        assert dag.get_task(task_id).pool == "consentgate_duckdb", task_id


_PARSE_PROBE = """
import importlib.util, json, sys, time
from airflow.sdk import BaseHook, Variable

def forbidden(*args, **kwargs):
    raise AssertionError("DAG parsing must not read a Variable or a Connection")

Variable.get = forbidden
BaseHook.get_connection = forbidden
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("consent_enforcement_nightly", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
new = set(sys.modules) - before
print(json.dumps({
    "seconds": elapsed,
    "tasks": sorted(module.dag.task_ids),
    "heavy": sorted(m for m in sys.modules if m.split(".")[0] in ("duckdb", "dbt", "pandas", "psycopg2",
                                                                 "psycopg", "openlineage")),
    "new_consentgate": sorted(m for m in new if m.startswith("consentgate")),
}))
"""


def test_parsing_the_dag_imports_no_database_or_dbt_and_reads_no_variable() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PARSE_PROBE, str(DAG_FILE)],
        env={**AIRFLOW_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"parsing {DAG_FILE.name} took {probe['seconds']:.3f}s (after importing airflow.sdk)")
    assert probe["heavy"] == []
    assert "consentgate.airflow.operators" in probe["new_consentgate"]
    assert len(probe["tasks"]) == 8


def test_run_settings_come_from_the_environment_then_airflow_variables_then_defaults(monkeypatch) -> None:
    from consentgate.airflow.tasks import default_policy_path, setting

    monkeypatch.delenv("CONSENTGATE_POLICY", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_CONSENTGATE_POLICY", raising=False)
    assert setting("CONSENTGATE_POLICY", default_policy_path()) == default_policy_path()
    assert default_policy_path().endswith("consentgate/examples/demo_policy.yml")
    monkeypatch.setenv("AIRFLOW_VAR_CONSENTGATE_POLICY", "/from/variable.yml")  # an Airflow Variable
    assert setting("CONSENTGATE_POLICY", "unused") == "/from/variable.yml"
    monkeypatch.setenv("CONSENTGATE_POLICY", "/from/env.yml")
    assert setting("CONSENTGATE_POLICY", "unused") == "/from/env.yml"
