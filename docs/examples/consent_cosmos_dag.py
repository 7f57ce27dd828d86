"""The consentgate dbt example project run by astronomer-cosmos: one Airflow task per dbt model (or one
`dbt build` watched per model), every task's evidence in one consentgate run with one consent cut-off.

Copy this file into your DAGs folder and adapt the settings below (docs/cosmos.md). The tests run this
very file (tests/cosmos/), on DuckDB and PostgreSQL, in both execution modes.

Settings, all read from the environment when the file is parsed (no connection is opened then):
  CONSENTGATE_DBT_PROJECT_DIR         the dbt project (default: the example, dbt_project/integration_tests);
                                      its dbt_packages/ must be installed (`dbt deps`) when you deploy
  CONSENTGATE_CONN_ID                 the Airflow connection of the warehouse (default duckdb_default)
  CONSENTGATE_DBT_TARGET              duckdb | postgres: which cosmos profile mapping reads that connection
  CONSENTGATE_DBT_SCHEMA              the target schema (default: main on DuckDB, public on PostgreSQL)
  CONSENTGATE_DBT_SOURCE_SCHEMA       where the raw tables live (the example's consentgate_source_schema)
  CONSENTGATE_COSMOS_EXECUTION_MODE   local (default: one dbt invocation per model) | watcher
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG
from consentgate.airflow.common import DUCKDB_POOL, PARALLEL_POOL
from consentgate.airflow.cosmos import consent_operator_args
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import DuckDBUserPasswordProfileMapping, PostgresUserPasswordProfileMapping

PROJECT_DIR = Path(
    os.environ.get(
        "CONSENTGATE_DBT_PROJECT_DIR",
        Path(__file__).resolve().parents[2] / "dbt_project" / "integration_tests",
    )
)
CONN_ID = os.environ.get("CONSENTGATE_CONN_ID", "duckdb_default")
TARGET = os.environ.get("CONSENTGATE_DBT_TARGET", "duckdb")
EXECUTION_MODE = ExecutionMode(os.environ.get("CONSENTGATE_COSMOS_EXECUTION_MODE", "local"))
SOURCE_SCHEMA = os.environ.get("CONSENTGATE_DBT_SOURCE_SCHEMA")

if TARGET == "duckdb":
    SCHEMA = os.environ.get("CONSENTGATE_DBT_SCHEMA", "main")
    MAPPING = DuckDBUserPasswordProfileMapping(conn_id=CONN_ID, profile_args={"schema": SCHEMA})
    # DuckDB allows one writing process per database file: every dbt task waits for the one slot of
    # this pool (create it once: `airflow pools set consentgate_duckdb 1 "one DuckDB writer"`).
    POOL = DUCKDB_POOL
else:
    SCHEMA = os.environ.get("CONSENTGATE_DBT_SCHEMA", "public")
    MAPPING = PostgresUserPasswordProfileMapping(conn_id=CONN_ID, profile_args={"schema": SCHEMA})
    POOL = PARALLEL_POOL  # PostgreSQL: model tasks run in parallel; log_lineage serializes its writes

operator_args = consent_operator_args(
    # dbt vars of every task; consent_operator_args adds consentgate_run_id and consentgate_as_of,
    # rendered from the Airflow run, so all tasks of a DAG run write one consentgate run.
    vars={"consentgate_source_schema": SOURCE_SCHEMA} if SOURCE_SCHEMA else {},
    # The watcher's model tasks only watch the one `dbt build` task: only that one needs the pool.
    pool=POOL if EXECUTION_MODE == ExecutionMode.LOCAL else PARALLEL_POOL,
)

with DAG(
    dag_id="consent_cosmos_example",
    description="The consentgate dbt example through astronomer-cosmos; evidence in one run per DAG run.",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one run at a time: each DAG run is one consentgate run
    default_args={"retries": 0},  # a failure stays recorded in the run: trigger a new DAG run instead
    tags=["consentgate", "cosmos"],
    doc_md=__doc__,
) as dag:
    DbtTaskGroup(
        group_id="ad_targeting",
        project_config=ProjectConfig(
            PROJECT_DIR,
            # cosmos runs dbt in a copy of the project in a temp dir, where the example's
            # `packages.yml` (`local: ../`) points nowhere: install packages when you deploy
            # (`dbt deps` in the project) and let cosmos link that dbt_packages/ into its copy.
            install_dbt_deps=False,
        ),
        profile_config=ProfileConfig(
            profile_name="consentgate_integration_tests", target_name=TARGET, profile_mapping=MAPPING
        ),
        execution_config=ExecutionConfig(
            execution_mode=EXECUTION_MODE,
            # dbt as a subprocess: dbt's in-process runner is not safe for repeated use in one worker.
            invocation_mode=InvocationMode.SUBPROCESS,
            # watcher mode: the one `dbt build` task holds the warehouse pool.
            setup_operator_args={"pool": POOL} if EXECUTION_MODE == ExecutionMode.WATCHER else None,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,
            invocation_mode=InvocationMode.SUBPROCESS,
            test_behavior=TestBehavior.AFTER_EACH,  # each model's tests (only_consented too) right after it
        ),
        operator_args=operator_args,
    )
