"""Bad macro arguments fail at compile time (already at `dbt parse`) with a message naming the macro,
the argument and the value received."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dbt_harness import duckdb_backend, link_package

GOOD = "{{ consentgate.consented(ref('rows'), 'subject', 'ad_targeting') }}"
BAD: dict[str, tuple[str, str]] = {
    "missing_purpose": (
        "{{ consentgate.consented(ref('rows'), 'subject') }}",
        "consentgate.consented: argument 'purpose' is required: a non-blank purpose such as ad_targeting; "
        "got nothing (the argument is missing)",
    ),
    "blank_purpose_in_purge_hook": (
        "{{ config(materialized='incremental', post_hook=\"{{ consentgate.purge_withdrawn('  ', 'subject') }}\") }}"
        "\nselect 1 as subject",
        "consentgate.purge_withdrawn: argument 'purpose' is required: a non-blank purpose such as ad_targeting; "
        "got '  '",
    ),
    "relation_is_a_string": (
        "{{ consentgate.consented('rows', 'subject', 'ad_targeting') }}",
        "consentgate.consented: argument 'relation' must be a Relation, e.g. ref(...) or source(...); got 'rows'",
    ),
    "unknown_normalisation": (
        "{{ consentgate.consent_counts(ref('rows'), 'subject', 'ad_targeting', normalize='upper') }}",
        "consentgate.consent_counts: argument 'normalize' must be none or 'lower'; got 'upper'",
    ),
    "missing_subject_column": (
        "{{ consentgate.consented(ref('rows'), none, 'ad_targeting') }}",
        "consentgate.consented: argument 'subject_column' is required: the column holding the subject id; got none",
    ),
    "unparseable_as_of": (
        "{{ consentgate.consented(ref('rows'), 'subject', 'ad_targeting', as_of='last tuesday') }}",
        "consentgate.consented: argument 'as_of' must be an ISO-8601 timestamp such as 2026-01-10T00:00:00; "
        "got 'last tuesday'",
    ),
}


def _project(base: Path, bad_sql: str) -> Path:
    project = base
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: errors\nversion: '1.0'\nconfig-version: 2\nprofile: errors\n"
    )
    (project / "profiles.yml").write_text(
        "errors:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        "      path: \"{{ env_var('CONSENTGATE_DUCKDB') }}\"\n      threads: 1\n"
    )
    (project / "models" / "rows.sql").write_text("select 1 as row_id, 'a' as subject\n")
    (project / "models" / "good.sql").write_text(GOOD + "\n")
    (project / "models" / "bad.sql").write_text(bad_sql + "\n")
    link_package(project)
    return project


@pytest.fixture(scope="module")
def parse_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """`dbt parse` of one small project per bad call, all in one dbt process (dbt_parse_many.py)."""
    base = tmp_path_factory.mktemp("compile_errors")
    projects = {name: _project(base / name, sql) for name, (sql, _) in BAD.items()}
    projects["control"] = _project(base / "control", GOOD)  # the same project with a good call parses
    env = {
        **os.environ,
        **duckdb_backend(base / "unused.duckdb").env,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("dbt_parse_many.py")), *map(str, projects.values())],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    by_dir = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: by_dir[str(project)] for name, project in projects.items()}


def test_the_same_project_with_good_calls_parses(parse_results: dict[str, dict[str, object]]) -> None:
    assert parse_results["control"] == {"success": True, "error": ""}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments_fail_the_parse_with_a_message_naming_macro_argument_and_value(
    parse_results: dict[str, dict[str, object]], name: str
) -> None:
    result = parse_results[name]
    assert result["success"] is False
    assert "Compilation Error in model bad (models/bad.sql)" in str(result["error"])
    assert BAD[name][1] in str(result["error"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "sql", "on_run_end", "message"),
    [
        (
            "purge_hook_on_a_table",
            "{{ config(materialized='table', post_hook=\"{{ consentgate.purge_withdrawn('ad_targeting', 'subject') }}\") }}"
            "\nselect 1 as subject",
            None,
            "consentgate.purge_withdrawn: is a post-hook for incremental models; model bad is materialized as table",
        ),
        (
            "subject_column_not_in_the_relation",
            "{{ consentgate.consented(ref('rows'), 'customer_id', 'ad_targeting') }}",
            None,
            "consentgate.consented: argument 'subject_column' is not a column of",
        ),
        (
            "log_lineage_without_results",
            "select 1 as subject",
            "{{ consentgate.log_lineage() }}",
            "consentgate.log_lineage: argument 'results' is required",
        ),
    ],
)
def test_misuse_that_only_a_run_can_see_fails_naming_it(
    tmp_path: Path, name: str, sql: str, on_run_end: str | None, message: str
) -> None:
    """purge_withdrawn on a non-incremental model would silently do nothing, and log_lineage() without
    `results` would record a successful run with no rows: both fail the dbt run instead."""
    project = _project(tmp_path / name, sql)
    if on_run_end:
        with (project / "dbt_project.yml").open("a") as f:
            f.write(f"on-run-end: [{json.dumps(on_run_end)}]\n")
    env = {
        **os.environ,
        **duckdb_backend(tmp_path / "w.duckdb").env,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [
            str(dbt),
            "run",
            "--select",
            "rows",
            "bad",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    assert message in proc.stdout
