"""OpenLineage events of an ingest of consent sources: the real client's file transport, read back as
JSON lines. Each source's ingest is a job whose input is the source's table and whose output is the
consent log; best-effort (never raises), off unless configured; no subject identifier."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from consentgate.evidence import openlineage as ol
from consentgate.evidence.facets import PRODUCER
from consentgate.sources.log import IngestRecord
from sources_db import Db

SUBJECTS = ("subject-ann@example.com", "subject-bob-4711")
GPC = {
    "name": "web_gpc", "kind": "gpc", "table": "raw.web_requests",
    "columns": {"subject": "customer_id", "signal": "sec_gpc", "event_ts": "requested_at"},
    "purposes": ["ad_targeting"],
}  # fmt: skip
BANNER = {"name": "banner", "kind": "events", "table": "crm.banner_events"}
POLICY = """
consent: {table: consent_events}
purposes: [{name: ad_targeting, description: Ads based on what you browse.}]
datasets: [{name: web, source: raw.web_requests, target: consented.web, subject_column: customer_id, purpose: ad_targeting}]
sources:
  - {name: web_gpc, kind: gpc, table: raw.web_requests, purposes: [ad_targeting],
     columns: {subject: customer_id, signal: sec_gpc, event_ts: requested_at}}
  - {name: banner, kind: events, table: crm.banner_events}
"""
OL_ENV = ("CONSENTGATE_OPENLINEAGE_FILE", "OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED",
          "OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_NAMESPACE")  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in [*OL_ENV, *(k for k in os.environ if k.startswith("OPENLINEAGE__"))]:
        monkeypatch.delenv(k, raising=False)


def sources(db: Db) -> None:
    at = datetime(2026, 3, 1, 8)
    db.table(
        "raw.web_requests", "customer_id varchar, sec_gpc varchar, requested_at timestamp",
        [(SUBJECTS[0], "1", at), (SUBJECTS[0], "1", at), (SUBJECTS[1], None, at)],
    )  # fmt: skip
    db.table(
        "crm.banner_events", "subject_id varchar, purpose varchar, status varchar, event_ts timestamp",
        [(SUBJECTS[1], "ad_targeting", "granted", at)],
    )  # fmt: skip


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def names(datasets: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in datasets]


def test_an_ingest_emits_one_job_per_source_from_its_table_to_the_consent_log(
    duck: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_file = tmp_path / "ol" / "events.jsonl"
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(events_file))
    sources(duck)
    records = duck.ingest(GPC, BANNER, ingest_id="ingest-2026-03-01")
    duck.session.close()
    assert ol.emit_ingest(records, database=duck.path) == 6
    events = read_events(events_file)
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "consentgate.ingest"),
        ("START", "consentgate.ingest.web_gpc"),
        ("COMPLETE", "consentgate.ingest.web_gpc"),
        ("START", "consentgate.ingest.banner"),
        ("COMPLETE", "consentgate.ingest.banner"),
        ("COMPLETE", "consentgate.ingest"),
    ]
    namespace = f"duckdb://{duck.path.resolve()}"
    assert {d["namespace"] for e in events for d in e["inputs"] + e["outputs"]} == {namespace}
    assert names(events[0]["inputs"]) == ["warehouse.raw.web_requests", "warehouse.crm.banner_events"]
    assert {n for e in events for n in names(e["outputs"])} == {"warehouse.main.consent_events"}
    gpc, banner = events[2], events[4]
    assert names(gpc["inputs"]) == ["warehouse.raw.web_requests"]
    assert gpc["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == records[0].observations_read == 3
    assert gpc["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == records[0].events_written == 1
    assert banner["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == records[1].events_written
    parent_uuid = ol.ol_run_id("ingest-2026-03-01")
    assert str(uuid.UUID(parent_uuid)) == parent_uuid
    assert events[0]["run"]["runId"] == events[-1]["run"]["runId"] == parent_uuid
    for child in events[1:-1]:
        assert child["run"]["facets"]["parent"]["run"]["runId"] == parent_uuid
        assert child["run"]["facets"]["parent"]["job"]["name"] == "consentgate.ingest"
    assert events[1]["run"]["runId"] == events[2]["run"]["runId"] != events[3]["run"]["runId"]
    assert {e["producer"] for e in events} == {PRODUCER}
    text = events_file.read_text()
    assert not any(s in text for s in SUBJECTS)


def test_a_failed_source_fails_its_job_and_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_file = tmp_path / "events.jsonl"
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(events_file))
    t = datetime(2026, 3, 1, 2)
    ok = IngestRecord("i1", "web_gpc", "gpc", "raw.web_requests", "consent_events", t, t, t, "success", 5, 1)
    failed = IngestRecord(
        "i1", "banner", "events", "crm.banner", "consent_events", t, t, None, "failed",
        error="appending to the consent log consent_events: ConversionException",
    )  # fmt: skip
    assert ol.emit_ingest([ok, failed], database=tmp_path / "w.duckdb") == 6
    events = read_events(events_file)
    assert [e["eventType"] for e in events] == ["START", "START", "COMPLETE", "START", "FAIL", "FAIL"]
    assert "ConversionException" in events[4]["run"]["facets"]["errorMessage"]["message"]
    assert events[-1]["run"]["facets"]["errorMessage"]["message"].startswith("banner: appending")


def test_nothing_is_emitted_unless_configured_and_emission_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = datetime(2026, 3, 1, 2)
    record = IngestRecord("i1", "web_gpc", "gpc", "raw.web_requests", "consent_events", t, t, t, "success")
    assert ol.emit_ingest([record], database=tmp_path / "w.duckdb") == 0

    class Broken:
        def emit(self, event: Any) -> None:
            raise ConnectionError("lineage backend down")

    assert ol.emit_ingest([record], database=tmp_path / "w.duckdb", client=Broken()) == 0
    assert ol.emit_failed_ingest("i1", "boom", client=Broken()) == 0
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(tmp_path / "e.jsonl"))
    assert ol.emit_ingest([], database=tmp_path / "w.duckdb") == 0


def cg(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    exe = str(Path(sys.executable).with_name("consentgate"))
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_consentgate_ingest_emits_the_ingest_and_an_unreadable_source_fails_it(
    duck: Db, tmp_path: Path
) -> None:
    sources(duck)
    duck.connection.close()
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    events_file = tmp_path / "events.jsonl"
    env = {"CONSENTGATE_OPENLINEAGE_FILE": str(events_file)}
    p = cg("ingest", "--policy", str(policy), "--database", str(duck.path), env=env)
    assert p.returncode == 0, p.stderr
    events = read_events(events_file)
    assert [(e["eventType"], e["job"]["name"]) for e in events][-1] == ("COMPLETE", "consentgate.ingest")
    assert len(events) == 6
    policy.write_text(POLICY.replace("crm.banner_events", "crm.gone"))
    p = cg("ingest", "--policy", str(policy), "--database", str(duck.path), env=env)
    assert p.returncode == 1 and "crm.gone" in p.stderr
    failed = read_events(events_file)[6:]
    assert [(e["eventType"], e["job"]["name"]) for e in failed] == [
        ("START", "consentgate.ingest"),
        ("FAIL", "consentgate.ingest"),
    ]
    assert names(failed[1]["inputs"]) == ["warehouse.raw.web_requests", "warehouse.crm.gone"]
    assert names(failed[1]["outputs"]) == ["warehouse.main.consent_events"]
    assert "crm.gone" in failed[1]["run"]["facets"]["errorMessage"]["message"]
    assert not any(s in events_file.read_text() for s in SUBJECTS)
