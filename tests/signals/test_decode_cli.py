"""`consentgate decode`: the CLI contract (kinds, --json lines in input order, stdin, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from consentgate.cli.app import app
from tcbits import disclosed, tc
from typer.testing import CliRunner

EXE = str(Path(sys.executable).with_name("consentgate"))
GOOD_TC = tc(None, disclosed([1, 2]))
GLOBAL_TC = tc(None, disclosed([1]), service_specific=False)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "decode", *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_json_gives_one_object_per_input_in_input_order() -> None:
    result = run("--json", GOOD_TC, "1YNN", GLOBAL_TC)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["kind"] for line in lines] == ["tcf", "uspv1", "tcf"]
    assert lines[0]["not_consent"] == [] and lines[0]["fields"]["vendorConsents"] == [1, 2]
    assert lines[0]["fields"]["created"] == "2023-11-14T22:13:20.000Z"
    assert lines[2]["not_consent"] == ["not_service_specific"]
    assert set(lines[1]) == {"kind", "fields", "not_consent"}


def test_a_bad_input_gives_an_error_line_in_place_and_exit_code_1() -> None:
    bad = "CPc2LgAPc2LgAFx%3D" + "A" * 60
    result = run("--json", "1YNN", bad, "1")
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["kind"] for line in lines] == ["uspv1", "tcf", "gpc"]
    assert set(lines[1]) == {"kind", "error"}
    assert "not base64url" in lines[1]["error"] and "\n" not in lines[1]["error"]
    assert bad not in result.stdout + result.stderr


def test_dash_reads_one_string_a_line_from_stdin() -> None:
    result = run("--json", "--kind", "uspv1", "-", stdin="1YNN\n1YYN\n\n1NNN\n")
    assert result.returncode == 0
    assert [json.loads(x)["fields"]["OptOutSale"] for x in result.stdout.splitlines()] == ["N", "Y", "N"]


def test_a_single_gpp_section_is_given_under_its_api_prefix() -> None:
    usca = "BVoAAAJA.YA"
    result = run("--json", "--kind", "usca", usca)
    line = json.loads(result.stdout)
    assert set(line["fields"]) == {"usca"} and "SaleOptOut" in line["fields"]["usca"]


def test_readable_summary_names_the_verdict_and_fields() -> None:
    result = run(GLOBAL_TC)
    assert result.returncode == 0
    assert "tcf: NOT consent: not_service_specific" in result.stdout
    assert "isServiceSpecific: False" in result.stdout


def test_readable_errors_go_to_stderr_with_the_input_number() -> None:
    result = run("--kind", "uspv1", "1YNN", "2YNN")
    assert result.returncode == 1
    assert "input 2: US Privacy string: unknown version '2'" in result.stderr


def test_unknown_kind_is_a_usage_error() -> None:
    result = run("--kind", "tcf3", "1YNN")
    assert result.returncode == 2 and "unknown --kind 'tcf3'" in result.stderr


@pytest.mark.parametrize(
    "kind", ["tcf", "gpp", "uspv1", "gpp-header", "usnat", "usca", "usva", "usco", "usut", "usct"]
)
def test_every_contract_kind_is_accepted(kind: str) -> None:
    result = CliRunner().invoke(app, ["decode", "--json", "--kind", kind, "x"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["kind"] == kind


def test_cli_runner_on_the_app_decodes_gpc() -> None:
    result = CliRunner().invoke(app, ["decode", "--json", "1"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "kind": "gpc",
        "fields": {"Gpc": True},
        "not_consent": ["opt_out_framework", "gpc_opt_out"],
    }
