"""Shared by the Airflow tests: a private AIRFLOW_HOME (set in the environment on import, before anything
imports airflow, which reads its configuration at import time), demo warehouses, and readers for what a
dag.test() run did (task states, XComs, OpenLineage events).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpserver import serving
from reference import Event, decide, reason_for
from reference import enforce as reference_enforce

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="consentgate-airflow-"))
# Removed when the test process exits, whether or not any Airflow test ran.
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
OPENLINEAGE_EVENTS = AIRFLOW_HOME / "openlineage" / "events.jsonl"
POOL = "consentgate_duckdb"

if "airflow" in sys.modules:  # pragma: no cover - a guard, not a code path
    raise pytest.UsageError(
        "airflow was imported before tests/airflow/conftest.py could point AIRFLOW_HOME at a temp dir; "
        "run tests/airflow in its own pytest process or import airflow lazily"
    )

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    # The consentgate plugin comes from its entry point; the plugins folder is private (and empty).
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(AIRFLOW_HOME / "plugins"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    "AIRFLOW__OPENLINEAGE__NAMESPACE": "consentgate-tests",
    "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
        {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True}
    ),
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}
# The nightly DAG runs `dbt deps` and `dbt build` in its project (CONSENTGATE_DBT_PROJECT_DIR), and `dbt
# deps` writes there: each test process (each pytest-xdist worker) gets a copy of its own, never the
# repository's (tests/conftest.py fails the session if a test writes into dbt_project/).
if str(REPO / "tests" / "dbt") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "dbt"))
from dbt_harness import copy_package  # noqa: E402

DBT_PROJECT = copy_package(AIRFLOW_HOME / "dbt_project", install=False)
AIRFLOW_ENV["CONSENTGATE_DBT_PROJECT_DIR"] = str(DBT_PROJECT)
os.environ.update(AIRFLOW_ENV)
OPENLINEAGE_EVENTS.parent.mkdir(parents=True, exist_ok=True)


def airflow_cli(*args: str, check: bool = True, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """Run the `airflow` CLI of this venv with the tests' AIRFLOW_HOME."""
    return subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env={**os.environ, **AIRFLOW_ENV},
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


@contextmanager
def api_server(**env: str) -> Iterator[str]:
    """A real `airflow api-server` (this venv, the tests' AIRFLOW_HOME) on a free port; yields its URL."""
    with serving(
        lambda port: [str(VENV_BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        {**os.environ, **AIRFLOW_ENV, **env},
        "/api/v2/version",
        AIRFLOW_HOME / "api-server.log",
    ) as url:
        yield url


def nightly_dag(
    mp: pytest.MonkeyPatch, tmp: Path, conn_id: str, conn_uri: str, policy: Path | None = None
) -> Any:
    """The nightly DAG, parsed with its warehouse on the Airflow connection `conn_id` (conn_uri, as an
    AIRFLOW_CONN_* variable), `policy` or the demo policy, dbt's target/ and logs/ under tmp, and no
    setting left that could point a task elsewhere (a DuckDB file, a dbt target, a schema)."""
    from airflow.dag_processing.dagbag import DagBag

    mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn_uri)
    mp.setenv("CONSENTGATE_CONN_ID", conn_id)
    if policy is None:
        mp.delenv("CONSENTGATE_POLICY", raising=False)
    else:
        mp.setenv("CONSENTGATE_POLICY", str(policy))
    mp.delenv("AIRFLOW_CONN_DUCKDB_DEFAULT", raising=False)  # nothing may fall back to a DuckDB file
    for name in (
        "CONSENTGATE_POOL",
        "CONSENTGATE_DBT_TARGET",
        "CONSENTGATE_PG_SCHEMA",
        "CONSENTGATE_SPARK_SCHEMA",
    ):
        mp.delenv(name, raising=False)
    mp.delenv("SPARK_REMOTE", raising=False)
    mp.setenv("DBT_TARGET_PATH", str(tmp / "dbt_target"))
    mp.setenv("DBT_LOG_PATH", str(tmp / "dbt_logs"))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags["consent_enforcement_nightly"]


def build_demo(path: Path, subjects: int = 300) -> Path:
    """The demo warehouse (`consentgate demo --no-enforce`) at path."""
    subprocess.run(
        [
            str(VENV_BIN / "consentgate"),
            "demo",
            "--database",
            str(path),
            "--subjects",
            str(subjects),
            "--no-enforce",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return path


def demo_tables(
    demo: Path, copied: dict[str, str]
) -> Iterator[tuple[str, list[tuple[str, str]], list[tuple]]]:
    """For each demo table `copied` maps (schema.table -> its copy's name): the copy's name, the
    table's (column, DuckDB type) in order, and its rows."""
    import duckdb

    with duckdb.connect(str(demo), read_only=True) as dk:
        for src, dst in copied.items():
            schema, name = src.split(".")
            cols = dk.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, name],
            ).fetchall()
            yield dst, [(str(c), str(t)) for c, t in cols], dk.execute(f"SELECT * FROM {src}").fetchall()


def duckdb_conn(path: Path) -> str:
    return json.dumps({"conn_type": "duckdb", "host": str(path)})


# -- reading back what a dag.test() run did ---------------------------------------------------------


def task_states(dag_run: Any) -> dict[str, str]:
    """{task_id or task_id[map_index]: state} of a finished dag.test() run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in tis
        }


def try_numbers(dag_run: Any) -> dict[str, int]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): ti.try_number
            for ti in dag_run.get_task_instances(session=session)
        }


def xcoms(dag_run: Any, task_id: str, key: str = "return_value") -> list[Any]:
    """The XCom values `key` of every map index of a task, in map-index order."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .order_by(XComModel.map_index)
            .all()
        )
        return [XComModel.deserialize_value(r) for r in rows]


def openlineage_events() -> list[dict[str, Any]]:
    if not OPENLINEAGE_EVENTS.exists():
        return []
    return [json.loads(line) for line in OPENLINEAGE_EVENTS.read_text().splitlines() if line.strip()]


def run_dag(dag: Any, logical_date: Any) -> Any:
    """dag.test() for a DAG defined in a test: dag.test() only serializes DAGs found in the DAG bundles,
    so register this one in the metadata DB first. Returns the finished DagRun."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    empty = AIRFLOW_HOME / "no-dags"
    empty.mkdir(exist_ok=True)
    bag = DagBag(dag_folder=str(empty))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(logical_date=logical_date)


# -- a small warehouse where every rule of docs/semantics.md decides at least one row -----------------

AS_OF = datetime(2026, 6, 1)
LOGICAL_DATE = datetime.fromisoformat("2026-06-01T00:00:00+00:00")

SETUP = [
    "CREATE SCHEMA raw",
    "CREATE TABLE raw.customers (customer_id BIGINT, email VARCHAR(100), country VARCHAR(2))",
    "CREATE TABLE raw.email_engagement (message_id BIGINT, email VARCHAR(100), action VARCHAR(20))",
    "CREATE TABLE consent_events (subject_id VARCHAR(100), purpose VARCHAR(50), status VARCHAR(20), "
    "event_ts TIMESTAMP, recorded_at TIMESTAMP, expires_at TIMESTAMP, source VARCHAR(50), "
    "policy_version VARCHAR(10))",
    "INSERT INTO raw.customers VALUES "
    "(1, 'one@example.com', 'DE'), (2, 'two@example.com', 'FR'), (3, 'three@example.com', 'NL'), "
    "(4, 'four@example.com', 'US'), (5, 'five@example.com', 'GB'), (6, 'six@example.com', 'ES'), "
    "(7, 'seven@example.com', 'DE'), (8, 'eight@example.com', 'FR'), (9, 'nine@example.com', 'NL'), "
    "(10, 'ten@example.com', 'US'), (11, 'eleven@example.com', 'GB'), (NULL, 'anon@example.com', 'ES'), "
    "(1, 'one.again@example.com', 'DE')",
    "INSERT INTO raw.email_engagement VALUES "
    "(1, 'Ann@Example.com', 'opened'), (2, ' ann@example.com', 'clicked'), (3, 'bob@example.com', 'opened'), "
    "(4, NULL, 'opened'), (5, '', 'opened'), (6, 'cat@example.com', 'clicked')",
    "INSERT INTO consent_events VALUES "
    "('1', 'ad_targeting', 'granted', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('2', 'ad_targeting', 'denied', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('3', 'ad_targeting', 'granted', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('3', 'ad_targeting', 'withdrawn', TIMESTAMP '2026-03-01 00:00:00', NULL, NULL, 'gpc', 'v1'), "
    "('4', 'ad_targeting', 'granted', TIMESTAMP '2026-01-01 00:00:00', NULL, TIMESTAMP '2026-05-01 00:00:00', 'banner', 'v1'), "
    "('5', 'ad_targeting', 'pending', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('7', 'ad_targeting', 'granted', TIMESTAMP '2026-02-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('7', 'ad_targeting', 'withdrawn', TIMESTAMP '2026-02-01 00:00:00', NULL, NULL, 'support', 'v1'), "
    "('8', 'ad_targeting', 'granted', TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-07-01 00:00:00', NULL, 'import', 'v1'), "
    "(' 9 ', ' Ad_Targeting ', ' GRANTED ', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('10', 'ad_targeting', 'withdrawn', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'banner', 'v1'), "
    "('10', 'ad_targeting', 'granted', TIMESTAMP '2026-04-01 00:00:00', NULL, NULL, 'settings', 'v2'), "
    "('11', 'email_marketing', 'granted', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'newsletter', 'v1'), "
    "('ANN@example.COM', 'email_marketing', 'granted', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'form', 'v1'), "
    "('bob@example.com', 'email_marketing', 'denied', TIMESTAMP '2026-01-01 00:00:00', NULL, NULL, 'form', 'v1')",
]
IDENTIFIERS = ["one@example.com", "Ann@Example.com", "ann@example.com", "bob@example.com", "cat@example.com"]


def seed(con: Any) -> None:
    cur = con.cursor()
    for sql in SETUP:
        cur.execute(sql)
    con.commit()


def read(con: Any, sql: str) -> list[tuple]:
    cur = con.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def events(con: Any) -> list[Event]:
    return [
        Event(*row)
        for row in read(
            con, "SELECT subject_id, purpose, status, event_ts, recorded_at, expires_at FROM consent_events"
        )
    ]


def asset_events(dag_run: Any) -> dict[str, dict[str, Any]]:
    """{asset uri: event extra} of the asset events a dag.test() run emitted."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent).filter_by(source_dag_id=dag_run.dag_id, source_run_id=dag_run.run_id)
        return {e.asset.uri: dict(e.extra or {}) for e in rows}


# -- the demo policy's datasets and the example project's models, as the e2e tests check them --------

# dataset -> (source, target, row id column, subject column, purpose, normalize): the demo policy
DEMO_DATASETS = {
    "customers": ("raw.customers", "consented.customers", "customer_id", "customer_id", "ad_targeting", None),
    "web_events": ("raw.web_events", "consented.web_events", "event_id", "customer_id", "ad_targeting", None),
    "purchases": ("raw.purchases", "consented.purchases", "order_id", "customer_id", "ad_targeting", None),
    "email_engagement": (
        "raw.email_engagement",
        "consented.email_engagement",
        "message_id",
        "email",
        "email_marketing",
        "lower",
    ),
}


def demo_models(schema: str) -> dict[str, tuple[str, str, str | None]]:
    """The example project's ad-targeting models in dbt's target schema -> (subject column, purpose,
    normalize)."""
    return {
        f"{schema}.ad_audience": ("customer_id", "ad_targeting", None),
        f"{schema}.ad_lookalike_seed": ("customer_id", "ad_targeting", None),
        f"{schema}.ad_customer_features": ("customer_id", "ad_targeting", None),
        f"{schema}.email_audience": ("email", "email_marketing", "lower"),
    }


def assert_targets_match_reference(state: dict[str, Any], as_of: datetime) -> None:
    """Every target holds exactly the reference's consented rows; its one lineage row has the same counts.
    `state`: sources, events, targets (sorted rows per dataset) and lineage rows (run_id, dataset,
    trigger, task_id, dag_id, airflow_run_id, rows_in, rows_out, the six excluded counts, fingerprint)."""
    cutoff = as_of.astimezone(UTC).replace(tzinfo=None)
    for name, (_s, _t, _id, _subj, purpose, normalize) in DEMO_DATASETS.items():
        kept, counts = reference_enforce(state["sources"][name], state["events"], purpose, cutoff, normalize)
        assert kept, f"{name}: the reference keeps no row, the check would prove nothing"
        assert state["targets"][name] == sorted(kept), name
        rows = [r for r in state["lineage"] if r[2] == "airflow" and r[1] == name]
        assert len(rows) == 1, (name, rows)
        assert rows[0][6:14] == (len(kept) + sum(counts.values()), len(kept), *counts.values()), name


def assert_models_hold_only_consented_subjects(state: dict[str, Any], as_of: datetime, schema: str) -> None:
    cutoff = as_of.astimezone(UTC).replace(tzinfo=None)
    for table, (_col, purpose, normalize) in demo_models(schema).items():
        decided = decide(state["events"], purpose, cutoff, normalize)
        subjects = [row[0] for row in state["tables"][table]]
        assert subjects, f"dbt model {table} is empty"
        assert [s for s in subjects if reason_for(s, decided, normalize) is not None] == [], table
