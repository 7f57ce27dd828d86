"""Purposes are declared once (var consentgate_purposes): a call for an undeclared purpose, e.g. a typo,
is a compile error naming it and the declared ones, instead of a model that silently keeps 0 rows.
Without a declaration nothing can be checked and consented() warns. Real dbt subprocesses (DuckDB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dbt_harness import duckdb_backend, link_package, run_dbt

pytestmark = pytest.mark.slow

DECLARED = "consentgate.consented: argument 'purpose' is not a declared purpose (var consentgate_purposes: "
POLICY_STYLE = [
    {"name": "ad_targeting", "description": "Ads on other sites, chosen from what you browse."},
    {"name": "email_marketing", "description": "Offers by e-mail."},
]


def _project(base: Path, model_sql: str, purposes: Any = None, schema_yml: str = "") -> Path:
    (base / "models").mkdir(parents=True)
    config = "name: purposes\nversion: '1.0'\nconfig-version: 2\nprofile: purposes\n"
    if purposes is not None:
        config += f"vars:\n  consentgate_purposes: {json.dumps(purposes)}\n"
    (base / "dbt_project.yml").write_text(config)
    (base / "profiles.yml").write_text(
        "purposes:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        "      path: \"{{ env_var('CONSENTGATE_DUCKDB') }}\"\n      threads: 1\n"
    )
    (base / "models" / "rows.sql").write_text("select 1 as row_id, '1' as subject\n")
    (base / "models" / "gated.sql").write_text(model_sql + "\n")
    if schema_yml:
        (base / "models" / "schema.yml").write_text(schema_yml)
    link_package(base)
    return base


def _compile(tmp_path: Path, project: Path) -> Any:
    backend = duckdb_backend(tmp_path / "w.duckdb")
    backend.execute(
        "create table consent_events (subject_id varchar, purpose varchar, status varchar, event_ts timestamp, "
        "recorded_at timestamp, expires_at timestamp, source varchar, policy_version varchar)"
    )
    return run_dbt(project, ["compile"], backend, ok=False)


@pytest.mark.parametrize(
    ("purposes", "shown"),
    [
        (["ad_targeting", "email_marketing"], "ad_targeting, email_marketing"),
        (POLICY_STYLE, "ad_targeting, email_marketing"),  # a policy file's `purposes:` pasted as it is
        ({"Email_Marketing": "Offers by e-mail.", "ad_targeting": "Ads."}, "ad_targeting, email_marketing"),
        ([], "none declared"),
    ],
    ids=["names", "policy_style", "mapping", "empty"],
)
def test_an_undeclared_purpose_fails_the_compile_naming_it_and_the_declared_ones(
    tmp_path: Path, purposes: Any, shown: str
) -> None:
    project = _project(
        tmp_path / "p", "{{ consentgate.consented(ref('rows'), 'subject', 'ad_targetting') }}", purposes
    )
    proc = _compile(tmp_path, project)
    assert proc.returncode != 0
    assert "Compilation Error in model gated (models/gated.sql)" in proc.stdout
    assert f"{DECLARED}{shown}); got 'ad_targetting'" in proc.stdout


def test_a_declared_purpose_compiles_and_matches_as_the_rule_does(tmp_path: Path) -> None:
    """Declared names and calls are compared trimmed and A-Z case-insensitively, like consent events."""
    project = _project(
        tmp_path / "p", "{{ consentgate.consented(ref('rows'), 'subject', ' AD_targeting ') }}", POLICY_STYLE
    )
    proc = _compile(tmp_path, project)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "cannot be checked" not in proc.stdout


@pytest.mark.parametrize(
    ("sql", "schema_yml", "where"),
    [
        (
            "{{ consentgate.consent_counts(ref('rows'), 'subject', 'emial_marketing') }}",
            "",
            "consentgate.consent_counts: argument 'purpose'",
        ),
        (
            "select * from {{ ref('rows') }}",
            "version: 2\nmodels:\n  - name: gated\n    columns:\n      - name: subject\n        data_tests:\n"
            "          - consentgate.only_consented:\n              arguments:\n                purpose: emial_marketing\n",
            "consentgate.only_consented: argument 'purpose'",
        ),
        (
            "{{ config(materialized='incremental', post_hook=\"{{ consentgate.purge_withdrawn('emial_marketing', "
            "'subject') }}\") }}\nselect * from {{ ref('rows') }}",
            "",
            "consentgate.purge_withdrawn: argument 'purpose'",
        ),
    ],
    ids=["consent_counts", "only_consented_test", "purge_withdrawn"],
)
def test_every_macro_taking_a_purpose_checks_it(
    tmp_path: Path, sql: str, schema_yml: str, where: str
) -> None:
    project = _project(tmp_path / "p", sql, ["ad_targeting", "email_marketing"], schema_yml)
    proc = _compile(tmp_path, project)
    assert proc.returncode != 0
    assert (
        f"{where} is not a declared purpose (var consentgate_purposes: ad_targeting, email_marketing); "
        "got 'emial_marketing'"
    ) in proc.stdout


def test_without_declared_purposes_consented_warns_and_still_fails_closed(tmp_path: Path) -> None:
    """No declaration: the call compiles (existing projects keep working) with a warning naming the var;
    the unknown purpose matches no consent event, so the model keeps no row."""
    project = _project(tmp_path / "p", "{{ consentgate.consented(ref('rows'), 'subject', 'ad_targetting') }}")
    proc = _compile(tmp_path, project)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (
        "consentgate.consented: purpose 'ad_targetting' cannot be checked: no purposes are declared; "
        "declare them in var consentgate_purposes"
    ) in proc.stdout
    backend = duckdb_backend(tmp_path / "w.duckdb")
    run_dbt(project, ["run"], backend)
    assert backend.query("select count(*) from gated")[0][0] == 0
    strict = run_dbt(project, ["--warn-error", "compile"], backend, ok=False)
    assert strict.returncode != 0  # teams that want it strict without declaring: --warn-error


def test_a_malformed_declaration_fails_naming_the_accepted_forms(tmp_path: Path) -> None:
    project = _project(
        tmp_path / "p", "{{ consentgate.consented(ref('rows'), 'subject', 'ad_targeting') }}", "ad_targeting"
    )
    proc = _compile(tmp_path, project)
    assert proc.returncode != 0
    assert (
        "consentgate: var 'consentgate_purposes' must be a list of purpose names, a list of {name, description} "
        "or a mapping of names to descriptions; got: ad_targeting"
    ) in proc.stdout
