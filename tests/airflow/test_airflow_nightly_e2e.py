"""The nightly DAG end to end with dag.test() on a temporary demo warehouse (DuckDB) and the real dbt
project: day 1 enforces, day 2 honours an opt-out everywhere, day 3 meets a broken consent log and stops
without touching anything. Every target is checked against tests/reference.py."""

from __future__ import annotations

import html
import re
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cg_airflow import (
    DEMO_DATASETS,
    REPO,
    api_server,
    asset_events,
    build_demo,
    demo_models,
    duckdb_conn,
    openlineage_events,
    task_states,
    try_numbers,
    xcoms,
)
from facet_schema import validate_consentgate_facets
from httpserver import http_get
from reference import Event, decide, reason_for
from reference import enforce as reference_enforce

pytestmark = pytest.mark.slow

DAG_ID = "consent_enforcement_nightly"
# the demo policy's datasets; the dbt ad-targeting models (dbt_project/integration_tests, as its YAML
# marks and tests them; the DAG reads them from the build's manifest)
DATASETS = DEMO_DATASETS
MODELS = demo_models("main")
TABLES = [d[1] for d in DATASETS.values()] + list(MODELS)


def _connect(path: Path):
    import duckdb

    return duckdb.connect(str(path))


def _rows(con: Any, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def _events(con: Any) -> list[Event]:
    return [
        Event(*r)
        for r in _rows(
            con, "SELECT subject_id, purpose, status, event_ts, recorded_at, expires_at FROM consent_events"
        )
    ]


def snapshot(path: Path, dag_run: Any) -> dict[str, Any]:
    """Everything the tests assert on, read right after a run (later runs change the warehouse)."""
    with _connect(path) as con:
        tables = {t: sorted(_rows(con, f"SELECT * FROM {t}"), key=repr) for t in TABLES if _exists(con, t)}
        return {
            "dag_run_id": dag_run.run_id,
            "dag_state": str(dag_run.state),
            "asset_events": asset_events(dag_run),
            "states": task_states(dag_run),
            "tries": try_numbers(dag_run),
            "audit_plan": [x for plan in xcoms(dag_run, "ad_targeting_outputs") for x in plan],
            "tables": tables,
            "events": _events(con) if _has_status(con) else None,
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
                r[0]: dict(
                    zip(
                        (
                            "run_id",
                            "status",
                            "trigger",
                            "dag_id",
                            "task_id",
                            "airflow_run_id",
                            "error",
                            "dbt_invocation_id",
                            "consent_fingerprint",
                        ),
                        r,
                        strict=True,
                    )
                )
                for r in _rows(
                    con,
                    "SELECT run_id, status, trigger, dag_id, task_id, airflow_run_id, error, dbt_invocation_id, "
                    "consent_fingerprint FROM consentgate_runs",
                )
            },
            "lineage": _rows(
                con,
                "SELECT l.run_id, l.dataset, l.trigger, l.task_id, r.dag_id, r.airflow_run_id, l.rows_in, l.rows_out, "
                "l.excluded_null_subject, l.excluded_no_consent, l.excluded_denied, l.excluded_withdrawn, "
                "l.excluded_expired, l.excluded_invalid, l.consent_fingerprint "
                "FROM consentgate_lineage l JOIN consentgate_runs r USING (run_id) "
                f"WHERE l.run_id = '{dag_run.run_id}' ORDER BY l.trigger, l.dataset",
            ),
        }


def _exists(con: Any, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        _rows(
            con,
            f"SELECT 1 FROM information_schema.tables WHERE table_schema = '{schema}' AND table_name = '{name}'",
        )
    )


def _has_status(con: Any) -> bool:
    return bool(
        _rows(
            con,
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'consent_events' "
            "AND column_name = 'status'",
        )
    )


@pytest.fixture(scope="module")
def nightly(airflow_db, tmp_path_factory) -> dict[str, Any]:
    """The DAG, the warehouse and the environment shared by the three nights."""
    from airflow.dag_processing.dagbag import DagBag

    tmp = tmp_path_factory.mktemp("nightly")
    path = build_demo(tmp / "warehouse.duckdb", subjects=300)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", duckdb_conn(path))
    mp.setenv("DBT_TARGET_PATH", str(tmp / "dbt_target"))
    mp.setenv("DBT_LOG_PATH", str(tmp / "dbt_logs"))
    mp.delenv("CONSENTGATE_POLICY", raising=False)
    mp.delenv("CONSENTGATE_CONN_ID", raising=False)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    yield {"dag": bag.dags[DAG_ID], "path": path, "days": [first + timedelta(days=i) for i in range(3)]}
    mp.undo()


@pytest.fixture(scope="module")
def day1(nightly) -> dict[str, Any]:
    dag_run = nightly["dag"].test(logical_date=nightly["days"][0])
    return snapshot(nightly["path"], dag_run)


@pytest.fixture(scope="module")
def opted_out(nightly, day1) -> dict[str, Any]:
    """Pick a subject present in every ad-targeting output after day 1 and record their opt-outs."""
    with _connect(nightly["path"]) as con:
        subject, email = _rows(
            con,
            "SELECT c.customer_id, c.email FROM consented.customers c "
            "WHERE c.customer_id IN (SELECT customer_id FROM consented.web_events) "
            "AND c.customer_id IN (SELECT customer_id FROM consented.purchases) "
            "AND c.customer_id IN (SELECT customer_id FROM main.ad_customer_features) "
            "AND c.customer_id IN (SELECT customer_id FROM main.ad_lookalike_seed) "
            "AND lower(c.email) IN (SELECT lower(trim(email)) FROM consented.email_engagement) "
            "ORDER BY c.customer_id LIMIT 1",
        )[0]
        when = nightly["days"][0] + timedelta(hours=1)
        con.execute(
            "INSERT INTO consent_events (subject_id, purpose, status, event_ts, source, policy_version) VALUES "
            "(?, 'ad_targeting', 'withdrawn', ?, 'account_settings', 'v2'), "
            "(?, 'email_marketing', 'withdrawn', ?, 'unsubscribe_link', 'v2')",
            [str(subject), when.replace(tzinfo=None), email.upper(), when.replace(tzinfo=None)],
        )
    return {"customer_id": subject, "email": email.lower()}


@pytest.fixture(scope="module")
def day2(nightly, opted_out) -> dict[str, Any]:
    dag_run = nightly["dag"].test(logical_date=nightly["days"][1])
    return snapshot(nightly["path"], dag_run)


@pytest.fixture(scope="module")
def day3(nightly, day2) -> dict[str, Any]:
    with _connect(nightly["path"]) as con:
        # A botched migration drops a required column (DuckDB needs the table's indexes gone first).
        for (index,) in _rows(
            con, "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'consent_events'"
        ):
            con.execute(f'DROP INDEX "{index}"')
        con.execute("ALTER TABLE consent_events DROP COLUMN status")
    dag_run = nightly["dag"].test(logical_date=nightly["days"][2])
    return snapshot(nightly["path"], dag_run)


def assert_targets_match_reference(snap: dict[str, Any], as_of: datetime) -> None:
    cutoff = as_of.astimezone(UTC).replace(tzinfo=None)
    for name, (_s, _t, _id, _subj, purpose, normalize) in DATASETS.items():
        kept, counts = reference_enforce(snap["sources"][name], snap["events"], purpose, cutoff, normalize)
        assert snap["targets"][name] == sorted(kept), name
        airflow_rows = [r for r in snap["lineage"] if r[2] == "airflow" and r[1] == name]
        assert len(airflow_rows) == 1, name
        assert airflow_rows[0][6:14] == (len(kept) + sum(counts.values()), len(kept), *counts.values()), name


def test_day1_every_target_holds_exactly_the_consented_rows(day1, nightly) -> None:
    assert day1["dag_state"] == "success", day1["states"]
    assert all(state == "success" for state in day1["states"].values()), day1["states"]
    assert_targets_match_reference(day1, nightly["days"][0])


def test_day1_dbt_models_and_audits_passed(day1) -> None:
    audits = {k: v for k, v in day1["states"].items() if k.startswith("audit_ad_targeting[")}
    assert len(audits) == len(DATASETS) + len(MODELS)
    assert set(audits.values()) == {"success"}
    assert day1["states"]["dbt_build_ad_targeting"] == "success"
    for table in MODELS:
        assert day1["tables"][table], f"dbt model {table} is empty"


def test_day1_lineage_rows_carry_the_airflow_run(day1) -> None:
    run = day1["runs"][day1["dag_run_id"]]
    assert run["status"] == "success"
    assert (run["trigger"], run["dag_id"], run["task_id"]) == ("airflow", DAG_ID, "check_consent_source")
    assert run["airflow_run_id"] == day1["dag_run_id"]
    assert run["dbt_invocation_id"], "dbt's on-run-end did not join the Airflow run"
    airflow_rows = [r for r in day1["lineage"] if r[2] == "airflow"]
    assert sorted(r[1] for r in airflow_rows) == sorted(DATASETS)
    for row in airflow_rows:
        assert (row[3], row[4], row[5]) == ("enforce_consent", DAG_ID, day1["dag_run_id"])
        assert row[14] == run["consent_fingerprint"]
    dbt_rows = [r for r in day1["lineage"] if r[2] == "dbt"]
    assert {r[1] for r in dbt_rows} >= {
        "ad_audience/stg_customers",
        "ad_audience/stg_web_events",
        "ad_lookalike_seed",
        "ad_customer_features",
        "email_audience",
    }


def test_day1_the_dbt_models_audited_are_those_the_manifest_marks(day1) -> None:
    """No list in the DAG: the audit plan's dbt entries are the build's manifest's ad-targeting models."""
    planned = {a["table"]: (a["subject_column"], a["purpose"], a["normalize"]) for a in day1["audit_plan"]}
    assert {t: v for t, v in planned.items() if not t.startswith("consented.")} == MODELS


def test_day1_every_target_is_announced_as_an_airflow_asset_event(day1, nightly) -> None:
    base = f"duckdb://localhost{nightly['path'].resolve()}"
    expected = {f"{base}/{target.replace('.', '/')}" for _s, target, *_ in DATASETS.values()}
    expected |= {f"{base}/{model.replace('.', '/')}" for model in MODELS}  # the dbt models built
    assert set(day1["asset_events"]) == expected
    for extra in day1["asset_events"].values():
        assert extra["run_id"] == day1["dag_run_id"]


def test_day1_openlineage_events_carry_the_consent_facet(day1) -> None:
    facets = {}
    for event in openlineage_events():
        facet = event["run"].get("facets", {}).get("consentEnforcement")
        if event["eventType"] == "COMPLETE" and facet and facet.get("run_id") == day1["dag_run_id"]:
            assert event["job"]["name"] == f"{DAG_ID}.enforce_consent"
            assert [o["name"].split(".", 1)[1] for o in event["outputs"]] == [DATASETS[facet["dataset"]][1]]
            assert sorted(i["name"].split(".", 1)[1] for i in event["inputs"]) == sorted(
                [DATASETS[facet["dataset"]][0], "main.consent_events"]
            )
            facets[facet["dataset"]] = facet
    assert sorted(facets) == sorted(DATASETS)
    for row in (r for r in day1["lineage"] if r[2] == "airflow"):
        facet = facets[row[1]]
        assert (facet["rows_in"], facet["rows_out"]) == (row[6], row[7])
        assert list(
            facet["excluded"][k]
            for k in ("null_subject", "no_consent", "denied", "withdrawn", "expired", "invalid")
        ) == list(row[8:14])
        assert facet["consent_fingerprint"] == row[14]
        assert facet["_schemaURL"].endswith("ConsentEnforcementRunFacet")
    # Every consentgate facet emitted (this run's, and any other in the file) is valid against the schema
    # its _schemaURL points at, the file shipped in the package, and carries consentgate's _producer.
    assert validate_consentgate_facets(openlineage_events()) >= len(DATASETS)


def test_day1_openlineage_shows_the_dbt_models_with_the_consent_log_among_their_inputs(day1, nightly) -> None:
    events = [
        e
        for e in openlineage_events()
        if e["eventType"] == "COMPLETE"
        and e["job"]["name"] == f"{DAG_ID}.dbt_build_ad_targeting"
        and e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") == day1["dag_run_id"]
    ]
    assert len(events) == 1, "one COMPLETE event for the dbt task of day 1"
    stem = nightly["path"].stem
    outputs = sorted(o["name"].removeprefix(f"{stem}.") for o in events[0]["outputs"])
    inputs = {i["name"].removeprefix(f"{stem}.") for i in events[0]["inputs"]}
    assert outputs == sorted(MODELS)
    assert "main.consent_events" in inputs
    assert {
        "main.stg_customers",
        "main.stg_web_events",
        "main.stg_purchases",
        "main.stg_email_engagement",
    } <= inputs


def test_day1_run_report_is_served_by_airflows_api_server(day1, nightly) -> None:
    """The plugin's report, through a real `airflow api-server`: mounted under /consentgate/, and its
    links to other runs resolve under that mount."""
    with api_server(CONSENTGATE_DATABASE=str(nightly["path"])) as url:
        status, latest = http_get(f"{url}/consentgate/")
        assert status == 200, latest
        assert day1["dag_run_id"] in latest
        links = re.findall(r'href="(/consentgate/runs/[^"]+)"', latest)
        assert links, "the latest run's page links no run"
        for link in links:
            status, page = http_get(url + html.unescape(link))
            assert status == 200, page
        status, page = http_get(f"{url}/consentgate/runs/{urllib.parse.quote(day1['dag_run_id'], safe='')}")
        assert status == 200, page
        assert day1["dag_run_id"] in page
        status, page = http_get(f"{url}/consentgate/runs/no-such-run")
        assert status == 404


def test_day2_opt_out_removes_the_subject_from_every_target_and_model(day1, day2, opted_out, nightly) -> None:
    assert day2["dag_state"] == "success", day2["states"]
    assert_targets_match_reference(day2, nightly["days"][1])
    subject, email = opted_out["customer_id"], opted_out["email"]

    def holds(snap: dict[str, Any], table: str, key: Any, column_index: int, normalize: bool) -> bool:
        for row in snap["tables"][table]:
            value = row[column_index]
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
        "main.ad_audience": (0, False, subject),
        "main.ad_lookalike_seed": (0, False, subject),
        "main.ad_customer_features": (0, False, subject),
        "main.email_audience": (0, True, email),
    }
    for table, (index, normalize, key) in positions.items():
        assert holds(day1, table, key, index, normalize), f"{table} did not hold the subject on day 1"
        assert not holds(day2, table, key, index, normalize), f"{table} still holds the subject on day 2"
    withdrawn_day1 = {r[1]: r[11] for r in day1["lineage"] if r[2] == "airflow"}
    withdrawn_day2 = {r[1]: r[11] for r in day2["lineage"] if r[2] == "airflow"}
    assert all(withdrawn_day2[name] > withdrawn_day1[name] for name in DATASETS)


def test_day2_models_hold_only_consented_subjects(day2, nightly) -> None:
    cutoff = nightly["days"][1].astimezone(UTC).replace(tzinfo=None)
    for table, (_subject_column, purpose, normalize) in MODELS.items():
        decided = decide(day2["events"], purpose, cutoff, normalize)
        subjects = [row[0] for row in day2["tables"][table]]
        assert subjects, table
        assert [s for s in subjects if reason_for(s, decided, normalize) is not None] == [], table


def test_day3_broken_consent_log_fails_the_run_and_touches_nothing(day2, day3) -> None:
    assert day3["dag_state"] == "failed"
    # The example policy ingests consent sources: the ingest tasks are the first to open the log, each
    # fails closed on it (a broken consent log is not retried), and the consent check never runs.
    ingests = {k: v for k, v in day3["states"].items() if k.startswith("ingest_source[")}
    assert ingests and set(ingests.values()) == {"failed"}, day3["states"]
    assert all(day3["tries"][k] == 1 for k in ingests)
    assert day3["states"]["check_consent_source"] == "upstream_failed"
    assert day3["states"]["enforce_consent"] == "upstream_failed"
    assert day3["states"]["dbt_build_ad_targeting"] == "upstream_failed"
    assert day3["states"]["close_run"] == "failed"
    assert day3["tables"] == day2["tables"]  # yesterday's targets and models, untouched
    run = day3["runs"][day3["dag_run_id"]]
    assert (run["status"], run["trigger"], run["dag_id"]) == ("failed", "airflow", DAG_ID)
    assert "no column 'status'" in run["error"]
    assert "failed tasks: ingest_source" in run["error"]
    assert "not run (an upstream task failed): " in run["error"] and "enforce_consent" in run["error"]
    assert day3["lineage"] == []
    assert day3["asset_events"] == {}
