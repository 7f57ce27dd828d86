"""The nightly DAG and its parallel enforcement on the suite's real PostgreSQL server.

The demo warehouse is built in a temporary DuckDB file (`consentgate demo --no-enforce`) and copied into
PostgreSQL (raw.* -> raw.*, main.consent_events -> public.consent_events). Then:

- the whole DAG runs with dag.test() on a `postgres` connection, dbt on the profile's postgres target,
  two nights: enforce, then an opt-out that must vanish from every target and ad-targeting model;
- the mapped enforcement's code path (ConsentFilterOperator.execute under one run id, the run opened by
  check_consent_source first) runs in several threads at once on one database: every lineage row lands,
  nothing deadlocks or collides, every target holds exactly the consented rows.

Every target is checked against tests/reference.py.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cg_airflow import (
    DEMO_DATASETS,
    assert_models_hold_only_consented_subjects,
    assert_targets_match_reference,
    asset_events,
    build_demo,
    demo_models,
    demo_tables,
    nightly_dag,
    task_states,
    xcoms,
)
from pgserver import PgServer, fresh_database
from reference import Event

DAG_ID = "consent_enforcement_nightly"
DATASETS = DEMO_DATASETS
MODELS = demo_models("public")
# demo table (DuckDB) -> PostgreSQL table
COPIED = {
    "raw.customers": "raw.customers",
    "raw.web_events": "raw.web_events",
    "raw.email_engagement": "raw.email_engagement",
    "raw.purchases": "raw.purchases",
    "main.consent_events": "public.consent_events",
    # the raw consent sources the example policy ingests (`sources:`); the copied log keeps its
    # event ids, so the history is not written twice
    "raw.cmp_consents": "raw.cmp_consents",
    "raw.web_logs": "raw.web_logs",
    "segment.tracks": "segment.tracks",
    "fides.privacypreferencehistory": "fides.privacypreferencehistory",
    "raw.preference_center": "raw.preference_center",
}


# -- the demo warehouse, in PostgreSQL ----------------------------------------------------------------


def _pg_type(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    return "TEXT" if t == "VARCHAR" else t  # BIGINT, TIMESTAMP, DECIMAL(p,s) are spelled alike


def copy_demo_to_postgres(demo: Path, db: PgServer) -> dict[str, int]:
    """Copy the demo's tables (same columns, same types, same rows) into PostgreSQL; {table: rows}."""
    from psycopg2.extras import execute_values

    counts: dict[str, int] = {}
    pg = db.connect()
    try:
        with pg.cursor() as cur:
            for schema in sorted({dst.split(".")[0] for dst in COPIED.values()} - {"public"}):
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for dst, cols, rows in demo_tables(demo, COPIED):
                columns = ", ".join(f'"{c}" {_pg_type(t)}' for c, t in cols)
                cur.execute(f"CREATE TABLE {dst} ({columns})")
                execute_values(cur, f"INSERT INTO {dst} VALUES %s", rows, page_size=5000)
                cur.execute(f"SELECT count(*) FROM {dst}")
                counts[dst] = cur.fetchone()[0]
                assert counts[dst] == len(rows) > 0, dst
        pg.commit()
    finally:
        pg.close()
    return counts


def pg_conn_uri(db: PgServer) -> str:
    return f"postgresql://{db.user}@{db.host}:{db.port}/{db.dbname}"


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with con.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()]


def _exists(con: Any, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        _rows(
            con,
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            [schema, name],
        )
    )


def _events(con: Any) -> list[Event]:
    return [
        Event(*r)
        for r in _rows(
            con, "SELECT subject_id, purpose, status, event_ts, recorded_at, expires_at FROM consent_events"
        )
    ]


RUN_COLUMNS = (
    "run_id",
    "status",
    "trigger",
    "dag_id",
    "task_id",
    "airflow_run_id",
    "error",
    "dbt_invocation_id",
    "consent_fingerprint",
    "finished_at",
)


def read_state(db: PgServer, run_id: str) -> dict[str, Any]:
    """The warehouse as the tests assert on it, read right after a run."""
    con = db.connect()
    try:
        return {
            "tables": {
                t: sorted(_rows(con, f"SELECT * FROM {t}"), key=repr)
                for t in [d[1] for d in DATASETS.values()] + list(MODELS)
                if _exists(con, t)
            },
            "events": _events(con),
            "sources": {
                name: _rows(con, f"SELECT {idcol}, {subj} FROM {src}")
                for name, (src, _t, idcol, subj, _p, _n) in DATASETS.items()
            },
            "targets": {
                name: sorted(r[0] for r in _rows(con, f"SELECT {idcol} FROM {tgt}"))
                for name, (_s, tgt, idcol, _subj, _p, _n) in DATASETS.items()
                if _exists(con, tgt)
            },
            "runs": {
                r[0]: dict(zip(RUN_COLUMNS, r, strict=True))
                for r in _rows(con, f"SELECT {', '.join(RUN_COLUMNS)} FROM consentgate_runs")
            },
            "lineage": _rows(
                con,
                "SELECT l.run_id, l.dataset, l.trigger, l.task_id, r.dag_id, r.airflow_run_id, l.rows_in, "
                "l.rows_out, l.excluded_null_subject, l.excluded_no_consent, l.excluded_denied, "
                "l.excluded_withdrawn, l.excluded_expired, l.excluded_invalid, l.consent_fingerprint "
                "FROM consentgate_lineage l JOIN consentgate_runs r USING (run_id) "
                "WHERE l.run_id = %s ORDER BY l.trigger, l.dataset",
                [run_id],
            ),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_duckdb(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("pg-demo") / "warehouse.duckdb", subjects=300)


# -- 1. the whole nightly DAG on PostgreSQL -------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_nightly(airflow_db, pg_server, demo_duckdb, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("pg-nightly")
    db = fresh_database(pg_server, "cg_airflow_nightly")
    copy_demo_to_postgres(demo_duckdb, db)
    mp = pytest.MonkeyPatch()
    dag = nightly_dag(mp, tmp, "warehouse_pg", pg_conn_uri(db))
    # Ten days after the DuckDB nightly test's nights, so the two never share a logical date (a run id).
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=10, hours=2)
    started = time.perf_counter()
    yield {"dag": dag, "db": db, "days": [first, first + timedelta(days=1)], "started": started}
    print(f"PostgreSQL nightly, two nights: {time.perf_counter() - started:.1f}s")
    mp.undo()


def _night(pg_nightly: dict[str, Any], day: int) -> dict[str, Any]:
    dag_run = pg_nightly["dag"].test(logical_date=pg_nightly["days"][day])
    return {
        "dag_run_id": dag_run.run_id,
        "dag_state": str(dag_run.state),
        "states": task_states(dag_run),
        "asset_events": asset_events(dag_run),
        "close_run": xcoms(dag_run, "close_run"),
        "audits": xcoms(dag_run, "audit_ad_targeting"),
        **read_state(pg_nightly["db"], dag_run.run_id),
    }


@pytest.fixture(scope="module")
def pg_day1(pg_nightly) -> dict[str, Any]:
    return _night(pg_nightly, 0)


@pytest.fixture(scope="module")
def pg_opted_out(pg_nightly, pg_day1) -> dict[str, Any]:
    """A subject present in every ad-targeting output after day 1 opts out of both purposes."""
    con = pg_nightly["db"].connect()
    try:
        subject, email = _rows(
            con,
            "SELECT c.customer_id, c.email FROM consented.customers c "
            "WHERE c.customer_id IN (SELECT customer_id FROM consented.web_events) "
            "AND c.customer_id IN (SELECT customer_id FROM consented.purchases) "
            "AND c.customer_id IN (SELECT customer_id FROM public.ad_customer_features) "
            "AND c.customer_id IN (SELECT customer_id FROM public.ad_lookalike_seed) "
            "AND c.customer_id IN (SELECT customer_id FROM public.ad_audience) "
            "AND lower(c.email) IN (SELECT lower(trim(email)) FROM consented.email_engagement) "
            "AND lower(c.email) IN (SELECT lower(trim(email)) FROM public.email_audience) "
            "ORDER BY c.customer_id LIMIT 1",
        )[0]
        when = pg_nightly["days"][0].astimezone(UTC).replace(tzinfo=None) + timedelta(hours=1)
        with con.cursor() as cur:
            cur.execute(
                "INSERT INTO consent_events (subject_id, purpose, status, event_ts, source, policy_version) "
                "VALUES (%s, 'ad_targeting', 'withdrawn', %s, 'account_settings', 'v2'), "
                "(%s, 'email_marketing', 'withdrawn', %s, 'unsubscribe_link', 'v2')",
                [str(subject), when, email.upper(), when],
            )
        con.commit()
    finally:
        con.close()
    return {"customer_id": subject, "email": email.lower()}


@pytest.fixture(scope="module")
def pg_day2(pg_nightly, pg_opted_out) -> dict[str, Any]:
    return _night(pg_nightly, 1)


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_dag_runs_its_warehouse_tasks_in_the_parallel_pool(pg_nightly) -> None:
    dag = pg_nightly["dag"]
    for task_id in (
        "check_consent_source",
        "enforce_consent",
        "dbt_build_ad_targeting",
        "audit_ad_targeting",
    ):
        assert dag.get_task(task_id).pool == "default_pool", task_id


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_day1_every_target_holds_exactly_the_consented_rows(pg_day1, pg_nightly) -> None:
    assert pg_day1["dag_state"] == "success", pg_day1["states"]
    assert all(s == "success" for s in pg_day1["states"].values()), pg_day1["states"]
    assert_targets_match_reference(pg_day1, pg_nightly["days"][0])
    db = pg_nightly["db"]
    base = f"postgres://{db.host}:{db.port}/{db.dbname}"
    expected = {f"{base}/{target.replace('.', '/')}" for _s, target, *_ in DATASETS.values()}
    expected |= {
        f"{base}/{model.replace('.', '/')}" for model in MODELS
    }  # the dbt models DbtBuildOperator built
    assert set(pg_day1["asset_events"]) == expected


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_day1_dbt_models_on_postgres_and_audits_passed(pg_day1, pg_nightly) -> None:
    assert pg_day1["states"]["dbt_build_ad_targeting"] == "success"
    assert_models_hold_only_consented_subjects(pg_day1, pg_nightly["days"][0], "public")
    # The DAG audits the models by their unqualified names (dbt's target schema is the connection's).
    audited = {a["table"] if "." in a["table"] else f"public.{a['table']}": a for a in pg_day1["audits"]}
    assert sorted(audited) == sorted([d[1] for d in DATASETS.values()] + list(MODELS))
    for table, audit in audited.items():
        assert audit["passed"] is True and audit["rows_checked"] == audit["rows_consented"] > 0, table
        assert set(audit["violations"].values()) == {0}, table
        assert len(pg_day1["tables"][table]) == audit["rows_checked"], table


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_day1_lineage_rows_carry_the_airflow_ids_and_the_run_is_closed(pg_day1) -> None:
    run_id = pg_day1["dag_run_id"]
    run = pg_day1["runs"][run_id]
    assert run["status"] == "success" and run["error"] is None and run["finished_at"] is not None
    assert (run["trigger"], run["dag_id"], run["task_id"]) == ("airflow", DAG_ID, "check_consent_source")
    assert run["airflow_run_id"] == run_id
    assert run["dbt_invocation_id"], "dbt's on-run-end did not join the Airflow run"
    airflow_rows = [r for r in pg_day1["lineage"] if r[2] == "airflow"]
    assert sorted(r[1] for r in airflow_rows) == sorted(DATASETS)
    for row in airflow_rows:
        assert (row[0], row[3], row[4], row[5]) == (run_id, "enforce_consent", DAG_ID, run_id)
        assert row[14] == run["consent_fingerprint"]
    dbt_rows = {r[1] for r in pg_day1["lineage"] if r[2] == "dbt"}
    assert dbt_rows >= {
        "ad_audience/stg_customers",
        "ad_audience/stg_web_events",
        "ad_lookalike_seed",
        "ad_customer_features",
        "email_audience",
    }
    (summary,) = pg_day1["close_run"]
    assert summary["status"] == "success" and summary["error"] is None
    assert summary["consent_fingerprint"] == run["consent_fingerprint"]


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_day2_opt_out_removes_the_subject_from_every_target_and_model(
    pg_day1, pg_day2, pg_opted_out, pg_nightly
) -> None:
    assert pg_day2["dag_state"] == "success", pg_day2["states"]
    assert all(s == "success" for s in pg_day2["states"].values()), pg_day2["states"]
    assert pg_day2["runs"][pg_day2["dag_run_id"]]["status"] == "success"
    assert_targets_match_reference(pg_day2, pg_nightly["days"][1])
    assert_models_hold_only_consented_subjects(pg_day2, pg_nightly["days"][1], "public")
    subject, email = pg_opted_out["customer_id"], pg_opted_out["email"]

    def holds(state: dict[str, Any], table: str, key: Any, index: int, normalize: bool) -> bool:
        for row in state["tables"][table]:
            value = row[index]
            if normalize and isinstance(value, str):
                value = value.strip().lower()
            if value == key:
                return True
        return False

    positions = {
        "consented.customers": (0, False, subject),
        "consented.web_events": (1, False, subject),
        "consented.purchases": (1, False, subject),
        "consented.email_engagement": (1, True, email),
        "public.ad_audience": (0, False, subject),
        "public.ad_lookalike_seed": (0, False, subject),
        "public.ad_customer_features": (0, False, subject),
        "public.email_audience": (0, True, email),
    }
    for table, (index, normalize, key) in positions.items():
        assert holds(pg_day1, table, key, index, normalize), f"{table} did not hold the subject on day 1"
        assert not holds(pg_day2, table, key, index, normalize), f"{table} still holds the subject on day 2"
    day1 = {r[1]: r[11] for r in pg_day1["lineage"] if r[2] == "airflow"}
    day2 = {r[1]: r[11] for r in pg_day2["lineage"] if r[2] == "airflow"}
    assert all(day2[name] > day1[name] for name in DATASETS)
    print(f"PostgreSQL nightly so far: {time.perf_counter() - pg_nightly['started']:.1f}s")


# -- 2. mapped enforcement in parallel on one PostgreSQL database ---------------------------------------


class _TaskInstance:
    """What airflow_run / the operators read from `ti` (ids, XCom push, the run's task states)."""

    def __init__(self, task_id: str, map_index: int = -1) -> None:
        self.dag_id, self.task_id, self.map_index = DAG_ID, task_id, map_index
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = json.loads(json.dumps(value))  # what survives an XCom round trip

    def get_task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str]]:
        return {run_id: {} for run_id in run_ids}  # nothing failed


class _OutletEvents:
    def __init__(self) -> None:
        self.added: list[tuple[str, dict[str, Any]]] = []

    def __getitem__(self, alias: Any) -> _OutletEvents:
        return self

    def add(self, asset: Any, extra: dict[str, Any]) -> None:
        self.added.append((asset.uri, extra))


@pytest.mark.postgres
def test_pg_mapped_enforcements_run_in_parallel_under_one_run(
    airflow_db, pg_server, demo_duckdb, monkeypatch
) -> None:
    from consentgate.airflow.common import warehouse_pool
    from consentgate.airflow.operators import ConsentFilterOperator
    from consentgate.airflow.tasks import check_consent_source, close_run

    db = fresh_database(pg_server, "cg_airflow_parallel")
    copy_demo_to_postgres(demo_duckdb, db)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_PAR", pg_conn_uri(db))
    monkeypatch.setenv("CONSENTGATE_CONN_ID", "warehouse_par")
    for name in ("CONSENTGATE_POLICY", "CONSENTGATE_POOL"):
        monkeypatch.delenv(name, raising=False)
    assert warehouse_pool() == "default_pool"  # the DAG would run these in parallel

    run_id = "scheduled__parallel"
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    # The run is opened first, exactly as the DAG's first task does.
    check_ti = _TaskInstance("check_consent_source")
    plan = check_consent_source({"ti": check_ti, "run_id": run_id, "data_interval_end": as_of})
    assert sorted(p["dataset"] for p in plan) == sorted(DATASETS)
    assert check_ti.pushed["conn_id"] == "warehouse_par"

    barrier = threading.Barrier(len(plan))
    outlets = _OutletEvents()

    def enforce(index: int, kwargs: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
        # What a mapped task instance runs: the operator built from one plan entry, executed.
        op = ConsentFilterOperator(task_id="enforce_consent", **kwargs)
        context = {"ti": _TaskInstance("enforce_consent", index), "run_id": run_id, "outlet_events": outlets}
        barrier.wait(timeout=30)
        start = time.perf_counter()
        summary = op.execute(context)
        return start, time.perf_counter(), summary

    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [pool.submit(enforce, i, json.loads(json.dumps(p))) for i, p in enumerate(plan)]
        results = [f.result(timeout=120) for f in futures]  # re-raises any task's error

    starts, ends = [r[0] for r in results], [r[1] for r in results]
    assert max(starts) < min(ends), "the enforcements did not overlap: nothing ran in parallel"
    summaries = {r[2]["dataset"]: r[2] for r in results}
    assert sorted(summaries) == sorted(DATASETS)
    assert len({s["consent_fingerprint"] for s in summaries.values()}) == 1

    state = read_state(db, run_id)
    run = state["runs"][run_id]
    assert run["status"] == "running"  # opened by check_consent_source, left for close_run
    assert (run["trigger"], run["dag_id"], run["task_id"]) == ("airflow", DAG_ID, "check_consent_source")
    assert_targets_match_reference(state, as_of)  # one lineage row per dataset, reference counts
    for row in state["lineage"]:
        assert (row[2], row[3], row[5]) == ("airflow", "enforce_consent", run_id)
        assert row[14] == run["consent_fingerprint"]  # each read the consent log in one, the same, snapshot
        assert summaries[row[1]]["rows_out"] == row[7]
    assert sorted(uri for uri, _ in outlets.added) == sorted(
        f"postgres://{db.host}:{db.port}/{db.dbname}/{t.replace('.', '/')}" for _s, t, *_ in DATASETS.values()
    )

    summary = close_run({"ti": _TaskInstance("close_run"), "run_id": run_id})
    assert summary["status"] == "success" and summary["error"] is None
    assert sorted(d["dataset"] for d in summary["datasets"]) == sorted(DATASETS)
    assert read_state(db, run_id)["runs"][run_id]["status"] == "success"


def test_pool_follows_the_connection_type_from_the_environment_only() -> None:
    from consentgate.airflow.common import DUCKDB_POOL, PARALLEL_POOL, warehouse_pool

    pg_uri = "postgresql://user:secret@db.example:5432/warehouse"
    pg_json = json.dumps({"conn_type": "postgres", "host": "db.example"})
    duck = json.dumps({"conn_type": "duckdb", "host": "/data/warehouse.duckdb"})
    assert warehouse_pool({}) == DUCKDB_POOL
    assert warehouse_pool({"AIRFLOW_CONN_DUCKDB_DEFAULT": duck}) == DUCKDB_POOL
    assert warehouse_pool({"CONSENTGATE_CONN_ID": "wh", "AIRFLOW_CONN_WH": pg_uri}) == PARALLEL_POOL
    assert warehouse_pool({"CONSENTGATE_CONN_ID": "wh", "AIRFLOW_CONN_WH": pg_json}) == PARALLEL_POOL
    assert warehouse_pool({"CONSENTGATE_CONN_ID": "wh", "AIRFLOW_CONN_WH": duck}) == DUCKDB_POOL
    # a connection kept elsewhere (metadata DB, secrets backend) is not looked up at parse time: serial
    assert warehouse_pool({"CONSENTGATE_CONN_ID": "wh"}) == DUCKDB_POOL
    assert warehouse_pool({"CONSENTGATE_CONN_ID": "wh", "AIRFLOW_CONN_WH": "{not json"}) == DUCKDB_POOL
    assert warehouse_pool({"AIRFLOW_CONN_DUCKDB_DEFAULT": pg_uri}) == PARALLEL_POOL
    # an explicit pool always wins
    env = {"CONSENTGATE_POOL": "big_pool", "CONSENTGATE_CONN_ID": "wh", "AIRFLOW_CONN_WH": duck}
    assert warehouse_pool(env) == "big_pool"
