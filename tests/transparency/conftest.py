"""Fixtures of the transparency tests: the story's warehouse (see cg_transparency) and its policy file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cg_transparency import build_with_runs, write_policy


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policy.yml")


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """The story's database with runs r1, r2 and r3 recorded."""
    return build_with_runs(tmp_path / "warehouse.duckdb")
