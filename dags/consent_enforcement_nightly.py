"""Nightly consent enforcement: ingest every consent source of the policy, check the consent log,
enforce every dataset of the policy, rebuild the dbt ad-targeting models, audit every ad-targeting
output (the enforced targets, and the dbt models the build's manifest marks `meta.consentgate`), and
close the run record.

Wiring only; the logic lives in the consentgate package (docs/airflow.md). Parsing this file opens no
connection and reads no Variable: the policy path and connection id are read when the run starts
(environment variable, else Airflow Variable, CONSENTGATE_POLICY / CONSENTGATE_CONN_ID).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task
from consentgate.airflow.common import consented_alias, warehouse_pool
from consentgate.airflow.operators import ConsentAuditOperator, ConsentFilterOperator, DbtBuildOperator

DBT_PROJECT = os.environ.get(
    "CONSENTGATE_DBT_PROJECT_DIR",
    str(Path(__file__).resolve().parents[1] / "dbt_project" / "integration_tests"),
)
# Every task that opens the warehouse runs in this pool. A pool is fixed when the DAG is parsed (the
# scheduler takes a mapped task's pool from partial()), so it is chosen from the environment alone, never
# from a Connection or Variable: CONSENTGATE_POOL if set; else `default_pool` (parallel) when
# CONSENTGATE_CONN_ID's connection is an AIRFLOW_CONN_* env var of type postgres; else the one-slot
# `consentgate_duckdb` (DuckDB allows one writing process per file). See docs/airflow.md.
POOL = warehouse_pool()

default_args = {
    "owner": "consentgate",
    "pool": POOL,
    # Transient failures (a locked DuckDB file, a lost connection) retry with exponential back-off;
    # data and rule errors raise AirflowFailException and fail at once (consentgate.errors.retryable).
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

with DAG(
    dag_id="consent_enforcement_nightly",
    description="Only rows of people who opted in reach ad targeting; evidence for every run.",
    schedule="0 2 * * *",  # 02:00 UTC
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "dbt_source_schema": Param("raw", type="string", description="schema of the raw tables, for dbt"),
    },
    tags=["consentgate", "privacy"],
    doc_md=__doc__,
) as dag:

    @task(pool="default_pool")
    def plan_sources(**context):
        """One entry per consent source of the policy (none: one entry that ingests nothing)."""
        from consentgate.airflow.tasks import source_plan

        return source_plan(context)

    @task(map_index_template="{{ consent_source | default('') }}")
    def ingest_source(name, **context):
        """Ingest one consent source into the consent log; counts only. A failure stops the run."""
        from airflow.sdk import get_current_context
        from consentgate.airflow.tasks import ingest_source as ingest

        get_current_context()["consent_source"] = name or "(no sources)"  # the task instance's label
        return ingest(name, context)

    ingested = ingest_source.expand_kwargs(plan_sources())

    # none_failed: a skipped ingest (an empty plan) lets the run go on; a failed ingest (a withdrawal
    # may be missing from the log) stops the consent check and every enforcement.
    @task(trigger_rule="none_failed")
    def check_consent_source(**context):
        """Fail closed on a missing/unreadable consent log; open the run; return one entry per dataset."""
        from consentgate.airflow.tasks import check_consent_source as check

        return check(context)

    datasets = check_consent_source()
    ingested >> datasets

    enforce = ConsentFilterOperator.partial(
        task_id="enforce_consent",
        map_index_template="{{ task.dataset }}",
        outlets=[consented_alias()],  # each target is announced as an asset event through this alias
    ).expand_kwargs(datasets)

    dbt_build = DbtBuildOperator(
        task_id="dbt_build_ad_targeting",
        project_dir=DBT_PROJECT,
        # The run's settings, as check_consent_source resolved them, so dbt's lineage joins this run.
        conn_id="{{ ti.xcom_pull(task_ids='check_consent_source', key='conn_id') }}",
        as_of="{{ ti.xcom_pull(task_ids='check_consent_source', key='as_of') }}",
        run_id="{{ ti.xcom_pull(task_ids='check_consent_source', key='run_id') }}",
        # The policy's purposes become var consentgate_purposes: a model calling another one fails to compile.
        policy="{{ ti.xcom_pull(task_ids='check_consent_source', key='policy') }}",
        vars={
            "consentgate_source_schema": "{{ params.dbt_source_schema }}",
            "consentgate_consent_relation": "{{ ti.xcom_pull(task_ids='check_consent_source', key='consent_table') }}",
        },
    )

    @task(pool="default_pool")
    def ad_targeting_outputs(datasets, dbt_result):
        """Every ad-targeting output to audit: the enforced targets, and the ad-targeting models the dbt
        build made, as its manifest describes them (meta.consentgate; the only_consented test's column)."""
        from consentgate.airflow.tasks import audit_plan, dbt_audit_models

        return audit_plan(datasets, dbt_audit_models(dbt_result))

    outputs = ad_targeting_outputs(datasets, dbt_build.output)

    audit = ConsentAuditOperator.partial(
        task_id="audit_ad_targeting", map_index_template="{{ task.table }}"
    ).expand_kwargs(outputs)

    @task(trigger_rule="all_done", retries=0)
    def close_run(**context):
        """Close the run record (success/failed), log the summary, fail if anything upstream failed."""
        from consentgate.airflow.tasks import close_run as close

        return close(context)

    enforce >> dbt_build
    audit >> close_run()
