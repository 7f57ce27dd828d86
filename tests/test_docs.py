"""Docs are part of the work: every command, macro and operator a user can reach is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DBT_DOC = (ROOT / "docs" / "dbt.md").read_text()
AIRFLOW_DOC = (ROOT / "docs" / "airflow.md").read_text()


def _commands() -> list[str]:
    from consentgate.cli.app import app

    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def _public_macros() -> list[str]:
    names = set()
    for path in (ROOT / "dbt_project" / "macros").rglob("*.sql"):
        names.update(re.findall(r"{%-?\s*macro\s+([a-z][a-z0-9_]*)\s*\(", path.read_text()))
    return sorted(n for n in names if "__" not in n)


def _operators() -> list[str]:
    source = (ROOT / "plugins" / "consentgate" / "airflow" / "operators.py").read_text()
    return sorted(re.findall(r"^class (\w+Operator)\(", source, re.M))


@pytest.mark.parametrize("command", _commands())
def test_every_cli_command_is_in_the_readme(command: str) -> None:
    assert f"consentgate {command}" in README


@pytest.mark.parametrize("macro", _public_macros())
def test_every_public_macro_is_documented(macro: str) -> None:
    assert macro in DBT_DOC, f"macro {macro} is not described in docs/dbt.md"


@pytest.mark.parametrize("operator", _operators())
def test_every_operator_is_documented(operator: str) -> None:
    assert operator in README and operator in AIRFLOW_DOC


def test_readme_states_the_two_commands_and_ci_runs_the_test_one() -> None:
    assert "./scripts/nightly.sh" in README and "./scripts/test.sh" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec ./scripts/test.sh" in ci


def test_the_decision_rule_is_documented_with_every_reason() -> None:
    semantics = (ROOT / "docs" / "semantics.md").read_text()
    from consentgate.rule.semantics import REASONS

    for reason in REASONS:
        assert f"`{reason}`" in semantics
