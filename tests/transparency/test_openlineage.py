"""OpenLineage events of a `consentgate run` outside Airflow: written by the real client's file transport,
read back as JSON lines; best-effort (never raises), off unless configured."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cg_transparency import POLICY, R3, assert_no_subject_id, build
from consentgate.engine.enforcement import run_policy
from consentgate.engine.policy import parse
from consentgate.evidence import openlineage as ol
from consentgate.evidence.facets import PRODUCER
from facet_schema import validate_consentgate_facets, validate_facet

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
    # Both datasets' facets are valid against the shipped schema their _schemaURL resolves to.
    assert validate_consentgate_facets(events) == 2
    assert {e["producer"] for e in events} == {PRODUCER}
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
    from consentgate.errors import ConsentSourceError

    for exc in (
        ConsentSourceError("consent table 'consent_events' does not exist"),
        RuntimeError("MARKER-ol@x.test"),
    ):
        sent = ol.emit_failed_run(
            "r0", exc, policy=parse(POLICY), database=tmp_path / "w.duckdb", client=client
        )
        assert sent == 2
    events = read_events(events_file)
    assert [e["eventType"] for e in events] == ["START", "FAIL", "START", "FAIL"]
    assert (
        "consent table 'consent_events' does not exist"
        in events[1]["run"]["facets"]["errorMessage"]["message"]
    )
    # Anyone else's message can quote row values: only its class reaches the event (docs/errors.md).
    assert "RuntimeError" in events[3]["run"]["facets"]["errorMessage"]["message"]
    assert "MARKER" not in events_file.read_text()


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


# -- the facet schemas shipped in the package ---------------------------------------------------------

SUMMARIES = {
    "consentEnforcement": {
        "purpose": "ad_targeting",
        "as_of": "2026-03-15T00:00:00",
        "consent_fingerprint": "281d38cfe6f5426e",
        "rows_in": 8,
        "rows_out": 3,
        "excluded": {"no_consent": 1, "withdrawn": 2},
        "run_id": "r",
        "dataset": "web",
    },
    "consentAudit": {
        "purpose": "ad_targeting",
        "as_of": "2026-03-15T00:00:00",
        "consent_fingerprint": "281d38cfe6f5426e",
        "rows_checked": 3,
        "violations": {"withdrawn": 1},
        "passed": False,
    },
}


def facet_json(key: str, **changes: Any) -> dict[str, Any]:
    from consentgate.evidence.facets import audit_facet, enforcement_facet
    from openlineage.client.serde import Serde

    build_facet = enforcement_facet if key == "consentEnforcement" else audit_facet
    return {**json.loads(Serde.to_json(build_facet(SUMMARIES[key]))), **changes}


@pytest.mark.parametrize("key", ["consentEnforcement", "consentAudit"])
def test_each_facet_schema_is_a_json_schema_describing_the_facet_class(key: str) -> None:
    import attr
    import jsonschema
    from consentgate.evidence.facets import RUN_FACETS, schema_dir

    cls = RUN_FACETS[key]
    document = json.loads((schema_dir() / f"{cls.__name__}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["properties"] == {key: {"$ref": f"#/$defs/{cls.__name__}"}}
    base, own = document["$defs"][cls.__name__]["allOf"]
    assert base == {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"}
    fields = [f for f in attr.fields(cls) if not f.name.startswith("_")]
    assert sorted(own["properties"]) == sorted(f.name for f in fields)
    # Required: every field that is never None (the client leaves None fields out of the JSON).
    optional = {f.name for f in fields if "None" in str(f.type)}
    assert sorted(own["required"]) == sorted({f.name for f in fields} - optional)
    assert all("null" in own["properties"][name]["type"] for name in optional)


@pytest.mark.parametrize("key", ["consentEnforcement", "consentAudit"])
def test_schema_url_resolves_to_the_schema_file_in_the_installed_package(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.resources import files
    from urllib.request import urlopen

    monkeypatch.delenv("CONSENTGATE_FACET_SCHEMA_BASE", raising=False)
    facet = facet_json(key)
    document_url, pointer = facet["_schemaURL"].split("#")
    name = pointer.removeprefix("/$defs/")
    with urlopen(document_url) as response:  # what a consumer on this machine reads
        served = response.read()
    assert served == files("consentgate.evidence").joinpath("facet_schemas", f"{name}.json").read_bytes()
    assert name in json.loads(served)["$defs"]
    validate_facet(key, facet)


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("consentEnforcement", {"rows_in": "8"}),
        ("consentEnforcement", {"excluded": {"withdrawn": -1}}),
        ("consentAudit", {"passed": "no"}),
        ("consentAudit", {"_producer": None}),
    ],
)
def test_a_facet_that_breaks_its_schema_fails_validation(key: str, change: dict[str, Any]) -> None:
    import jsonschema

    facet = facet_json(key, **change)
    with pytest.raises((jsonschema.ValidationError, AssertionError)):
        validate_facet(key, facet)


def test_a_facet_missing_a_required_field_fails_validation() -> None:
    import jsonschema

    facet = facet_json("consentAudit")
    del facet["violations"]
    with pytest.raises(jsonschema.ValidationError, match="'violations' is a required property"):
        validate_facet("consentAudit", facet)


def test_facets_carry_consentgates_producer_whatever_the_clients_default(monkeypatch) -> None:
    from openlineage.client.generated import base

    # The Airflow provider calls set_producer() with its own URI when it loads.
    monkeypatch.setattr(
        base, "PRODUCER", "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
    )
    assert facet_json("consentEnforcement")["_producer"] == PRODUCER == f"urn:consentgate:{ol_version()}"
    assert facet_json("consentAudit")["_producer"] == PRODUCER


def ol_version() -> str:
    import consentgate

    return consentgate.__version__


def test_schema_base_can_point_at_where_the_schemas_are_published(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CONSENTGATE_FACET_SCHEMA_BASE", "https://schemas.example/consentgate/0.1.0/facet_schemas/"
    )
    assert facet_json("consentAudit")["_schemaURL"] == (
        "https://schemas.example/consentgate/0.1.0/facet_schemas/ConsentAuditRunFacet.json"
        "#/$defs/ConsentAuditRunFacet"
    )


def test_a_schema_base_that_is_not_a_url_is_logged_and_the_installed_schemas_are_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CONSENTGATE_FACET_SCHEMA_BASE", "docs/facet_schemas")
    with caplog.at_level("WARNING", logger="consentgate"):
        facet = facet_json("consentAudit")
    assert facet["_schemaURL"].startswith("file://")
    validate_facet("consentAudit", facet)
    assert "CONSENTGATE_FACET_SCHEMA_BASE='docs/facet_schemas' is not an absolute URL" in caplog.text
