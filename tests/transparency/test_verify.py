"""`consentgate verify`: replay a run from the log as of its cut-off; a rewritten log or a contaminated
target fails verification, a grown source is a warning; opt-out latency is computed over all runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from cg_transparency import C, G, assert_no_subject_id, cg, cg_json, sql
from consentgate.engine import lineage
from consentgate.engine.session import session_for
from consentgate.evidence import transparency, verification

DAY = 86400.0


def test_an_untouched_run_verifies(warehouse: Path) -> None:
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 0, out
    assert out["ok"] is True and out["status"] == "verified"
    assert out["fingerprint"]["match"] is True
    assert out["fingerprint"]["recorded"] == out["fingerprint"]["recomputed"]
    by_name = {d["dataset"]: d for d in out["datasets"]}
    assert {n: d["status"] for n, d in by_name.items()} == {"mail": "reproduced", "web": "reproduced"}
    assert by_name["web"]["recomputed"] == by_name["web"]["recorded"]
    assert by_name["web"]["recorded"]["rows_out"] == 3  # B, G, and D (whose withdrawal was recorded late)
    assert by_name["web"]["target_check"] == {
        "status": "clean",
        "rows": 3,
        "consented": 3,
        "violations": {
            "null_subject": 0,
            "no_consent": 0,
            "denied": 0,
            "withdrawn": 0,
            "expired": 0,
            "invalid": 0,
        },
    }


def test_an_older_run_is_replayed_and_its_replaced_targets_are_not_judged(warehouse: Path) -> None:
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r1")
    assert code == 0 and out["status"] == "verified"
    assert {d["target_check"]["status"] for d in out["datasets"]} == {"replaced"}
    assert {d["target_check"]["replaced_by"] for d in out["datasets"]} == {"r3"}


def test_a_log_rewritten_after_the_run_fails_verification(warehouse: Path) -> None:
    # C's denial (01-03) counted for r2; someone turns it into a grant afterwards.
    sql(warehouse, "UPDATE consent_events SET status = 'granted' WHERE subject_id = ?", [C])
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r2")
    assert code == 1
    assert out["ok"] is False and out["status"] == "failed"
    assert out["fingerprint"]["match"] is False
    assert out["fingerprint"]["events_recorded"] == out["fingerprint"]["events_recomputed"]
    assert any("consent fingerprint differs" in p for p in out["problems"])
    web = next(d for d in out["datasets"] if d["dataset"] == "web")
    assert web["status"] == "mismatch"  # same source, different decisions: also reported
    p = cg("verify", "--database", warehouse, "--run-id", "r2")
    assert p.returncode == 1 and "DIFFERENT" in p.stdout


def test_an_event_deleted_after_the_run_fails_verification(warehouse: Path) -> None:
    sql(warehouse, "DELETE FROM consent_events WHERE subject_id = ?", [C])
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r1")
    assert code == 1
    assert out["fingerprint"]["events_recomputed"] == out["fingerprint"]["events_recorded"] - 1


def test_events_appended_after_the_cut_off_do_not_disturb_verification(warehouse: Path) -> None:
    sql(
        warehouse,
        "INSERT INTO consent_events VALUES (?, 'ad_targeting', 'withdrawn', ?, NULL, NULL, 'gpc', 'v2')",
        [G, datetime(2026, 4, 1)],
    )
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 0 and out["fingerprint"]["match"] is True


def test_a_contaminated_target_fails_with_counts_by_reason(warehouse: Path) -> None:
    # Someone copies C's row (denied) and an anonymous row into the consented table after r3.
    sql(warehouse, "INSERT INTO consented.web VALUES (4, ?), (6, NULL)", [C])
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 1 and out["status"] == "failed"
    web = next(d for d in out["datasets"] if d["dataset"] == "web")
    check = web["target_check"]
    assert check["status"] == "contaminated"
    assert (check["rows"], check["consented"]) == (5, 3)
    assert {k: v for k, v in check["violations"].items() if v} == {"denied": 1, "null_subject": 1}
    assert web["status"] == "reproduced"  # the run itself was right; the target was changed after it
    assert any("holds 2 rows not consented" in p for p in out["problems"])
    assert out["fingerprint"]["match"] is True


def test_a_grown_source_is_a_warning_not_a_failure(warehouse: Path) -> None:
    sql(warehouse, "INSERT INTO raw.web VALUES (9, ?)", [G])
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 0 and out["status"] == "verified_with_warnings"
    web = next(d for d in out["datasets"] if d["dataset"] == "web")
    assert web["status"] == "source_changed"
    assert (web["recorded"]["rows_in"], web["recomputed"]["rows_in"]) == (8, 9)
    assert any("changed since the run" in w for w in out["warnings"])


def test_a_target_edited_without_violations_is_a_warning(warehouse: Path) -> None:
    sql(warehouse, "DELETE FROM consented.web WHERE customer_ref = ?", [G])
    code, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert code == 0 and out["status"] == "verified_with_warnings"
    web = next(d for d in out["datasets"] if d["dataset"] == "web")
    assert web["target_check"]["status"] == "changed"


def test_an_unknown_run_is_one_line(warehouse: Path) -> None:
    p = cg("verify", "--database", warehouse, "--run-id", "nope")
    assert p.returncode != 0
    assert "no run with run_id 'nope'" in p.stderr and p.stderr.strip().count("\n") == 0


def test_a_run_that_failed_before_reading_consent_cannot_be_verified(
    tmp_path: Path, policy_file: Path
) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    p = cg("run", "--policy", policy_file, "--database", db, "--run-id", "broken")  # no consent table
    assert p.returncode != 0
    code, out = cg_json("verify", "--database", db, "--run-id", "broken")
    assert code == 1 and out["ok"] is False
    assert any("cannot be read" in x or "no recorded as_of" in x for x in out["problems"])


def test_verify_output_holds_no_subject_id(warehouse: Path) -> None:
    sql(warehouse, "INSERT INTO consented.web VALUES (4, ?)", [C])  # make it fail: the problem text too
    sql(warehouse, "UPDATE consent_events SET status = 'granted' WHERE subject_id = ?", [C])
    for args in (("--json",), ()):
        for run_id in ("r1", "r2", "r3"):
            p = cg("verify", "--database", warehouse, "--run-id", run_id, *args)
            assert p.returncode == 1, p.stderr
            assert_no_subject_id(p.stdout + p.stderr)


def test_opt_out_latency_over_the_story(warehouse: Path) -> None:
    _, out = cg_json("verify", "--database", warehouse, "--run-id", "r3")
    assert out["opt_out_latency"] == {
        "withdrawals": 5,
        "measured": 2,  # A: recorded 02-11, first run after r2 (02-15); E: 03-01, r3 (03-15)
        "pending": 1,  # D: recorded 03-20, after every run
        "before_first_run": 1,  # F withdrew before ads were ever enforced
        "untracked": 1,  # profiling: no run enforces it
        "median_seconds": (4 * DAY + 14 * DAY) / 2,
        "max_seconds": 14 * DAY,
    }


def _latency(
    events: list[tuple[str, str, datetime, datetime | None]], runs: list[tuple[str, datetime, str]]
) -> dict:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE consent_events (subject_id VARCHAR, purpose VARCHAR, status VARCHAR, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP, source VARCHAR, policy_version VARCHAR)"
    )
    for i, (purpose, status, event_ts, recorded_at) in enumerate(events):
        con.execute(
            "INSERT INTO consent_events VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)",
            [f"s{i}", purpose, status, event_ts, recorded_at],
        )
    session = session_for(con)
    lineage.ensure_tables(session)
    for run_id, as_of, purpose in runs:
        lineage.write_run(session, lineage.RunRecord(run_id=run_id, as_of=as_of, status="success"))
        lineage.write_lineage(
            session,
            lineage.LineageRecord(
                run_id=run_id,
                dataset=f"d_{purpose}",
                source="s",
                target=f"t_{purpose}",
                purpose=purpose,
                subject_column="k",
                normalize=None,
                rows_in=0,
                rows_out=0,
            ),
        )
    try:
        return verification.opt_out_latency(session, transparency.consent_source(session))
    finally:
        con.close()


def h(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, 1, hour, minute)


def test_latency_is_measured_to_the_first_run_of_the_same_purpose_that_includes_it() -> None:
    events = [
        ("ads", "withdrawn", h(1), None),  # run at 02:00 -> 1 h
        ("ads", " Withdrawn ", h(1), h(5)),  # recorded 05:00 -> next ads run 08:00 -> 3 h
        ("ADS", "withdrawn", h(2), None),  # known exactly at the 02:00 cut-off: included -> 0 s
        ("mail", "withdrawn", h(1), None),  # before mail's first run (04:00): not measured
        ("ads", "granted", h(3), None),  # not a withdrawal
        ("ads", "withdrawn", h(9), None),  # after every ads run: pending
        ("ads", "withdrawn", h(0), None),  # before the first ads run (00:30): not measured
    ]
    runs = [
        ("first", h(0, 30), "ads"),
        ("a", h(2), "ads"),
        ("m", h(4), "mail"),
        ("b", h(8), "ads"),
        ("c", h(9), "mail"),
    ]
    lat = _latency(events, runs)
    assert lat["withdrawals"] == 6
    assert (lat["before_first_run"], lat["pending"], lat["untracked"]) == (2, 1, 0)
    assert lat["measured"] == 3  # 1 h, 3 h and 0 s
    assert lat["median_seconds"] == 3600.0
    assert lat["max_seconds"] == 3 * 3600.0


@pytest.mark.parametrize("runs", [[], [("x", h(1), "profiling")]])
def test_latency_without_a_run_of_the_purpose_measures_nothing(runs: list) -> None:
    lat = _latency([("ads", "withdrawn", h(1), None)], runs)
    assert lat["measured"] == 0 and lat["median_seconds"] is None and lat["max_seconds"] is None
