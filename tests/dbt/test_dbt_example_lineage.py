"""The example project end to end on DuckDB: it builds, its ad-targeting models hold only consented
subjects, and log_lineage records each run (counts checked against tests/reference.py).

The tests share one copy of the project and one database (module scope, to keep dbt invocations
few); each uses its own run ids and checks only its own rows."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from consentgate.dbt.coverage import coverage_command
from dbt_harness import REPO, Backend, example_on_duckdb, run_dbt, vars_arg
from example_expectations import (
    AS_OF,
    engine_snapshot,
    expected_lineage,
    lineage_rows,
    reference_result,
    run_row,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, demo_duckdb_template: Path) -> tuple[Path, Backend]:
    return example_on_duckdb(tmp_path_factory.mktemp("example_lineage"), demo_duckdb_template)


def _invocation_id(project: Path) -> str:
    return json.loads((project / "target" / "run_results.json").read_text())["metadata"]["invocation_id"]


def _create_evidence_tables(backend: Backend) -> None:
    """The evidence tables as the Python engine creates them (plugins/consentgate/engine/ddl.sql)."""
    for statement in (REPO / "plugins" / "consentgate" / "engine" / "ddl.sql").read_text().split(";"):
        if statement.strip():
            backend.execute(statement)


def _compare_lineage(backend: Backend, run_id: str) -> None:
    written = lineage_rows(backend, run_id)
    expected = expected_lineage(backend)
    assert set(written) == set(expected)
    fingerprint, _ = engine_snapshot(backend)
    for key, row in expected.items():
        model = key[0].split("/")[0]
        assert written[key]["consent_fingerprint"] == fingerprint
        # rows_in and excluded_* are the consented input's; rows_out is the rows in the model after the build.
        (model_rows,) = backend.query(f"select count(*) from {model}")[0]
        assert written[key]["counts"] == {**row["counts"], "rows_out": model_rows}, key
        assert written[key]["purpose"] == row["purpose"]
        assert written[key]["subject_column"] == row["subject_column"]
        assert written[key]["normalize"] == row["normalize"]
        assert written[key]["target"] == f"{backend.schema}.{key[0].split('/')[0]}"


def test_example_build_keeps_only_consented_subjects_and_logs_the_run(example, capsys) -> None:
    project, backend = example
    run_dbt(project, ["build", *vars_arg(consentgate_as_of=AS_OF)], backend)
    run_id = _invocation_id(project)

    customers, _ = reference_result(backend, "stg_customers", "customer_id", "ad_targeting", None, AS_OF)
    assert customers == {1, 7, 8}  # the demo data's story, see create_demo_sources
    assert {r[0] for r in backend.query("select customer_id from ad_audience")} == customers
    buyers, _ = reference_result(backend, "stg_purchases", "customer_id", "ad_targeting", None, AS_OF)
    assert {r[0] for r in backend.query("select customer_id from ad_lookalike_seed")} == buyers
    visitors, _ = reference_result(backend, "stg_web_events", "customer_id", "ad_targeting", None, AS_OF)
    assert {r[0] for r in backend.query("select customer_id from ad_customer_features")} == visitors
    emails, _ = reference_result(backend, "stg_email_engagement", "email", "email_marketing", "lower", AS_OF)
    assert {r[0] for r in backend.query("select email from email_audience")} == {
        e.strip().lower() for e in emails
    }
    assert {r[0] for r in backend.query("select email from email_audience")} == {
        "ann@example.com",
        "cara@example.com",
    }

    (run,) = run_row(backend, run_id)
    assert run["status"] == "success"
    assert run["trigger"] == "dbt"
    assert run["dbt_invocation_id"] == run_id
    assert run["as_of"] == datetime(2026, 1, 10)
    assert run["consent_table"] == "main.consent_events"
    assert run["consent_events_counted"] == 12  # 14 events, minus one in the future and one recorded late
    assert run["package_version"] == "0.1.0"
    # The same fingerprint as the Python engine computes, so `consentgate verify` can check dbt runs.
    assert (run["consent_fingerprint"], run["consent_events_counted"]) == engine_snapshot(backend)
    assert run["error"] is None
    assert run["started_at"] <= run["finished_at"]
    _compare_lineage(backend, run_id)

    # The Python engine can replay the dbt run from its evidence.
    from consentgate.engine.session import session_for
    from consentgate.evidence.verification import verify_run

    with backend.connect() as con:
        verified = verify_run(session_for(con, "duckdb"), run_id)
    # Clean: no problem, and no warning either (every number means what verify checks it against).
    assert (verified["status"], verified["problems"], verified["warnings"]) == ("verified", [], [])
    assert sorted((d["dataset"], d["status"]) for d in verified["datasets"]) == sorted(
        {
            "ad_audience/stg_customers": "reproduced",
            "ad_audience/stg_web_events": "reproduced",
            "ad_customer_features": "reproduced",
            "ad_lookalike_seed": "reproduced",
            "email_audience": "reproduced",
        }.items()
    )

    # The manifest of a real build carries the compiled consented() comments: the project is covered.
    capsys.readouterr()
    assert coverage_command(project / "target" / "manifest.json", as_json=False) == 0
    assert "4 ad-targeting model(s) checked, 0 violation(s)" in capsys.readouterr().out


def test_rerun_with_the_same_run_id_replaces_that_runs_rows(example) -> None:
    project, backend = example
    _create_evidence_tables(backend)
    others_before = backend.query("select count(*) from consentgate_lineage where run_id <> 'nightly-1'")
    for _ in range(2):
        run_dbt(project, ["run", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="nightly-1")], backend)

    (run,) = run_row(backend, "nightly-1")  # one run row, not two
    assert run["dbt_invocation_id"] == _invocation_id(project)  # the second invocation's
    assert run["trigger"] == "dbt"
    _compare_lineage(backend, "nightly-1")  # one lineage row per call, not two
    assert (
        backend.query("select count(*) from consentgate_lineage where run_id <> 'nightly-1'") == others_before
    )


def test_lineage_joins_a_run_opened_by_airflow_without_overwriting_it(example) -> None:
    project, backend = example
    # Airflow created the evidence tables (the shared DDL) and opened the run before calling dbt.
    _create_evidence_tables(backend)
    backend.execute(
        "insert into consentgate_runs (run_id, started_at, status, as_of, trigger, dag_id, task_id, airflow_run_id, "
        "package_version) values ('af-run-1', timestamp '2026-01-10 00:05:00', 'running', timestamp '2026-01-10', "
        "'airflow', 'consentgate_nightly', 'dbt_build', 'scheduled__2026-01-10T00:00:00+00:00', '0.1.0')"
    )
    backend.execute(
        "insert into consentgate_lineage (run_id, dataset, source, target, purpose, rows_in, rows_out, trigger, "
        "task_id) values ('af-run-1', 'crm_export', 'main.customers', 'main.crm_export', 'ad_targeting', 8, 3, "
        "'airflow', 'enforce_crm_export')"
    )

    for _ in range(2):  # a retried task re-runs dbt with the same run id
        run_dbt(project, ["run", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="af-run-1")], backend)

    (run,) = run_row(backend, "af-run-1")
    assert run["trigger"] == "airflow"
    assert run["status"] == "running"  # Airflow owns the status; dbt does not overwrite it
    assert run["dag_id"] == "consentgate_nightly"
    assert run["task_id"] == "dbt_build"
    assert run["airflow_run_id"] == "scheduled__2026-01-10T00:00:00+00:00"
    assert run["started_at"] == datetime(2026, 1, 10, 0, 5)
    assert run["dbt_invocation_id"] == _invocation_id(project)
    _compare_lineage(backend, "af-run-1")
    assert set(lineage_rows(backend, "af-run-1", trigger="airflow")) == {("crm_export", "customers")}


def test_a_failed_run_is_recorded_as_failed_with_the_failing_node(example) -> None:
    project, backend = example
    broken = project / "models" / "broken.sql"
    broken.write_text("select * from table_that_does_not_exist\n")
    try:
        proc = run_dbt(
            project,
            ["run", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="bad-1")],
            backend,
            ok=False,
        )
    finally:
        broken.unlink()
    assert proc.returncode == 1

    (run,) = run_row(backend, "bad-1")
    assert run["status"] == "failed"
    assert run["error"] == "1 node(s) failed: model.consentgate_integration_tests.broken"
    _compare_lineage(backend, "bad-1")  # the models that did build are still recorded
