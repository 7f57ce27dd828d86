"""The coverage check on the example project with real dbt: `dbt deps` installs the package from
packages.yml (`local: ../`), the compliant project passes, a leaky model is reported with its path by
both forms (the Python check on the manifest of `dbt parse`, and `dbt run-operation check_coverage`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from consentgate.dbt.coverage import coverage_command
from dbt_harness import copy_package, duckdb_backend, run_dbt

pytestmark = pytest.mark.slow

LEAKY_PATH = (
    "model.consentgate_integration_tests.ad_retargeting <- model.consentgate_integration_tests.stg_web_events"
    " <- source.consentgate_integration_tests.marketing.web_events (personal data, purpose ad_targeting):"
    " no consented() call"
)


def test_coverage_passes_for_the_example_and_reports_a_leaky_model(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    project = copy_package(tmp_path / "pkg", install=False)
    backend = duckdb_backend(tmp_path / "coverage.duckdb")
    run_dbt(project, ["deps"], backend)
    assert (project / "dbt_packages" / "consentgate" / "dbt_project.yml").exists()

    ok = run_dbt(project, ["run-operation", "check_coverage"], backend)
    assert "4 ad-targeting model(s) checked, 0 violation(s)" in ok.stdout

    # An ad-targeting model that joins the audience to raw web events without consented().
    (project / "models" / "ad_targeting" / "ad_retargeting.sql").write_text(
        "{{ config(meta={'consentgate': {'ad_targeting': true, 'purpose': 'ad_targeting'}}) }}\n"
        "select a.customer_id, w.page\nfrom {{ ref('ad_audience') }} as a\n"
        "join {{ ref('stg_web_events') }} as w on w.customer_id = a.customer_id\n"
    )
    run_dbt(project, ["parse"], backend)
    capsys.readouterr()
    assert coverage_command(project / "target" / "manifest.json", as_json=False) == 1
    assert capsys.readouterr().out.splitlines() == [
        LEAKY_PATH,
        "consentgate coverage: 5 ad-targeting model(s) checked, 1 violation(s)",
    ]

    failed = run_dbt(project, ["run-operation", "check_coverage"], backend, ok=False)
    assert failed.returncode == 1
    assert LEAKY_PATH in failed.stdout
    assert "consentgate coverage: 1 violation(s)" in failed.stdout


def test_a_consented_call_for_the_wrong_purpose_is_reported_naming_the_purpose_found(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    project = copy_package(tmp_path / "pkg", install=False)
    backend = duckdb_backend(tmp_path / "coverage.duckdb")
    run_dbt(project, ["deps"], backend)
    (project / "models" / "ad_targeting" / "ad_wrong_purpose.sql").write_text(
        "{{ config(meta={'consentgate': {'ad_targeting': true, 'purpose': 'ad_targeting'}}) }}\n"
        "select * from ({{ consentgate.consented(ref('stg_web_events'), 'customer_id', 'email_marketing') }}) as w\n"
    )
    prefix = "model.consentgate_integration_tests."
    expected = (
        f"{prefix}ad_wrong_purpose <- {prefix}stg_web_events <- source.consentgate_integration_tests.marketing.web_events"
        " (personal data, purpose ad_targeting): no consented() call for 'ad_targeting'"
        f" ({prefix}ad_wrong_purpose calls consented() for 'email_marketing')"
    )
    run_dbt(project, ["parse"], backend)
    capsys.readouterr()
    assert coverage_command(project / "target" / "manifest.json", as_json=False) == 1
    assert expected in capsys.readouterr().out.splitlines()
    failed = run_dbt(project, ["run-operation", "check_coverage"], backend, ok=False)
    assert failed.returncode == 1 and expected in failed.stdout
