"""The run report leads with people: per purpose of the run, with the policy's text, how many people are
consented and how many excluded by reason at the run's cut-off (numbers computed here independently
with tests/reference.py from the story's consent log), the run's consent-source ingests, a glossary of
every term, and runs labelled by cut-off as well as id. Counts only, never an identifier."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from cg_transparency import EVENTS, POLICY, R1, R2, R3, assert_no_subject_id, chart_values, elements
from consentgate.engine.policy import parse
from consentgate.engine.session import open_database
from consentgate.evidence import report
from consentgate.evidence.people import DECISIONS
from consentgate.sources.log import IngestRecord, ensure_tables, write_record
from reference import Event, decide

KIND_TO_DECISION = {
    "granted": "consented",
    "withdrawn": "withdrawn",
    "denied": "denied",
    "expired": "expired",
}


def expected_people(purpose: str, normalize: str | None, as_of: datetime) -> dict[str, int]:
    """People by decision, straight from the story's events and the reference rule."""
    decided = decide([Event(*e[:6]) for e in EVENTS], purpose, as_of, normalize)
    counts = Counter(KIND_TO_DECISION.get(kind, "invalid") for kind in decided.values())
    return {d: counts.get(d, 0) for d in DECISIONS}


def page_of(warehouse: Path, run_id: str | None = None, policy: bool = True) -> str:
    session = open_database(warehouse, read_only=True)
    try:
        return report.render_report(session, run_id, policy=parse(POLICY) if policy else None)
    finally:
        session.close()


def people_rows(page: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    current = None
    for tag, attrs in elements(page):
        if tag == "tr" and "data-people" in attrs:
            current = attrs["data-purpose"]
            out[current] = {"people": int(attrs["data-people"])}
        elif tag == "td" and "data-decision" in attrs and current:
            out[current][attrs["data-decision"]] = -1  # filled from the chart below
    bars = {(a["data-row"], a["data-segment"]): int(a["data-value"]) for a in chart_values(page, "people")}
    for purpose, row in out.items():
        for decision in DECISIONS:
            row[decision] = bars[(purpose, decision)]
    return out


@pytest.mark.parametrize(("run_id", "as_of"), [("r1", R1), ("r2", R2), ("r3", R3)])
def test_people_per_purpose_are_those_the_rule_decides_at_the_runs_cut_off(
    warehouse: Path, run_id: str, as_of: datetime
) -> None:
    rows = people_rows(page_of(warehouse, run_id))
    # web is enforced with exact keys for ad_targeting, mail lower-cased for email_marketing.
    for purpose, normalize in (("ad_targeting", None), ("email_marketing", "lower")):
        expected = expected_people(purpose, normalize, as_of)
        assert {k: v for k, v in rows[purpose].items() if k != "people"} == expected, (run_id, purpose)
        assert rows[purpose]["people"] == sum(expected.values())
    assert set(rows) == {"ad_targeting", "email_marketing"}  # profiling is in the log but no run enforces it


def test_the_known_numbers_of_the_last_run(warehouse: Path) -> None:
    """r3 (03-15), written out: A and F withdrew, C denied, B, D (withdrawal recorded only on 03-20), G
    and the lower-cased e-mail's ads grant consented; for e-mail, Erin unsubscribed (two spellings, one
    person)."""
    rows = people_rows(page_of(warehouse, "r3"))
    assert rows["ad_targeting"] == {
        "people": 7,
        "consented": 4,
        "withdrawn": 2,
        "denied": 1,
        "expired": 0,
        "invalid": 0,
    }
    assert rows["email_marketing"] == {
        "people": 1,
        "consented": 0,
        "withdrawn": 1,
        "denied": 0,
        "expired": 0,
        "invalid": 0,
    }


def test_each_purpose_shows_the_policys_plain_language_text(warehouse: Path) -> None:
    page = page_of(warehouse, "r3")
    for purpose in POLICY["purposes"]:
        assert purpose["description"] in page
    assert "report with the policy (--policy)" in page_of(warehouse, "r3", policy=False)


def test_every_term_on_the_page_is_explained(warehouse: Path) -> None:
    page = page_of(warehouse, "r3")
    terms = {a["data-term"] for t, a in elements(page) if t == "dt"}
    for term in (
        "null subject", "no consent", "denied", "withdrawn", "expired", "invalid", "consented", "kept",
        "consent fingerprint", "consent events counted", "cut-off (as of)", "run id", "person", "trigger",
        "observations read / events written", "rejected", "watermark", "opt-out latency",
    ):  # fmt: skip
        assert term in terms, term


def test_runs_are_labelled_by_cut_off_and_id(warehouse: Path) -> None:
    page = page_of(warehouse, "r3")
    assert "Consent enforcement as of" in page and "2026-03-15 00:00:00 UTC" in page
    assert "run <code>r3</code>" in page
    trend = [a for t, a in elements(page) if t == "tr" and "data-run" in a]
    assert [a["data-run"] for a in trend] == ["r3", "r2", "r1"]
    assert "<th class=l>cut-off (as of)</th><th class=l>run id</th>" in page


def test_the_runs_consent_source_ingests_are_shown_with_their_counts(warehouse: Path) -> None:
    """Ingests recorded after the previous run's cut-off and by this run's are this run's."""
    session = open_database(warehouse)
    try:
        ensure_tables(session)
        for source, recorded, status, read, written, rejected in (
            ("cmp_export", datetime(2026, 3, 1), "success", 40, 12, {"unknown_purpose": 3, "no_subject": 1}),
            ("gpc", datetime(2026, 3, 10), "success", 9, 2, {}),
            ("too_late", datetime(2026, 3, 20), "success", 5, 5, {}),  # after r3's cut-off: the next run's
            ("too_early", datetime(2026, 2, 10), "success", 7, 7, {}),  # before r2's: an earlier run's
        ):
            write_record(
                session,
                IngestRecord(
                    ingest_id=f"i-{source}", source=source, kind="table", source_table=f"raw.{source}",
                    consent_table="consent_events", started_at=recorded, finished_at=recorded,
                    recorded_at=recorded, status=status, observations_read=read, events_written=written,
                    rejected=rejected, watermark_from=datetime(2026, 2, 15), watermark_to=recorded,
                ),
            )  # fmt: skip
        session.commit()
    finally:
        session.close()
    page = page_of(warehouse, "r3")
    shown = {
        a["data-ingest"]: (
            a["data-status"],
            int(a["data-read"]),
            int(a["data-written"]),
            int(a["data-rejected"]),
        )
        for t, a in elements(page)
        if t == "tr" and "data-ingest" in a
    }
    assert shown == {"cmp_export": ("success", 40, 12, 4), "gpc": ("success", 9, 2, 0)}
    assert "no_subject 1, unknown_purpose 3" in page
    assert_no_subject_id(page)


def test_the_headline_holds_no_identifier(warehouse: Path) -> None:
    assert_no_subject_id(page_of(warehouse, "r3"))
