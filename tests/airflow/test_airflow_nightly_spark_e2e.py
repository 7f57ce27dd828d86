"""The nightly DAG end to end on the suite's real Spark cluster, over a `spark_connect` connection.

The demo warehouse is built in a temporary DuckDB file (`consentgate demo --no-enforce`) and copied into
Spark (raw.* -> raw.*, main.consent_events -> default.consent_events: the current schema of a Spark
Connect session, where the operators keep the evidence and dbt's spark target builds). The policy is the
demo policy without its `sources:`: the copied log already holds the ingested history, and ingestion
on Spark has its own tests (tests/spark/test_spark_ingest.py), so this module spends its minutes on
enforcement, dbt and the audit. Then the whole DAG runs with dag.test(), two nights: enforce, dbt build
on the profile's spark target (dbt-spark over Spark Connect), audit; then an opt-out recorded between
the nights must be gone from every target and every dbt model (the incremental one too) on the next
night.

Every target is checked against tests/reference.py; the run evidence is read from Spark's
consentgate_runs / consentgate_lineage views.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cg_airflow import (
    DEMO_DATASETS,
    assert_models_hold_only_consented_subjects,
    assert_targets_match_reference,
    asset_events,
    build_demo,
    demo_models,
    demo_tables,
    nightly_dag,
    openlineage_events,
    read,
    task_states,
    xcoms,
)
from consentgate.engine.spark import SparkConnection
from reference import Event

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DAG_ID = "consent_enforcement_nightly"
CONN_ID = "warehouse_spark"
SCHEMA = "default"  # a Spark Connect session's current schema: the evidence's and dbt's target schema
DATASETS = DEMO_DATASETS
MODELS = demo_models(SCHEMA)
# demo table (DuckDB) -> Spark table
COPIED = {
    "raw.customers": "raw.customers",
    "raw.web_events": "raw.web_events",
    "raw.email_engagement": "raw.email_engagement",
    "raw.purchases": "raw.purchases",
    "main.consent_events": f"{SCHEMA}.consent_events",
}
# What a previous run (of this module, or of test_airflow_spark_e2e on the same cluster) left in SCHEMA.
OWN_SCHEMAS = ("raw", "consented")
OWN_RELATIONS = (
    "consent_events",
    "consentgate_runs",
    "consentgate_lineage",
    "consentgate_runs_log",
    "consentgate_lineage_log",
    "consentgate_purge_state",
    "stg_customers",
    "stg_web_events",
    "stg_purchases",
    "stg_email_engagement",
    *(m.split(".")[1] for m in MODELS),
)


# -- the demo warehouse, on Spark -------------------------------------------------------------------


def _spark_type(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    return "STRING" if t == "VARCHAR" else t  # BIGINT, TIMESTAMP, DECIMAL(p,s) are spelled alike


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def _reset(spark: Any) -> None:
    for schema in OWN_SCHEMAS:
        spark.sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    for t in spark.catalog.listTables(SCHEMA):
        if t.name in OWN_RELATIONS or t.name.startswith(("_consentgate_", "ad_customer_features__")):
            kind = "VIEW" if t.tableType == "VIEW" else "TABLE"
            spark.sql(f"DROP {kind} IF EXISTS `{SCHEMA}`.`{t.name}`")


def spark_tables(demo: Path) -> Iterator[tuple[str, str, list[tuple]]]:
    """(Spark table, its column DDL, its rows, timestamps in UTC) for each demo table copied to Spark."""
    for dst, cols, rows in demo_tables(demo, COPIED):
        ddl = ", ".join(f"`{c}` {_spark_type(t)}" for c, t in cols)
        yield dst, ddl, [tuple(_utc(v) for v in r) for r in rows]


def copy_demo_to_spark(demo: Path, server: Any) -> dict[str, int]:
    """Copy the demo's tables (same columns, same types, same rows) into Spark; {table: rows}."""
    counts: dict[str, int] = {}
    spark = server.session()
    try:
        _reset(spark)
        spark.sql("CREATE SCHEMA raw")
        for dst, ddl, rows in spark_tables(demo):
            spark.createDataFrame(rows, schema=ddl).write.format("parquet").saveAsTable(dst)
            counts[dst] = spark.table(dst).count()
            assert counts[dst] == len(rows) > 0, dst
    finally:
        spark.stop()
    return counts


def spark_policy(path: Path) -> Path:
    """The demo policy without its consent sources (the copied log holds their history)."""
    from consentgate.airflow.tasks import default_policy_path

    policy = yaml.safe_load(Path(default_policy_path()).read_text())
    policy.pop("sources")
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _connect(server: Any) -> SparkConnection:
    return SparkConnection(server.session(), owned=True)


def _rows(con: Any, sql: str, params: list[Any]) -> list[tuple]:
    cur = con.cursor()
    cur.execute(sql, params)
    return [tuple(r) for r in cur.fetchall()]


def _events(con: Any) -> list[Event]:
    return [
        Event(*r)
        for r in read(
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


def read_state(connect: Callable[[], Any], run_id: str) -> dict[str, Any]:
    """The warehouse as the tests assert on it, read right after a run (`connect`: a new connection,
    over Spark Connect or the Thrift server)."""
    con = connect()
    try:
        present = {
            f"{schema}.{r[1]}"
            for schema in ("consented", SCHEMA)
            for r in read(con, f"SHOW TABLES IN {schema}")
        }
        return {
            "tables": {
                t: sorted(read(con, f"SELECT * FROM {t}"), key=repr)
                for t in [d[1] for d in DATASETS.values()] + list(MODELS)
                if t in present
            },
            "events": _events(con),
            "web_events": read(con, "SELECT event_id, customer_id, page, event_ts FROM raw.web_events"),
            "sources": {
                name: read(con, f"SELECT {idcol}, {subj} FROM {src}")
                for name, (src, _t, idcol, subj, _p, _n) in DATASETS.items()
            },
            "targets": {
                name: sorted(r[0] for r in read(con, f"SELECT {idcol} FROM {tgt}"))
                for name, (_s, tgt, idcol, _subj, _p, _n) in DATASETS.items()
                if tgt in present
            },
            "runs": {
                r[0]: dict(zip(RUN_COLUMNS, r, strict=True))
                for r in read(con, f"SELECT {', '.join(RUN_COLUMNS)} FROM consentgate_runs")
            },
            "lineage": _rows(
                con,
                "SELECT l.run_id, l.dataset, l.trigger, l.task_id, r.dag_id, r.airflow_run_id, l.rows_in, "
                "l.rows_out, l.excluded_null_subject, l.excluded_no_consent, l.excluded_denied, "
                "l.excluded_withdrawn, l.excluded_expired, l.excluded_invalid, l.consent_fingerprint "
                "FROM consentgate_lineage l JOIN consentgate_runs r ON l.run_id = r.run_id "
                "WHERE l.run_id = ? ORDER BY l.trigger, l.dataset",
                [run_id],
            ),
        }
    finally:
        con.close()


def features_from_scratch(state: dict[str, Any]) -> list[tuple]:
    """ad_customer_features as a full build would make it from the consented web events (the enforced
    target's rows, which match the reference): (customer_id, page_views, distinct_pages, first, last)."""
    kept = set(state["targets"]["web_events"])
    by_customer: dict[Any, list[tuple]] = {}
    for event_id, customer_id, page, ts in state["web_events"]:
        if event_id in kept:
            by_customer.setdefault(customer_id, []).append((page, ts))
    return sorted(
        (c, len(ev), len({p for p, _ in ev}), min(t for _, t in ev), max(t for _, t in ev))
        for c, ev in by_customer.items()
    )


def model_features(state: dict[str, Any]) -> list[tuple]:
    return sorted(r[:5] for r in state["tables"][f"{SCHEMA}.ad_customer_features"])  # without the bucket


# -- the whole nightly DAG on Spark -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark_nightly(airflow_db, spark_server, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("spark-nightly")
    copied = copy_demo_to_spark(build_demo(tmp / "warehouse.duckdb", subjects=300), spark_server)
    mp = pytest.MonkeyPatch()
    url = f"spark-connect://{spark_server.host}:{spark_server.connect_port}"
    dag = nightly_dag(mp, tmp, CONN_ID, url, spark_policy(tmp / "policy.yml"))
    # Twenty days after the DuckDB nightly test's nights (ten after PostgreSQL's): no shared run id.
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=20, hours=2)
    started = time.perf_counter()
    yield {
        "dag": dag,
        "server": spark_server,
        "connect": lambda: _connect(spark_server),
        "namespace": f"sc://{spark_server.host}:{spark_server.connect_port}",
        "copied": copied,
        "days": [first, first + timedelta(days=1)],
        "started": started,
    }
    print(f"Spark nightly, two nights: {time.perf_counter() - started:.1f}s")
    mp.undo()


def night(spark_nightly: dict[str, Any], day: int) -> dict[str, Any]:
    started = time.perf_counter()
    dag_run = spark_nightly["dag"].test(logical_date=spark_nightly["days"][day])
    print(f"Spark nightly, night {day + 1}: {time.perf_counter() - started:.1f}s")
    return {
        "dag_run_id": dag_run.run_id,
        "dag_state": str(dag_run.state),
        "states": task_states(dag_run),
        "asset_events": asset_events(dag_run),
        "close_run": xcoms(dag_run, "close_run"),
        "audits": xcoms(dag_run, "audit_ad_targeting"),
        "dbt": (xcoms(dag_run, "dbt_build_ad_targeting") or [None])[0],
        **read_state(spark_nightly["connect"], dag_run.run_id),
    }


@pytest.fixture(scope="module")
def spark_day1(spark_nightly) -> dict[str, Any]:
    return night(spark_nightly, 0)


@pytest.fixture(scope="module")
def spark_opted_out(spark_nightly, spark_day1) -> dict[str, Any]:
    return opt_out(spark_nightly)


def opt_out(spark_nightly: dict[str, Any]) -> dict[str, Any]:
    """A subject present in every ad-targeting output after day 1 opts out of both purposes."""
    con = spark_nightly["connect"]()
    try:
        found = read(
            con,
            "SELECT c.customer_id, c.email FROM consented.customers c "
            "WHERE c.customer_id IN (SELECT customer_id FROM consented.web_events) "
            "AND c.customer_id IN (SELECT customer_id FROM consented.purchases) "
            f"AND c.customer_id IN (SELECT customer_id FROM {SCHEMA}.ad_customer_features) "
            f"AND c.customer_id IN (SELECT customer_id FROM {SCHEMA}.ad_lookalike_seed) "
            f"AND c.customer_id IN (SELECT customer_id FROM {SCHEMA}.ad_audience) "
            "AND lower(c.email) IN (SELECT lower(btrim(email, ' ')) FROM consented.email_engagement) "
            f"AND lower(c.email) IN (SELECT lower(btrim(email, ' ')) FROM {SCHEMA}.email_audience) "
            "ORDER BY c.customer_id LIMIT 1",
        )
        assert found, "no subject is in every ad-targeting output after day 1"
        subject, email = found[0]
        when = spark_nightly["days"][0].astimezone(UTC).replace(tzinfo=None) + timedelta(hours=1)
        con.cursor().execute(
            "INSERT INTO consent_events (subject_id, purpose, status, event_ts, source, policy_version) "
            "VALUES (?, 'ad_targeting', 'withdrawn', ?, 'account_settings', 'v2'), "
            "(?, 'email_marketing', 'withdrawn', ?, 'unsubscribe_link', 'v2')",
            [str(subject), when, email.upper(), when],
        )
        # Another customer of the incremental model (one whose consent no expiry or late record can
        # change between the nights) browses once more: the next night recomputes their bucket
        # (insert_overwrite) instead of appending a second row for them.
        ((active,),) = _rows(
            con,
            f"SELECT max(customer_id) FROM {SCHEMA}.ad_customer_features WHERE customer_id <> ? "
            "AND cast(customer_id AS STRING) NOT IN (SELECT btrim(subject_id, ' ') FROM consent_events "
            "WHERE subject_id IS NOT NULL AND (expires_at > ? OR recorded_at > ?))",
            [subject, when, when],
        )
        assert active is not None
        con.cursor().execute(
            "INSERT INTO raw.web_events (event_id, customer_id, page, event_ts) "
            "SELECT max(event_id) + 1, ?, '/spark-night-2', ? FROM raw.web_events",
            [active, when],
        )
    finally:
        con.close()
    return {"customer_id": subject, "email": email.lower(), "active": active}


@pytest.fixture(scope="module")
def spark_day2(spark_nightly, spark_opted_out) -> dict[str, Any]:
    return night(spark_nightly, 1)


def test_spark_dag_runs_its_warehouse_tasks_in_the_one_slot_pool(spark_nightly) -> None:
    """One writer at a time: concurrent appends to one parquet table (the evidence logs) can conflict."""
    from consentgate.airflow.common import DUCKDB_POOL

    dag = spark_nightly["dag"]
    for task_id in (
        "check_consent_source",
        "enforce_consent",
        "dbt_build_ad_targeting",
        "audit_ad_targeting",
    ):
        assert dag.get_task(task_id).pool == DUCKDB_POOL, task_id


def test_spark_day1_every_target_holds_exactly_the_consented_rows(spark_day1, spark_nightly) -> None:
    assert spark_day1["dag_state"] == "success", spark_day1["states"]
    assert all(s == "success" for s in spark_day1["states"].values()), spark_day1["states"]
    assert_targets_match_reference(spark_day1, spark_nightly["days"][0])
    base = spark_nightly["namespace"]
    expected = {f"{base}/{target.replace('.', '/')}" for _s, target, *_ in DATASETS.values()}
    expected |= {f"{base}/{model.replace('.', '/')}" for model in MODELS}  # the dbt models built
    assert set(spark_day1["asset_events"]) == expected
    for extra in spark_day1["asset_events"].values():
        assert extra["run_id"] == spark_day1["dag_run_id"]


def test_spark_day1_dbt_models_on_spark_and_audits_passed(spark_day1, spark_nightly) -> None:
    assert spark_day1["states"]["dbt_build_ad_targeting"] == "success"
    assert spark_day1["dbt"]["results"].get("error", 0) == 0, spark_day1["dbt"]["results"]
    assert {m["table"] for m in spark_day1["dbt"]["ad_targeting_models"]} == set(MODELS)
    assert_models_hold_only_consented_subjects(spark_day1, spark_nightly["days"][0], SCHEMA)
    assert model_features(spark_day1) == features_from_scratch(spark_day1)
    audited = {a["table"]: a for a in spark_day1["audits"]}
    assert sorted(audited) == sorted([d[1] for d in DATASETS.values()] + list(MODELS))
    for table, audit in audited.items():
        assert audit["passed"] is True and audit["rows_checked"] == audit["rows_consented"] > 0, table
        assert set(audit["violations"].values()) == {0}, table
        assert len(spark_day1["tables"][table]) == audit["rows_checked"], table


def test_spark_day1_openlineage_names_the_dbt_models_on_the_spark_server(spark_day1, spark_nightly) -> None:
    events = [
        e
        for e in openlineage_events()
        if e["eventType"] == "COMPLETE"
        and e["job"]["name"] == f"{DAG_ID}.dbt_build_ad_targeting"
        and e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") == spark_day1["dag_run_id"]
    ]
    assert len(events) == 1, "one COMPLETE event for the dbt task of day 1"
    namespace = spark_nightly["namespace"]
    assert {d["namespace"] for d in events[0]["outputs"] + events[0]["inputs"]} == {namespace}
    assert sorted(o["name"] for o in events[0]["outputs"]) == sorted(MODELS)
    assert {f"{SCHEMA}.consent_events", f"{SCHEMA}.stg_customers", f"{SCHEMA}.stg_web_events"} <= {
        i["name"] for i in events[0]["inputs"]
    }


def test_spark_day1_run_evidence_says_success_with_the_counts(spark_day1) -> None:
    run_id = spark_day1["dag_run_id"]
    run = spark_day1["runs"][run_id]
    assert run["status"] == "success" and run["error"] is None and run["finished_at"] is not None
    assert (run["trigger"], run["dag_id"], run["task_id"]) == ("airflow", DAG_ID, "check_consent_source")
    assert run["airflow_run_id"] == run_id
    assert run["dbt_invocation_id"], "dbt's on-run-end did not join the Airflow run"
    airflow_rows = [r for r in spark_day1["lineage"] if r[2] == "airflow"]
    assert sorted(r[1] for r in airflow_rows) == sorted(DATASETS)
    for row in airflow_rows:
        assert (row[0], row[3], row[4], row[5]) == (run_id, "enforce_consent", DAG_ID, run_id)
        assert row[14] == run["consent_fingerprint"]
    dbt_rows = {r[1]: r for r in spark_day1["lineage"] if r[2] == "dbt"}
    assert set(dbt_rows) >= {
        "ad_audience/stg_customers",
        "ad_audience/stg_web_events",
        "ad_lookalike_seed",
        "ad_customer_features",
        "email_audience",
    }
    for name in ("ad_lookalike_seed", "ad_customer_features", "email_audience"):  # rows_out: the model's rows
        assert dbt_rows[name][7] == len(spark_day1["tables"][f"{SCHEMA}.{name}"]), name
    (summary,) = spark_day1["close_run"]
    assert summary["status"] == "success" and summary["error"] is None
    assert summary["consent_fingerprint"] == run["consent_fingerprint"]


def test_spark_day2_opt_out_removes_the_subject_from_every_target_and_model(
    spark_day1, spark_day2, spark_opted_out, spark_nightly
) -> None:
    assert spark_day2["dag_state"] == "success", spark_day2["states"]
    assert all(s == "success" for s in spark_day2["states"].values()), spark_day2["states"]
    run = spark_day2["runs"][spark_day2["dag_run_id"]]
    assert run["status"] == "success" and run["dbt_invocation_id"], run
    assert_targets_match_reference(spark_day2, spark_nightly["days"][1])
    assert_models_hold_only_consented_subjects(spark_day2, spark_nightly["days"][1], SCHEMA)
    subject, email = spark_opted_out["customer_id"], spark_opted_out["email"]

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
        f"{SCHEMA}.ad_audience": (0, False, subject),
        f"{SCHEMA}.ad_lookalike_seed": (0, False, subject),
        f"{SCHEMA}.ad_customer_features": (0, False, subject),  # incremental: removed by purge_withdrawn
        f"{SCHEMA}.email_audience": (0, True, email),
    }
    for table, (index, normalize, key) in positions.items():
        assert holds(spark_day1, table, key, index, normalize), f"{table} did not hold the subject on day 1"
        assert not holds(spark_day2, table, key, index, normalize), (
            f"{table} still holds the subject on day 2"
        )
    # The incremental model (its run recomputed one bucket, then purge_withdrawn rewrote it without the
    # subjects no longer consented) holds what a full build would: one row per consented customer,
    # the new web event counted once.
    features = f"{SCHEMA}.ad_customer_features"
    assert model_features(spark_day2) == features_from_scratch(spark_day2)
    active = spark_opted_out["active"]
    (before,) = [r for r in model_features(spark_day1) if r[0] == active]
    (after,) = [r for r in model_features(spark_day2) if r[0] == active]
    assert after[1] == before[1] + 1 and after[4] > before[4], (before, after)
    day1 = {r[1]: r[11] for r in spark_day1["lineage"] if r[2] == "airflow"}
    day2 = {r[1]: r[11] for r in spark_day2["lineage"] if r[2] == "airflow"}
    assert all(day2[name] > day1[name] for name in DATASETS)  # excluded_withdrawn grew in every target
    dbt_day2 = {r[1]: r for r in spark_day2["lineage"] if r[2] == "dbt"}
    assert dbt_day2["ad_customer_features"][7] == len(spark_day2["tables"][features])
    print(f"Spark nightly so far: {time.perf_counter() - spark_nightly['started']:.1f}s")


def test_spark_create_demo_sources_loads_the_example_on_the_spark_target(spark_server, tmp_path) -> None:
    """`dbt run-operation create_demo_sources` (the example project's quick start) on the spark target."""
    import os
    import subprocess

    from cg_airflow import VENV_BIN
    from dbt_harness import copy_package

    schema = "t_create_demo_sources"
    spark = spark_server.session()
    try:
        spark.sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        project = copy_package(tmp_path / "pkg")  # the package installed, as `dbt deps` does
        env = {
            **os.environ,
            "CONSENTGATE_DBT_TARGET": "spark",
            "SPARK_REMOTE": spark_server.url,
            "CONSENTGATE_SPARK_SCHEMA": schema,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        flags = ["--project-dir", str(project), "--profiles-dir", str(project)]
        flags += ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
        done = subprocess.run(
            [str(VENV_BIN / "dbt"), "run-operation", "create_demo_sources", *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:]
        counts = {
            t: spark.table(f"{schema}.{t}").count()
            for t in ("customers", "web_events", "email_engagement", "purchases", "consent_events")
        }
        assert counts == {
            "customers": 8,
            "web_events": 11,
            "email_engagement": 7,
            "purchases": 7,
            "consent_events": 14,
        }
        types = dict(spark.sql(f"DESCRIBE TABLE {schema}.consent_events").collect()[i][:2] for i in range(8))
        assert types["subject_id"] == "string" and types["event_ts"] == "timestamp"
    finally:
        spark.sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        spark.stop()
