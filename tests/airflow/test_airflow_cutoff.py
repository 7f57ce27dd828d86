"""The nightly run's consent cut-off when the policy ingests consent sources."""

from __future__ import annotations

from datetime import datetime, timedelta

from consentgate.airflow.tasks import cutoff_after_ingest
from consentgate.engine.enforcement import utcnow
from consentgate.engine.policy import parse

POLICY = {
    "purposes": [{"name": "ad_targeting", "description": "Ads."}],
    "datasets": [
        {
            "name": "w",
            "source": "raw.w",
            "target": "consented.w",
            "subject_column": "c",
            "purpose": "ad_targeting",
        }
    ],
}
SOURCES = [
    {
        "name": "web_gpc",
        "kind": "gpc",
        "table": "raw.web_requests",
        "columns": {"subject": "c", "signal": "sec_gpc", "event_ts": "requested_at"},
        "purposes": ["ad_targeting"],
    }
]


def test_with_sources_the_cutoff_is_after_tonights_ingest_so_its_withdrawals_count_tonight() -> None:
    """Ingestion stamps events with recorded_at = its own time, after the scheduled 02:00: a cut-off of
    data_interval_end would leave tonight's withdrawals to tomorrow's run."""
    scheduled = utcnow() - timedelta(minutes=5)
    before = utcnow()
    cutoff = cutoff_after_ingest(scheduled, parse({**POLICY, "sources": SOURCES}))
    assert cutoff >= before > scheduled


def test_without_sources_the_cutoff_is_the_scheduled_one() -> None:
    scheduled = datetime(2026, 11, 29, 2, 0)
    assert cutoff_after_ingest(scheduled, parse(POLICY)) == scheduled


def test_a_cutoff_already_after_now_is_kept() -> None:
    later = utcnow() + timedelta(days=30)  # dag.test() for a future date
    assert cutoff_after_ingest(later, parse({**POLICY, "sources": SOURCES})) == later
