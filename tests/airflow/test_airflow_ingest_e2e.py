"""The nightly DAG ingests the policy's consent sources before the consent check, end to end with
dag.test() on a demo warehouse (DuckDB) and the real dbt project.

Three sources over raw tables of the warehouse: web requests with a Sec-GPC header (gpc), TC strings
(tcf) and Fides' preference history (fides). Day 1: three subjects consented for ad targeting send
signals that keep them. Day 2: one sends GPC=1, one a TC string without consent, one a Fides opt_out;
the nightly run removes each from every ad-targeting target and dbt model. Day 3: a source whose table
is missing fails its ingest task, so nothing is enforced and nothing replaced, and the run is recorded
failed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cg_airflow import REPO, build_demo, duckdb_conn, openlineage_events, task_states, try_numbers, xcoms
from reference import Event, decide

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "signals"))  # tcbits: the test bit writer
from tcbits import disclosed, vendor_bitfield  # noqa: E402
from tcbits import tc as raw_tc  # noqa: E402

pytestmark = pytest.mark.slow

DAG_ID = "consent_enforcement_nightly"
DEMO_POLICY = REPO / "plugins" / "consentgate" / "examples" / "demo_policy.yml"
# Every ad-targeting output keyed by customer_id: the enforced targets and the dbt models.
AD_TABLES = [
    "consented.customers",
    "consented.web_events",
    "consented.purchases",
    "main.ad_audience",
    "main.ad_lookalike_seed",
    "main.ad_customer_features",
]
ALL_TABLES = [*AD_TABLES, "consented.email_engagement", "main.email_audience"]
SOURCES = [
    {
        "name": "web_gpc",
        "kind": "gpc",
        "table": "raw.web_requests",
        "columns": {
            "subject": "customer_id",
            "signal": "sec_gpc",
            "event_ts": "requested_at",
            "recorded_at": "loaded_at",
        },
        "purposes": ["ad_targeting"],
    },
    {
        "name": "euconsent",
        "kind": "tcf",
        "table": "raw.tc_strings",
        "columns": {"subject": "customer_id", "signal": "euconsent_v2", "event_ts": "seen_at"},
        "purposes": {"ad_targeting": {"tcf_purposes": [1, 3, 4], "vendors": [755]}},
    },
    {
        "name": "fides_prefs",
        "kind": "fides",
        "table": "raw.fides_preferences",
        "columns": {"subject": "customer_id"},
        "purposes": {"marketing_advertising": "ad_targeting"},
    },
]
MISSING = {
    "name": "app_gpc",
    "kind": "gpc",
    "table": "raw.app_requests",  # never created
    "columns": {"subject": "customer_id", "signal": "sec_gpc", "event_ts": "requested_at"},
    "purposes": ["ad_targeting"],
}
VENDOR = vendor_bitfield([755])


def tc(purposes: list[int]) -> str:
    """A TCF 2.3 TC string with vendor 755 consented and the given purposes."""
    return raw_tc(None, disclosed([1, 755]), purposes=purposes, vendor_consents=VENDOR)


def write_policy(path: Path, sources: list[dict[str, Any]]) -> None:
    policy = yaml.safe_load(DEMO_POLICY.read_text())
    policy["sources"] = sources
    path.write_text(yaml.safe_dump(policy, sort_keys=False))


def _connect(path: Path):
    import duckdb

    return duckdb.connect(str(path))


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql, params or []).fetchall()]


def snapshot(path: Path, dag_run: Any) -> dict[str, Any]:
    """What the tests assert on, read right after a run."""
    with _connect(path) as con:
        return {
            "dag_state": str(dag_run.state),
            "states": task_states(dag_run),
            "tries": try_numbers(dag_run),
            "ingested": {x["source"]: x for x in xcoms(dag_run, "ingest_source")},
            "tables": {t: sorted(_rows(con, f"SELECT * FROM {t}"), key=repr) for t in ALL_TABLES},
            "subjects": {
                t: {r[0] for r in _rows(con, f"SELECT DISTINCT CAST(customer_id AS VARCHAR) FROM {t}")}
                for t in AD_TABLES
            },
            "run": dict(
                zip(
                    ("status", "task_id", "error"),
                    _rows(
                        con,
                        "SELECT status, task_id, error FROM consentgate_runs WHERE run_id = ?",
                        [dag_run.run_id],
                    )[0],
                    strict=True,
                )
            ),
            "lineage": _rows(
                con, "SELECT dataset FROM consentgate_lineage WHERE run_id = ?", [dag_run.run_id]
            ),
            "ingests": _rows(
                con, "SELECT source, status, error FROM consentgate_ingests ORDER BY started_at, source"
            ),
        }


def chosen_subjects(con: Any, as_of: datetime) -> list[str]:
    """Three customers consented for ad targeting (per tests/reference.py) with web events and orders."""
    events = [
        Event(*r)
        for r in _rows(
            con, "SELECT subject_id, purpose, status, event_ts, recorded_at, expires_at FROM consent_events"
        )
    ]
    granted = {s for s, kind in decide(events, "ad_targeting", as_of).items() if kind == "granted"}
    active = _rows(
        con,
        "SELECT DISTINCT CAST(customer_id AS VARCHAR) FROM raw.customers "
        "WHERE customer_id IN (SELECT customer_id FROM raw.web_events) "
        "AND customer_id IN (SELECT customer_id FROM raw.purchases) ORDER BY 1",
    )
    picked = [s for (s,) in active if s in granted][:3]
    assert len(picked) == 3, "the demo warehouse has too few consented, active customers"
    return picked


def create_sources(con: Any, subjects: list[str], when: datetime) -> None:
    """Day 1: every chosen subject sends no GPC, a TC string granting the mapped purposes and a Fides
    opt_in, dated after every demo consent event."""
    con.execute(
        "CREATE TABLE raw.web_requests (request_id VARCHAR, customer_id VARCHAR, sec_gpc VARCHAR, "
        "requested_at TIMESTAMP, loaded_at TIMESTAMP)"
    )
    con.execute("CREATE TABLE raw.tc_strings (customer_id VARCHAR, euconsent_v2 VARCHAR, seen_at TIMESTAMP)")
    con.execute(
        "CREATE TABLE raw.fides_preferences (id VARCHAR, created_at TIMESTAMP, customer_id VARCHAR, "
        "preference VARCHAR, notice_key VARCHAR, method VARCHAR)"
    )
    for i, s in enumerate(subjects):
        con.execute("INSERT INTO raw.web_requests VALUES (?, ?, '0', ?, ?)", [f"r1-{i}", s, when, when])
        con.execute("INSERT INTO raw.tc_strings VALUES (?, ?, ?)", [s, tc([1, 3, 4]), when])
        con.execute(
            "INSERT INTO raw.fides_preferences VALUES (?, ?, ?, 'opt_in', 'marketing_advertising', 'button')",
            [f"pri-1-{i}", when, s],
        )


@pytest.fixture(scope="module")
def nightly(airflow_db, tmp_path_factory) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    tmp = tmp_path_factory.mktemp("ingest")
    path = build_demo(tmp / "warehouse.duckdb", subjects=300)
    policy = tmp / "policy.yml"
    write_policy(policy, SOURCES)
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    days = [first + timedelta(days=i) for i in range(3)]
    with _connect(path) as con:
        subjects = chosen_subjects(con, days[0].replace(tzinfo=None))
        (latest,) = _rows(con, "SELECT max(coalesce(recorded_at, event_ts)) FROM consent_events")[0]
        create_sources(con, subjects, latest + timedelta(minutes=1))
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", duckdb_conn(path))
    mp.setenv("CONSENTGATE_POLICY", str(policy))
    mp.setenv("DBT_TARGET_PATH", str(tmp / "dbt_target"))
    mp.setenv("DBT_LOG_PATH", str(tmp / "dbt_logs"))
    mp.delenv("CONSENTGATE_CONN_ID", raising=False)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    yield {"dag": bag.dags[DAG_ID], "path": path, "policy": policy, "days": days, "subjects": subjects}
    mp.undo()


@pytest.fixture(scope="module")
def day1(nightly) -> dict[str, Any]:
    return snapshot(nightly["path"], nightly["dag"].test(logical_date=nightly["days"][0]))


@pytest.fixture(scope="module")
def day2(nightly, day1) -> dict[str, Any]:
    gpc_subject, tcf_subject, fides_subject = nightly["subjects"]
    when = (nightly["days"][0] + timedelta(hours=1)).replace(tzinfo=None)
    with _connect(nightly["path"]) as con:
        con.execute("INSERT INTO raw.web_requests VALUES ('r2', ?, '1', ?, ?)", [gpc_subject, when, when])
        con.execute("INSERT INTO raw.tc_strings VALUES (?, ?, ?)", [tcf_subject, tc([1]), when])
        con.execute(
            "INSERT INTO raw.fides_preferences VALUES ('pri-2', ?, ?, 'opt_out', 'marketing_advertising', 'button')",
            [when, fides_subject],
        )
    return snapshot(nightly["path"], nightly["dag"].test(logical_date=nightly["days"][1]))


@pytest.fixture(scope="module")
def day3(nightly, day2) -> dict[str, Any]:
    write_policy(nightly["policy"], [*SOURCES, MISSING])
    return snapshot(nightly["path"], nightly["dag"].test(logical_date=nightly["days"][2]))


def ingest_states(snap: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in snap["states"].items() if k.startswith("ingest_source[")}


def test_day1_every_source_is_ingested_before_the_check_and_the_subjects_are_kept(day1, nightly) -> None:
    assert day1["dag_state"] == "success", day1["states"]
    assert all(state == "success" for state in day1["states"].values()), day1["states"]
    assert day1["states"]["plan_sources"] == "success"
    assert len(ingest_states(day1)) == len(SOURCES)
    assert sorted(day1["ingested"]) == sorted(s["name"] for s in SOURCES)
    assert all(x["status"] == "success" for x in day1["ingested"].values())
    assert day1["ingested"]["web_gpc"]["rejected"] == {"no_opt_out": 3}  # GPC=0 says nothing
    assert day1["ingested"]["fides_prefs"]["events_written"] == 3  # a choice a person made: kept
    for table in AD_TABLES:
        for subject in nightly["subjects"]:
            assert subject in day1["subjects"][table], f"{table} lacks a consented subject on day 1"
    assert day1["run"]["status"] == "success"


def test_day1_each_ingest_task_reports_its_source_table_in_and_the_consent_log_out(day1, nightly) -> None:
    # The events file is shared by every DAG this test process ran (the demo policy's sources have
    # the same names over other tables, in a warehouse with the same file name): this warehouse's only.
    here = f"duckdb://{Path(nightly['path']).resolve()}"
    done = [
        e for e in openlineage_events()
        if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith("consentgate.ingest.")
        and [d["namespace"] for d in e["outputs"]] == [here]
    ]  # fmt: skip
    stem = Path(nightly["path"]).stem
    for source in SOURCES:
        (event, *_) = [e for e in done if e["job"]["name"] == f"consentgate.ingest.{source['name']}"]
        schema, table = source["table"].split(".")
        assert [d["name"] for d in event["inputs"]] == [f"{stem}.{schema}.{table}"]
        assert [d["name"] for d in event["outputs"]] == [f"{stem}.main.consent_events"]
        assert event["inputs"][0]["namespace"] == here
        read = event["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"]
        assert read == day1["ingested"][source["name"]]["observations_read"]


def test_day2_gpc_tcf_and_fides_withdrawals_reach_every_target_and_model(day1, day2, nightly) -> None:
    assert day2["dag_state"] == "success", day2["states"]
    assert set(ingest_states(day2).values()) == {"success"}
    assert day2["run"]["status"] == "success"
    # One withdrawal per subject, each from its own source.
    assert {n: x["events_written"] for n, x in day2["ingested"].items()} == {
        "web_gpc": 1,
        "euconsent": 1,
        "fides_prefs": 1,
    }
    for table in AD_TABLES:
        for subject in nightly["subjects"]:
            assert subject not in day2["subjects"][table], f"{table} still holds a withdrawn subject on day 2"
        # Nobody else lost consent: only the three subjects left the table.
        assert day1["subjects"][table] - day2["subjects"][table] == set(nightly["subjects"]), table


def test_day3_a_source_that_cannot_be_read_stops_the_run_and_replaces_nothing(day2, day3) -> None:
    assert day3["dag_state"] == "failed"
    failed = [k for k, v in ingest_states(day3).items() if v == "failed"]
    assert len(failed) == 1, day3["states"]
    assert day3["tries"][failed[0]] == 1  # a missing table is not retried
    assert day3["states"]["check_consent_source"] == "upstream_failed"
    assert day3["states"]["enforce_consent"] == "upstream_failed"
    assert day3["states"]["dbt_build_ad_targeting"] == "upstream_failed"
    assert day3["states"]["close_run"] == "failed"
    assert day3["tables"] == day2["tables"]  # yesterday's targets and models, untouched
    assert day3["lineage"] == []
    assert day3["run"]["status"] == "failed"
    assert "failed tasks: ingest_source" in day3["run"]["error"]
    assert "raw.app_requests" in day3["run"]["error"]
    source, status, error = [r for r in day3["ingests"] if r[0] == "app_gpc"][-1]
    assert status == "failed" and "raw.app_requests" in error
