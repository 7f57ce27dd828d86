"""log_lineage composes: many dbt invocations of one run (one per model, as astronomer-cosmos runs them;
in any order; in parallel on PostgreSQL) leave exactly the evidence one `dbt build` leaves, a failure is
never turned back into success, and an invocation with nothing consent-related to record writes no run.

Real dbt subprocesses on the example project (dbt_project/integration_tests) with the demo sources."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dbt_harness import DBT, Backend, add_forget_cached_hook, run_dbt, vars_arg
from example_expectations import AS_OF, run_row

pytestmark = pytest.mark.slow

# What may differ between two runs of the same work: which invocation wrote it, and when.
RUN_VARYING = {"run_id", "started_at", "finished_at", "dbt_invocation_id"}
LINEAGE_VARYING = {"run_id", "started_at", "finished_at"}


def _dicts(backend: Backend, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    p = "%s" if backend.name == "postgres" else "?"
    with backend.connect() as con:
        cur = con.cursor()
        cur.execute(sql.replace("?", p), params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def evidence(backend: Backend, run_id: str) -> dict[str, Any]:
    """A run's record and lineage rows, without what says which invocation wrote them and when."""
    runs = _dicts(backend, "select * from consentgate_runs where run_id = ?", [run_id])
    assert len(runs) == 1, f"run {run_id}: {len(runs)} run rows"
    lineage = _dicts(backend, "select * from consentgate_lineage where run_id = ? order by dataset", [run_id])
    return {
        "run": {k: v for k, v in runs[0].items() if k not in RUN_VARYING},
        "lineage": {r["dataset"]: {k: v for k, v in r.items() if k not in LINEAGE_VARYING} for r in lineage},
    }


def no_run(backend: Backend, run_id: str) -> bool:
    """True when nothing was recorded for run_id (not even the evidence tables exist, or no row)."""
    tables = backend.query(
        "select count(*) from information_schema.tables where table_name = 'consentgate_runs'"
    )[0][0]
    return not tables or run_row(backend, run_id) == []


def gated_models(project: Path) -> list[str]:
    """The models that call consented(), from the manifest of the last invocation."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    return sorted(
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and "macro.consentgate.consented" in n["depends_on"]["macros"]
    )


def build_one(project: Path, backend: Backend, run_id: str) -> None:
    run_dbt(project, ["build", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id=run_id)], backend)


def build_staging(project: Path, backend: Backend, run_id: str, models: list[str]) -> None:
    """Everything but the gated models, as cosmos' upstream tasks would: nothing to record."""
    args = ["build", "--exclude", *models, *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id=run_id)]
    run_dbt(project, args, backend)
    assert no_run(backend, run_id)


def _dbt_cmd(project: Path, model: str, run_id: str, **extra: Any) -> list[str]:
    target = project / f"target_{model}"  # parallel invocations must not share target/ or logs/
    return [
        DBT, "build", "--select", model, "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(target), "--log-path", str(project / f"logs_{model}"),
        *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id=run_id, **extra),
    ]  # fmt: skip


def _env(backend: Backend) -> dict[str, str]:
    return {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false", **backend.env}


def _check_same(backend: Backend, one: str, many: str, models: list[str]) -> None:
    expected, got = evidence(backend, one), evidence(backend, many)
    assert got == expected
    assert got["run"]["status"] == "success" and got["run"]["error"] is None
    assert {d.split("/")[0] for d in got["lineage"]} == set(models)  # a row for every gated model
    assert json.loads(got["run"]["planned_datasets"]) == sorted(got["lineage"])  # and each was planned


def test_per_model_invocations_in_any_order_give_the_evidence_of_one_build(example_duckdb) -> None:
    project, backend = example_duckdb
    build_one(project, backend, "one")
    models = gated_models(project)
    assert len(models) >= 4
    build_staging(project, backend, "many", models)
    order = models[:]
    random.Random(13).shuffle(order)
    for model in order:
        subprocess.run(_dbt_cmd(project, model, "many"), env=_env(backend), check=True, capture_output=True)
    _check_same(backend, "one", "many", models)

    from consentgate.engine.session import session_for
    from consentgate.evidence.verification import verify_run

    with backend.connect() as con:
        result = verify_run(session_for(con, "duckdb"), "many")
    assert (result["status"], result["problems"], result["warnings"]) == ("verified", [], [])


@pytest.mark.postgres
def test_parallel_per_model_invocations_on_postgres_give_the_evidence_of_one_build(example_postgres) -> None:
    project, backend = example_postgres
    build_one(project, backend, "one")
    models = gated_models(project)
    build_staging(project, backend, "many", models)
    for _round in range(2):  # twice: the second round replaces the first round's rows, never adds
        procs = [
            subprocess.Popen(
                _dbt_cmd(project, m, "many"),
                env=_env(backend),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for m in models
        ]
        outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
        for proc, out in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, out[-4000:]
        _check_same(backend, "one", "many", models)


def test_a_failing_consent_test_keeps_the_run_failed_after_later_successes(example_duckdb) -> None:
    project, backend = example_duckdb
    build_one(project, backend, "base")
    models = gated_models(project)
    ok = [m for m in models if m != "ad_audience"]
    build_staging(project, backend, "planted", models)
    run_dbt(
        project,
        [
            "build",
            "--select",
            "ad_audience",
            *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="planted"),
        ],
        backend,
    )
    # A violation planted after the build: customer 2 has no consent for ad targeting.
    backend.execute(
        "insert into ad_audience (customer_id, email, country, page_views) values (2, null, 'FR', 0)"
    )
    test = run_dbt(
        project,
        ["test", "--select", "ad_audience", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="planted")],
        backend,
        ok=False,
    )
    assert test.returncode == 1
    (run,) = run_row(backend, "planted")
    assert run["status"] == "failed"
    assert run["error"].startswith(
        "1 node(s) failed: test.consentgate_integration_tests.consentgate_only_consented"
    )
    for model in ok:  # later invocations of the same run succeed; the failure stays
        run_dbt(
            project,
            ["build", "--select", model, *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="planted")],
            backend,
        )
        (run,) = run_row(backend, "planted")
        assert run["status"] == "failed"
    assert run["error"].startswith(
        "1 node(s) failed: test.consentgate_integration_tests.consentgate_only_consented"
    )
    assert {d.split("/")[0] for d in evidence(backend, "planted")["lineage"]} == set(models)


def _check_cache_lost(project: Path, backend: Backend) -> None:
    build_one(project, backend, "one")
    add_forget_cached_hook(project)
    args = ["build", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="forgotten", forget_cached=True)]
    out = run_dbt(project, args, backend).stdout
    assert "forget_cached: forgot " in out and "consent_events" in out.split("forget_cached: forgot ")[1]
    assert evidence(backend, "forgotten") == evidence(backend, "one")


def test_the_evidence_holds_when_the_relation_cache_has_lost_the_relations(example_duckdb) -> None:
    """dbt's relation cache is filled when an invocation starts and can say that a relation that exists
    does not (created by another process since; on dbt-spark, a schema listed while a concurrent
    invocation dropped a relation): log_lineage asks the database, and records the same counts."""
    _check_cache_lost(*example_duckdb)


@pytest.mark.postgres
def test_the_evidence_holds_on_postgres_when_the_relation_cache_has_lost_the_relations(
    example_postgres,
) -> None:
    _check_cache_lost(*example_postgres)


def test_an_invocation_with_nothing_to_record_writes_no_run(example_duckdb) -> None:
    project, backend = example_duckdb
    run_dbt(
        project,
        ["run", "--select", "staging", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="stg")],
        backend,
    )
    assert no_run(backend, "stg")
    # A failing node is recorded even when it is not a gated model: one `dbt build` would be failed too.
    (project / "models" / "broken.sql").write_text("select * from table_that_does_not_exist\n")
    proc = run_dbt(
        project,
        ["run", "--select", "broken", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="stg")],
        backend,
        ok=False,
    )
    assert proc.returncode == 1
    (run,) = run_row(backend, "stg")
    assert (run["status"], run["error"]) == (
        "failed",
        "1 node(s) failed: model.consentgate_integration_tests.broken",
    )


def test_invocations_of_one_run_with_different_cut_offs_fail_the_run(example_duckdb) -> None:
    project, backend = example_duckdb
    run_dbt(project, ["run", "--select", "staging"], backend)
    run_dbt(
        project,
        ["run", "--select", "ad_audience", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id="cut")],
        backend,
    )
    before = evidence(backend, "cut")["lineage"]
    proc = run_dbt(
        project,
        [
            "run",
            "--select",
            "ad_lookalike_seed",
            *vars_arg(consentgate_as_of="2026-01-11T00:00:00", consentgate_run_id="cut"),
        ],
        backend,
        ok=False,
    )
    assert proc.returncode != 0
    assert "used cut-off 2026-01-11 00:00:00.000000, not the run's" in proc.stdout
    (run,) = run_row(backend, "cut")
    assert run["status"] == "failed"
    assert "not the run's: pass the same consentgate_as_of to every invocation of a run" in run["error"]
    assert evidence(backend, "cut")["lineage"] == before  # nothing of the other cut-off was recorded
