"""`consentgate purposes`: the text a company shows next to an opt-in box, from the policy and dbt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cg_transparency import cg, cg_json

MODELS = {
    "ads_audience.sql": "{{ config(meta={'consentgate': {'ad_targeting': true, 'purpose': 'ad_targeting'}}) }}\n"
    "select 1 as customer_id\n",
    "mail_scores.sql": "select 1 as email\n",
    "lookalikes.sql": "{{ config(meta={'consentgate': {'ad_targeting': true, 'purpose': 'profiling'}}) }}\nselect 1 as k\n",
    "finance.sql": "select 1 as x\n",
    "retargeting.sql": "{{ config(tags=['consentgate_ad_targeting'], meta={'consentgate_purpose': 'ad_targeting'}) }}\n"
    "select 1 as k\n",
    "schema.yml": (
        "models:\n"
        "  - name: mail_scores\n"
        "    description: Scores people for offers by e-mail.\n"
        "    config:\n"
        "      meta:\n"
        "        consentgate: {ad_targeting: true, purpose: ' Email_Marketing '}\n"
        "  - name: finance\n"
        "    config:\n"
        "      meta:\n"
        "        consentgate: {ad_targeting: false, purpose: ad_targeting}\n"
    ),
}


def dbt_manifest(tmp_path: Path) -> Path:
    """A real manifest.json, from `dbt parse` of a tiny project."""
    project = tmp_path / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: tp\nversion: '1.0'\nprofile: tp\n")
    (project / "profiles.yml").write_text(
        f"tp:\n  target: dev\n  outputs:\n    dev: {{type: duckdb, path: '{project / 'x.duckdb'}'}}\n"
    )
    for name, text in MODELS.items():
        (project / "models" / name).write_text(text)
    subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "parse",
            "--profiles-dir",
            str(project),
            "--project-dir",
            str(project),
            "--quiet",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return project / "target" / "manifest.json"


def test_without_a_manifest_each_purpose_lists_its_datasets_and_consented_tables(policy_file: Path) -> None:
    code, out = cg_json("purposes", "--policy", policy_file)
    assert code == 0
    assert out["used_by_source"] == "policy"
    by = {p["name"]: p for p in out["purposes"]}
    assert by["ad_targeting"]["description"] == "We choose the ads you see from what you browse and buy."
    assert [d["source"] for d in by["ad_targeting"]["datasets"]] == ["raw.web"]
    assert [u["name"] for u in by["ad_targeting"]["used_by"]] == ["consented.web"]
    assert [d["name"] for d in by["email_marketing"]["datasets"]] == ["mail"]


def test_with_a_dbt_manifest_ad_targeting_models_are_listed_under_their_purpose(
    tmp_path: Path, policy_file: Path
) -> None:
    manifest = dbt_manifest(tmp_path)
    code, out = cg_json("purposes", "--policy", policy_file, "--manifest", manifest)
    assert code == 0
    assert out["used_by_source"] == "dbt_manifest"
    by = {p["name"]: p for p in out["purposes"]}
    # Marked by meta or by tag: the same definition as `consentgate coverage`.
    assert [(m["name"], m["relation"]) for m in by["ad_targeting"]["used_by"]] == [
        ("ads_audience", "x.main.ads_audience"),
        ("retargeting", "x.main.retargeting"),
    ]
    assert [m["name"] for m in by["email_marketing"]["used_by"]] == ["mail_scores"]
    assert by["email_marketing"]["used_by"][0]["description"] == "Scores people for offers by e-mail."
    # A model using a purpose nobody can opt in to is called out.
    assert out["undeclared_models"] == [{"name": "lookalikes", "purpose": "profiling"}]
    text = cg("purposes", "--policy", policy_file, "--manifest", manifest)
    assert text.returncode == 0
    assert "We send you offers by e-mail." in text.stdout
    assert "Ad-targeting models using it: ads_audience, retargeting." in text.stdout
    assert "lookalikes" in text.stdout and "profiling" in text.stdout


def test_a_bad_manifest_is_one_line(tmp_path: Path, policy_file: Path) -> None:
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    p = cg("purposes", "--policy", policy_file, "--manifest", bad)
    assert p.returncode != 0 and "not valid JSON" in p.stderr and p.stderr.strip().count("\n") == 0
    bad.write_text(json.dumps({"metadata": {}}))
    p = cg("purposes", "--policy", policy_file, "--manifest", bad)
    assert p.returncode != 0 and "no 'nodes'" in p.stderr
    p = cg("purposes", "--policy", tmp_path / "missing.yml")
    assert p.returncode != 0 and "cannot be read" in p.stderr
