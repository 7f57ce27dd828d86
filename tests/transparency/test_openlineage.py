"""OpenLineage events of a `consentgate run` outside Airflow: written by the real client's file transport,
read back as JSON lines; best-effort (never raises), off unless configured."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cg_transparency import POLICY, R3, assert_no_subject_id, build
from consentgate import openlineage_events as ol
from consentgate.engine import run_policy
from consentgate.policy import parse

OL_ENV = (
    "CONSENTGATE_OPENLINEAGE_FILE",
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE_DISABLED",
    "OPENLINEAGE_PARENT_ID",
    "OPENLINEAGE_ROOT_PARENT_ID",
    "OPENLINEAGE_NAMESPACE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in [*OL_ENV, *(k for k in os.environ if k.startswith("OPENLINEAGE__"))]:
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    build(path)
    return path


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def names(datasets: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in datasets]


def test_a_run_emits_parent_and_dataset_events_with_the_enforcement_facet(
    story: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_file = tmp_path / "ol" / "events.jsonl"
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(events_file))
    policy = parse(POLICY)
    result = run_policy(policy, story, as_of=R3, run_id="nightly-2026-03-15")
    assert ol.emit_run(result, policy=policy, database=story) == 6
    events = read_events(events_file)
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "consentgate.run"),
        ("START", "consentgate.run.web"),
        ("COMPLETE", "consentgate.run.web"),
        ("START", "consentgate.run.mail"),
        ("COMPLETE", "consentgate.run.mail"),
        ("COMPLETE", "consentgate.run"),
    ]
    namespace = f"duckdb://{story.resolve()}"
    assert {d["namespace"] for e in events for d in e["inputs"] + e["outputs"]} == {namespace}
    assert {e["job"]["namespace"] for e in events} == {"consentgate"}
    parent_run = ol.ol_run_id("nightly-2026-03-15")
    assert str(uuid.UUID(parent_run)) == parent_run
    assert events[0]["run"]["runId"] == events[-1]["run"]["runId"] == parent_run
    web = events[2]
    assert names(web["inputs"]) == ["warehouse.raw.web", "warehouse.main.consent_events"]
    assert names(web["outputs"]) == ["warehouse.consented.web"]
    assert web["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == 8
    assert web["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 3
    facet = web["run"]["facets"]["consentEnforcement"]
    ds = next(d for d in result.datasets if d.dataset == "web")
    assert {
        k: facet[k]
        for k in (
            "purpose",
            "as_of",
            "consent_fingerprint",
            "rows_in",
            "rows_out",
            "excluded",
            "run_id",
            "dataset",
        )
    } == {
        "purpose": "ad_targeting",
        "as_of": "2026-03-15T00:00:00",
        "consent_fingerprint": ds.consent_fingerprint,
        "rows_in": 8,
        "rows_out": 3,
        "run_id": "nightly-2026-03-15",
        "dataset": "web",
        "excluded": {
            "null_subject": 1,
            "no_consent": 1,
            "denied": 1,
            "withdrawn": 2,
            "expired": 0,
            "invalid": 0,
        },
    }
    assert facet["_schemaURL"].endswith("ConsentEnforcementRunFacet.json#/$defs/ConsentEnforcementRunFacet")
    parent = web["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == parent_run
    assert (parent["job"]["namespace"], parent["job"]["name"]) == ("consentgate", "consentgate.run")
    assert parent["root"]["run"]["runId"] == parent_run
    assert web["run"]["runId"] == events[1]["run"]["runId"] != parent_run
    assert set(names(events[-1]["outputs"])) == {"warehouse.consented.web", "warehouse.consented.mail"}
    assert_no_subject_id(events_file.read_text())


def test_events_read_back_with_the_openlineage_client(story: Path, tmp_path: Path) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    events_file = tmp_path / "events.jsonl"
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(events_file), append=True))
    )
    result = run_policy(parse(POLICY), story, as_of=R3, run_id="r")
    assert ol.emit_run(result, policy=parse(POLICY), database=story, client=client) == 6
    from openlineage.client.serde import Serde

    complete = [e for e in read_events(events_file) if e["eventType"] == "COMPLETE"]
    assert len(complete) == 3
    # Round-trip through the client's own serialisation: what we wrote is what the client writes.
    facet = ol.enforcement_facet(result.datasets[0])
    assert json.loads(Serde.to_json(facet))["rows_in"] == result.datasets[0].rows_in


def test_a_failed_dataset_fails_its_job_and_the_run(
    story: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_file = tmp_path / "events.jsonl"
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(events_file))
    data = json.loads(json.dumps(POLICY))
    data["datasets"].append(
        {
            "name": "gone",
            "source": "raw.gone",
            "target": "consented.gone",
            "subject_column": "k",
            "purpose": "ad_targeting",
        }
    )
    policy = parse(data)
    result = run_policy(policy, story, as_of=R3, run_id="r-fail")
    assert not result.ok
    ol.emit_run(result, policy=policy, database=story)
    events = read_events(events_file)
    gone = [e for e in events if e["job"]["name"] == "consentgate.run.gone"]
    assert [e["eventType"] for e in gone] == ["START", "FAIL"]
    assert "raw.gone" in gone[1]["run"]["facets"]["errorMessage"]["message"]
    assert events[-1]["eventType"] == "FAIL" and events[-1]["job"]["name"] == "consentgate.run"


def test_a_run_failing_before_any_dataset_emits_start_and_fail(tmp_path: Path) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    events_file = tmp_path / "events.jsonl"
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(events_file), append=True))
    )
    sent = ol.emit_failed_run(
        "r0",
        RuntimeError("consent table missing"),
        policy=parse(POLICY),
        database=tmp_path / "w.duckdb",
        client=client,
    )
    assert sent == 2
    start, fail = read_events(events_file)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert "consent table missing" in fail["run"]["facets"]["errorMessage"]["message"]


def test_nothing_is_emitted_unless_configured(
    story: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_policy(parse(POLICY), story, as_of=R3, run_id="quiet")
    assert ol.enabled() is False
    assert ol.emit_run(result, database=story) == 0
    assert capfd.readouterr().out == ""
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(tmp_path / "e.jsonl"))
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert ol.emit_run(result, database=story) == 0 and not (tmp_path / "e.jsonl").exists()


def test_emission_never_raises(
    story: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    result = run_policy(parse(POLICY), story, as_of=R3, run_id="r")

    class Broken:
        def emit(self, event: Any) -> None:
            raise ConnectionError("backend down")

    assert ol.emit_run(result, database=story, client=Broken()) == 0
    assert "not (all) sent" in caplog.text
    blocked = tmp_path / "dir-not-file"
    blocked.mkdir()
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(blocked))  # a directory: every write fails
    assert ol.emit_run(result, database=story) == 0


def test_run_ids_and_the_parent_id_for_dbt_ol(monkeypatch: pytest.MonkeyPatch) -> None:
    hex_id = uuid.uuid4().hex  # consentgate's default run ids are uuid4 hex: used as they are
    assert ol.ol_run_id(hex_id) == str(uuid.UUID(hex_id))
    assert ol.ol_run_id("nightly") == ol.ol_run_id("nightly") != ol.ol_run_id("nightly", "web")
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "marketing")
    assert ol.parent_id("nightly") == f"marketing/consentgate.run/{ol.ol_run_id('nightly')}"


def test_an_orchestrators_parent_becomes_the_runs_parent(
    story: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, root = str(uuid.uuid4()), str(uuid.uuid4())
    monkeypatch.setenv("OPENLINEAGE_PARENT_ID", f"airflow/nightly.enforce/{outer}")
    monkeypatch.setenv("OPENLINEAGE_ROOT_PARENT_ID", f"airflow/nightly/{root}")
    monkeypatch.setenv("CONSENTGATE_OPENLINEAGE_FILE", str(tmp_path / "events.jsonl"))
    result = run_policy(parse(POLICY), story, as_of=R3, run_id="r")
    ol.emit_run(result, database=story)
    events = read_events(tmp_path / "events.jsonl")
    parent = events[0]["run"]["facets"]["parent"]
    assert (parent["run"]["runId"], parent["job"]["name"], parent["root"]["run"]["runId"]) == (
        outer,
        "nightly.enforce",
        root,
    )
    child_root = events[1]["run"]["facets"]["parent"]["root"]
    assert child_root["run"]["runId"] == root and child_root["job"]["namespace"] == "airflow"
