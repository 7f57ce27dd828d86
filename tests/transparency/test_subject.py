"""`consentgate subject`: one person's history, state now, and every run's decision for them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cg_transparency import A, B, D, E, cg, cg_json, sql
from consentgate.engine import lineage
from consentgate.engine.policy import load
from consentgate.engine.session import open_duckdb, session_for
from consentgate.evidence import transparency
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Event, decide, reason_for


def runs_for(report: dict[str, Any], dataset: str) -> dict[str, tuple[bool | None, str | None]]:
    return {
        r["run_id"]: next((d["eligible"], d["state"]) for d in r["datasets"] if d["dataset"] == dataset)
        for r in report["runs"]
    }


def test_withdrawal_is_in_the_history_and_the_next_run_excluded_the_person(
    warehouse: Path, policy_file: Path
) -> None:
    code, report = cg_json("subject", A, "--database", warehouse, "--policy", policy_file)
    assert code == 0
    [ads] = [h for h in report["history"] if h["purpose"] == "ad_targeting"]
    assert [
        (e["status"], e["event_ts"], e["recorded_at"], e["source"], e["policy_version"])
        for e in ads["events"]
    ] == [
        ("granted", "2026-01-01T00:00:00", None, "cookie_banner", "v1"),
        ("withdrawn", "2026-02-10T00:00:00", "2026-02-11T00:00:00", "gpc", "v2"),
    ]
    state = {c["purpose"]: c for c in report["current"]}
    assert state["ad_targeting"]["state"] == "withdrawn" and state["ad_targeting"]["consented"] is False
    assert state["ad_targeting"]["description"].startswith("We choose the ads")
    assert state["email_marketing"]["state"] == "no_consent"
    assert runs_for(report, "web") == {
        "r1": (True, "consented"),
        "r2": (False, "withdrawn"),
        "r3": (False, "withdrawn"),
    }
    targets = {d["target"] for r in report["runs"] for d in r["datasets"]}
    assert targets == {"consented.web", "consented.mail"}


def test_a_withdrawal_recorded_late_does_not_change_the_run_it_missed(warehouse: Path) -> None:
    session = open_duckdb(warehouse, read_only=True)
    try:
        report = transparency.subject_report(session, D, now=datetime(2026, 4, 1))
        # The copy of the person's events lives only during the call.
        assert session.all("SELECT table_name FROM duckdb_tables() WHERE temporary") == []
    finally:
        session.close()
    # D withdrew on 02-20 but it was recorded on 03-20: r3 (03-15) could not know it, and kept D.
    assert runs_for(report, "web") == {
        "r1": (True, "consented"),
        "r2": (True, "consented"),
        "r3": (True, "consented"),
    }
    assert {c["purpose"]: c["state"] for c in report["current"]}["ad_targeting"] == "withdrawn"


def test_the_key_is_trimmed_text(warehouse: Path) -> None:
    code, report = cg_json("subject", f"  {B} ", "--database", warehouse)
    assert code == 0
    assert report["subject_id"] == B
    assert runs_for(report, "web") == {
        "r1": (True, "consented"),
        "r2": (True, "consented"),
        "r3": (True, "consented"),
    }


def test_case_variants_count_only_for_purposes_whose_datasets_normalise_to_lower(
    warehouse: Path, policy_file: Path
) -> None:
    code, report = cg_json(
        "subject", "ERIN.SECRET@EXAMPLE.ORG", "--database", warehouse, "--policy", policy_file
    )
    assert code == 0
    history = {h["purpose"]: [e["subject_id"] for e in h["events"]] for h in report["history"]}
    # e-mail: both spellings are this person's (normalize: lower); ads: the lower-cased key is someone else.
    assert history == {"email_marketing": [E, " erin.secret@example.org "]}
    current = {(c["purpose"], c["normalize"]): c["state"] for c in report["current"]}
    assert current == {("ad_targeting", None): "no_consent", ("email_marketing", "lower"): "withdrawn"}
    assert runs_for(report, "mail") == {
        "r1": (True, "consented"),
        "r2": (True, "consented"),
        "r3": (False, "withdrawn"),
    }
    assert runs_for(report, "web") == {
        "r1": (False, "no_consent"),
        "r2": (False, "no_consent"),
        "r3": (False, "no_consent"),
    }


def test_subject_index_is_created_once_and_gives_the_same_report(warehouse: Path, policy_file: Path) -> None:
    _, before = cg_json("subject", A, "--database", warehouse, "--policy", policy_file)
    assert before["subject_index"] is False
    code, created = cg_json("index", "--database", warehouse, "--policy", policy_file)
    assert code == 0 and created["action"] == "created"
    assert cg_json("index", "--database", warehouse)[1]["action"] == "exists"
    assert sql(warehouse, "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'consent_events'") == [
        ("consent_events_consentgate_subject",)
    ]
    _, after = cg_json("subject", A, "--database", warehouse, "--policy", policy_file)
    assert after["subject_index"] is True
    for key in ("history", "current", "runs"):
        assert after[key] == before[key]
    # The index is kept up to date as the log grows.
    sql(
        warehouse,
        "INSERT INTO consent_events VALUES (?, 'ad_targeting', 'granted', ?, NULL, NULL, 'banner', 'v3')",
        [A, datetime(2026, 3, 1)],
    )
    _, grown = cg_json("subject", A, "--database", warehouse, "--policy", policy_file)
    assert len(grown["history"][0]["events"]) == 3
    assert {c["purpose"]: c["state"] for c in grown["current"]}["ad_targeting"] == "consented"
    assert cg_json("index", "--database", warehouse, "--drop")[1]["action"] == "dropped"
    assert sql(warehouse, "SELECT count(*) FROM duckdb_indexes()") == [(0,)]


def test_the_report_reads_the_log_through_the_subject_index(
    warehouse: Path, policy_file: Path, tmp_path: Path
) -> None:
    # The report's lookup must be an expression DuckDB answers from the index: an index on a CASE
    # expression, for one, is kept up to date but never used. EXPLAIN decides nothing here (DuckDB
    # chooses the index inside the scan at run time), so the executed query's profile is read.
    assert cg_json("index", "--database", warehouse, "--policy", policy_file)[0] == 0
    profile = tmp_path / "profile.json"
    session = open_duckdb(warehouse, read_only=True)
    try:
        source = transparency.consent_source(session, load(policy_file))
        lookup = transparency.subject_lookup_expr(session, source, "c")
        session.run("PRAGMA enable_profiling = 'json'")
        session.run(f"PRAGMA profiling_output = '{profile}'")
        session.all(f"SELECT * FROM {source.table.sql()} AS c WHERE {lookup} = ?", [A.lower()])
        session.run("PRAGMA disable_profiling")
    finally:
        session.close()

    def scans(node: dict[str, Any]) -> list[str]:
        own = [node["extra_info"].get("Type", "")] if node.get("type") == "TABLE_SCAN" else []
        return own + [t for child in node.get("children", []) for t in scans(child)]

    assert [t for op in json.loads(profile.read_text())["operator"] for t in scans(op)] == ["Index Scan"]


def test_human_output_names_the_person_and_each_run(warehouse: Path) -> None:
    p = cg("subject", A, "--database", warehouse)
    assert p.returncode == 0, p.stderr
    assert A in p.stdout and "withdrawn" in p.stdout
    for run_id in ("r1", "r2", "r3"):
        assert run_id in p.stdout


@pytest.mark.parametrize("subject", ["", "   "])
def test_a_blank_subject_is_refused_in_one_line(warehouse: Path, subject: str) -> None:
    p = cg("subject", subject, "--database", warehouse)
    assert p.returncode != 0
    assert p.stderr.strip().count("\n") == 0 and "subject id is blank" in p.stderr


def test_a_missing_database_is_one_line(tmp_path: Path) -> None:
    p = cg("subject", A, "--database", tmp_path / "nope.duckdb")
    assert p.returncode != 0 and "does not exist" in p.stderr and p.stderr.strip().count("\n") == 0


def test_mapped_consent_columns_come_from_the_policy(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE optins (who VARCHAR, what VARCHAR, choice VARCHAR, chosen_at TIMESTAMP)")
    con.execute("INSERT INTO optins VALUES ('p-1', 'ads', 'granted', TIMESTAMP '2026-01-01')")
    con.execute("CREATE TABLE src (k VARCHAR)")
    con.execute("INSERT INTO src VALUES ('p-1')")
    con.close()
    pol = tmp_path / "p.yml"
    pol.write_text(
        "consent: {table: optins, columns: {subject_id: who, purpose: what, status: choice, event_ts: chosen_at,"
        " recorded_at: null, expires_at: null}}\n"
        "purposes: [{name: ads, description: Ads.}]\n"
        "datasets: [{name: s, source: src, target: out_s, subject_column: k, purpose: ads}]\n"
    )
    import consentgate

    consentgate.run_policy(load(pol), db, as_of="2026-02-01", run_id="m1")
    code, report = cg_json("subject", "p-1", "--database", db, "--policy", pol)
    assert code == 0
    assert report["history"][0]["events"][0]["status"] == "granted"
    assert runs_for(report, "s") == {"m1": (True, "consented")}


# -- the subject report against the independent reference, at every run's cut-off -------------------

DAYS = [datetime(2026, 1, 1) + timedelta(days=d) for d in range(8)]
event_st = st.builds(
    Event,
    subject_id=st.sampled_from(["s", " s ", "S", "other"]),
    purpose=st.sampled_from(["ads", " ADS ", "mail", None]),
    status=st.sampled_from(["granted", "withdrawn", "denied", " Granted ", "maybe"]),
    event_ts=st.sampled_from([*DAYS, None]),
    recorded_at=st.sampled_from([None, *DAYS]),
    expires_at=st.sampled_from([None, *DAYS]),
)


def _year_of_runs(con: Any, events: list[Event], cutoffs: list[datetime], param: str) -> dict[str, Any]:
    """The subject report for "s" after a run per cut-off (two datasets each), on connection `con`."""
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE consent_events (subject_id VARCHAR, purpose VARCHAR, status VARCHAR, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP, source VARCHAR, policy_version VARCHAR)"
    )
    for e in events:
        cur.execute(
            f"INSERT INTO consent_events VALUES ({', '.join([param] * 6)}, 'test', 'v1')",
            [e.subject_id, e.purpose, e.status, e.event_ts, e.recorded_at, e.expires_at],
        )
    session = session_for(con)
    lineage.ensure_tables(session)
    for i, t in enumerate(cutoffs):
        lineage.write_run(session, lineage.RunRecord(run_id=f"r{i}", as_of=t, status="success"))
        for name, purpose, normalize in (("ads_ds", "ads", None), ("mail_ds", "mail", "lower")):
            lineage.write_lineage(
                session,
                lineage.LineageRecord(
                    run_id=f"r{i}",
                    dataset=name,
                    source="src",
                    target=f"t_{name}",
                    purpose=purpose,
                    subject_column="k",
                    normalize=normalize,
                    rows_in=0,
                    rows_out=0,
                ),
            )
    return transparency.subject_report(session, "s", now=DAYS[-1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event_st, max_size=8), cutoffs=st.lists(st.sampled_from(DAYS), min_size=1, max_size=6))
def test_every_runs_decision_matches_the_reference(events: list[Event], cutoffs: list[datetime]) -> None:
    con = duckdb.connect()
    try:
        report = _year_of_runs(con, events, cutoffs, "?")
    finally:
        con.close()
    _check_against_reference(report, events, cutoffs)


@pytest.mark.slow
def test_every_runs_decision_matches_the_reference_on_postgres(pg_db: Any) -> None:
    """The same property on PostgreSQL (the cut-offs decided in one statement there too)."""

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        events=st.lists(event_st, max_size=8), cutoffs=st.lists(st.sampled_from(DAYS), min_size=1, max_size=6)
    )
    def check(events: list[Event], cutoffs: list[datetime]) -> None:
        con = pg_db.connect()
        try:
            con.cursor().execute("DROP TABLE IF EXISTS consent_events, consentgate_runs, consentgate_lineage")
            report = _year_of_runs(con, events, cutoffs, "%s")
        finally:
            con.rollback()
            con.close()
        _check_against_reference(report, events, cutoffs)

    check()


def _check_against_reference(report: dict[str, Any], events: list[Event], cutoffs: list[datetime]) -> None:
    for i, t in enumerate(cutoffs):
        run = next(r for r in report["runs"] if r["run_id"] == f"r{i}")
        for ds in run["datasets"]:
            normalize = ds["normalize"]
            expected = reason_for("s", decide(events, ds["purpose"], t, normalize), normalize)
            assert ds["state"] == (expected or "consented"), (ds["dataset"], t)
            assert ds["eligible"] is (expected is None)
    for c in report["current"]:
        expected = reason_for("s", decide(events, c["purpose"], DAYS[-1], c["normalize"]), c["normalize"])
        assert c["state"] == (expected or "consented"), c
