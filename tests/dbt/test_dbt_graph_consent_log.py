"""The consent log is a node of the dbt graph: every consented() caller depends on it, so dbt builds a
consent log made in dbt (a seed) before any gated model, and the manifest (dbt docs, cosmos,
OpenLineage) shows it as an input of each ad-targeting model. Real dbt subprocesses on DuckDB."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dbt_harness import Backend, copy_package, duckdb_backend, run_dbt, vars_arg
from example_expectations import AS_OF, reference_result

pytestmark = pytest.mark.slow

PACKAGE_SOURCE = "source.consentgate.consentgate.consent_events"
GATED = ["ad_audience", "ad_lookalike_seed", "ad_customer_features", "email_audience"]
PROJECT = "consentgate_integration_tests"
SEED_COLUMNS = [
    "subject_id",
    "purpose",
    "status",
    "event_ts",
    "recorded_at",
    "expires_at",
    "source",
    "policy_version",
]


def _manifest(project: Path) -> dict[str, Any]:
    return json.loads((project / "target" / "manifest.json").read_text())


def _model(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return manifest["nodes"][f"model.{PROJECT}.{name}"]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _timing(project: Path) -> dict[str, tuple[datetime, datetime]]:
    """{unique_id: (execute started, execute completed)} from run_results.json."""
    out = {}
    for result in json.loads((project / "target" / "run_results.json").read_text())["results"]:
        spans = {t["name"]: t for t in result["timing"]}
        if "execute" in spans:
            out[result["unique_id"]] = (
                _when(spans["execute"]["started_at"]),
                _when(spans["execute"]["completed_at"]),
            )
    return out


def test_every_gated_model_depends_on_the_package_source_without_any_user_code(
    tmp_path: Path, demo_duckdb_template: Path
) -> None:
    """No var, no `-- depends_on` comment: the source() call inside consented() lands in depends_on."""
    project = copy_package(tmp_path / "pkg")
    backend = duckdb_backend(tmp_path / "parse.duckdb")
    run_dbt(project, ["parse"], backend)
    manifest = _manifest(project)
    source = manifest["sources"][PACKAGE_SOURCE]
    assert source["relation_name"] == '"parse"."main"."consent_events"'
    for name in GATED:
        assert PACKAGE_SOURCE in _model(manifest, name)["depends_on"]["nodes"], name
    for name in ("stg_customers", "stg_web_events"):
        assert PACKAGE_SOURCE not in _model(manifest, name)["depends_on"]["nodes"]
    tests = [
        n for n in manifest["nodes"].values() if n.get("test_metadata", {}).get("name") == "only_consented"
    ]
    assert tests and all(PACKAGE_SOURCE in t["depends_on"]["nodes"] for t in tests)
    assert manifest["child_map"][PACKAGE_SOURCE]  # what `dbt docs` draws as lineage


def test_a_string_var_moves_the_package_source_so_existing_projects_keep_working(
    tmp_path: Path, demo_duckdb_template: Path
) -> None:
    """The old var form `schema.table` still works: it locates the same graph node."""
    project = copy_package(tmp_path / "pkg")
    path = tmp_path / "moved.duckdb"
    path.write_bytes(demo_duckdb_template.read_bytes())
    backend = duckdb_backend(path)
    backend.execute("create schema compliance")
    backend.execute("create table compliance.consent_log as select * from main.consent_events")
    backend.execute("drop table main.consent_events")
    run_dbt(
        project,
        ["build", *vars_arg(consentgate_as_of=AS_OF, consentgate_consent_relation="compliance.consent_log")],
        backend,
    )
    manifest = _manifest(project)
    assert manifest["sources"][PACKAGE_SOURCE]["relation_name"] == '"moved"."compliance"."consent_log"'
    assert PACKAGE_SOURCE in _model(manifest, "ad_audience")["depends_on"]["nodes"]
    assert backend.query("select count(*) from main.ad_audience")[0][0] > 0


def _seed_project(tmp_path: Path, template: Path) -> tuple[Path, Backend, list[list[str]]]:
    """The example project with the consent log as a seed `consent_events` (and the demo's table gone,
    so a gated model built before the seed would fail)."""
    project = copy_package(tmp_path / "pkg")
    path = tmp_path / "seeded.duckdb"
    path.write_bytes(template.read_bytes())
    backend = duckdb_backend(path)
    rows = [
        ["" if v is None else (v.isoformat(sep=" ") if isinstance(v, datetime) else str(v)) for v in row]
        for row in backend.query(f"select {', '.join(SEED_COLUMNS)} from main.consent_events")
    ]
    backend.execute("drop table main.consent_events")
    (project / "seeds").mkdir()
    with (project / "seeds" / "consent_events.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SEED_COLUMNS)
        writer.writerows(rows)
    types = {
        c: ("timestamp" if c in ("event_ts", "recorded_at", "expires_at") else "varchar")
        for c in SEED_COLUMNS
    }
    text = (project / "dbt_project.yml").read_text().replace("seed-paths: []", 'seed-paths: ["seeds"]')
    text += f"\nseeds:\n  {PROJECT}:\n    consent_events:\n      +column_types: {json.dumps(types)}\n"
    (project / "dbt_project.yml").write_text(text)
    profiles = (project / "profiles.yml").read_text()
    assert "threads: 4" in profiles  # the example's DuckDB target: dbt runs independent nodes in parallel
    return project, backend, rows


def test_a_consent_log_seed_is_built_before_every_gated_model_with_four_threads(
    tmp_path: Path, demo_duckdb_template: Path
) -> None:
    project, backend, rows = _seed_project(tmp_path, demo_duckdb_template)
    run_dbt(
        project,
        [
            "build",
            "--threads",
            "4",
            *vars_arg(consentgate_as_of=AS_OF, consentgate_consent_relation={"ref": "consent_events"}),
        ],
        backend,
    )
    seed = f"seed.{PROJECT}.consent_events"
    manifest = _manifest(project)
    for name in GATED:
        depends = _model(manifest, name)["depends_on"]["nodes"]
        assert seed in depends and PACKAGE_SOURCE not in depends, name
    assert seed in manifest["parent_map"][f"model.{PROJECT}.ad_audience"]

    timing = _timing(project)
    _, seed_done = timing[seed]
    for name in GATED:
        started, _ = timing[f"model.{PROJECT}.{name}"]
        assert started >= seed_done, f"{name} started before the consent log seed was loaded"

    # The models read the seed: the same result as the reference rule on the seeded events.
    assert backend.query("select count(*) from main.consent_events")[0][0] == len(rows)
    kept, _ = reference_result(backend, "stg_customers", "customer_id", "ad_targeting", None, AS_OF)
    assert {r[0] for r in backend.query("select customer_id from main.ad_audience")} == kept
    # log_lineage (on-run-end) resolves the same node and records the seed as the run's consent table.
    (table,) = backend.query("select consent_table from consentgate_runs")[0]
    assert table == "main.consent_events"


def test_a_malformed_consent_node_var_fails_the_parse_naming_the_forms(tmp_path: Path) -> None:
    project = copy_package(tmp_path / "pkg")
    proc = run_dbt(
        project,
        ["parse", *vars_arg(consentgate_consent_relation={"model": "consent_events"})],
        duckdb_backend(tmp_path / "bad.duckdb"),
        ok=False,
    )
    assert proc.returncode != 0
    assert (
        "argument 'consent_relation (var consentgate_consent_relation)' as a mapping must be {ref: name}, "
        "{ref: [package, name]} or {source: [source_name, table_name]}; got {'model': 'consent_events'}"
    ) in proc.stdout
