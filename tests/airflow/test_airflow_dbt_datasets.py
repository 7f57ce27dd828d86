"""DbtBuildOperator on the example dbt project (dbt_project/integration_tests) with dag.test(): the
ad-targeting models it returns come from dbt's manifest (meta.consentgate and each model's only_consented
test), each is announced as an Airflow asset event, and its OpenLineage COMPLETE event lists the models
as outputs and their dbt parents, the consent log among them, as inputs."""

from __future__ import annotations

import shutil

import pytest
from cg_airflow import (
    REPO,
    asset_events,
    build_demo,
    duckdb_conn,
    openlineage_events,
    run_dag,
    task_states,
    xcoms,
)

pytestmark = pytest.mark.slow

# What dbt_project/integration_tests/models/ad_targeting/_ad_targeting.yml marks and tests, written out.
EXPECTED = [
    {"model": "ad_audience", "table": "main.ad_audience", "subject_column": "customer_id",
     "purpose": "ad_targeting", "normalize": None},
    {"model": "ad_customer_features", "table": "main.ad_customer_features", "subject_column": "customer_id",
     "purpose": "ad_targeting", "normalize": None},
    {"model": "ad_lookalike_seed", "table": "main.ad_lookalike_seed", "subject_column": "customer_id",
     "purpose": "ad_targeting", "normalize": None},
    {"model": "email_audience", "table": "main.email_audience", "subject_column": "email",
     "purpose": "email_marketing", "normalize": "lower"},
]  # fmt: skip
# Each model's parents in the dbt graph (its models' SQL), the consent log first.
PARENTS = {
    "ad_audience": {"main.consent_events", "main.stg_customers", "main.stg_web_events"},
    "ad_customer_features": {"main.consent_events", "main.stg_web_events"},
    "ad_lookalike_seed": {"main.consent_events", "main.stg_purchases"},
    "email_audience": {"main.consent_events", "main.stg_email_engagement"},
}


@pytest.fixture(scope="module")
def dbt_run(airflow_db, tmp_path_factory):
    from airflow.sdk import DAG
    from cg_airflow import LOGICAL_DATE
    from consentgate.airflow.operators import DbtBuildOperator

    tmp = tmp_path_factory.mktemp("dbt_datasets")
    shutil.copytree(
        REPO / "dbt_project",
        tmp / "pkg",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb", ".user.yml"),
    )
    path = build_demo(tmp / "warehouse.duckdb", subjects=60)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_CG_DBT_EXAMPLE", duckdb_conn(path))
    with DAG("cg_dbt_datasets", schedule=None, start_date=LOGICAL_DATE) as dag:
        DbtBuildOperator(
            task_id="dbt_build",
            project_dir=str(tmp / "pkg" / "integration_tests"),
            conn_id="cg_dbt_example",
            target_path=str(tmp / "target"),
            log_path=str(tmp / "logs"),
            policy=str(REPO / "plugins" / "consentgate" / "examples" / "demo_policy.yml"),
            vars={"consentgate_source_schema": "raw"},
        )
    dag_run = run_dag(dag, LOGICAL_DATE)
    yield {"dag_run": dag_run, "path": path, "states": task_states(dag_run)}
    mp.undo()


def test_the_models_returned_are_the_manifests_ad_targeting_models(dbt_run) -> None:
    assert dbt_run["states"] == {"dbt_build": "success"}
    (result,) = xcoms(dbt_run["dag_run"], "dbt_build")
    assert result["ad_targeting_models"] == EXPECTED


def test_each_model_built_is_announced_as_an_asset_event(dbt_run) -> None:
    base = f"duckdb://localhost{dbt_run['path'].resolve()}"
    events = asset_events(dbt_run["dag_run"])
    assert set(events) == {f"{base}/main/{m['model']}" for m in EXPECTED}
    for extra in events.values():
        assert extra["run_id"] == dbt_run["dag_run"].run_id


def test_openlineage_lists_the_models_as_outputs_and_the_consent_log_among_the_inputs(dbt_run) -> None:
    mine = [
        e
        for e in openlineage_events()
        if e["eventType"] == "COMPLETE"
        and e["job"]["name"] == "cg_dbt_datasets.dbt_build"
        and e["run"]["facets"]["airflow"]["dagRun"]["run_id"] == dbt_run["dag_run"].run_id
    ]
    assert mine, "no COMPLETE event for the dbt task"
    event = mine[-1]
    namespace = f"duckdb://{dbt_run['path'].resolve()}"
    stem = dbt_run["path"].stem

    def names(datasets):
        assert {d["namespace"] for d in datasets} == {namespace}
        return {d["name"].removeprefix(f"{stem}.") for d in datasets}

    assert names(event["outputs"]) == {f"main.{m['model']}" for m in EXPECTED}
    assert names(event["inputs"]) == set().union(*PARENTS.values())
    assert "main.consent_events" in names(event["inputs"])
