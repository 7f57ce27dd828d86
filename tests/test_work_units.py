"""The suite's work units (tests/conftest.py): the long ones the scheduler sends first exist, and the
Spark Connect tests are spread over both Connect units, so that two workers can run them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import conftest

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def _units() -> Counter[str]:
    return Counter(
        conftest._unit(f"{p.relative_to(ROOT).as_posix()}::test") for p in TESTS.rglob("test_*.py")
    )


def test_every_long_unit_the_scheduler_sends_first_is_a_unit_of_the_suite() -> None:
    units = _units()
    missing = [u for u in conftest.LONG_UNITS if u not in units]
    assert not missing, f"LONG_UNITS names no module (renamed?): {missing}"


def test_the_spark_connect_modules_are_split_over_both_connect_units() -> None:
    units = _units()
    assert all(units[u] >= 3 for u in conftest.CONNECT_UNITS), units
    assert conftest._unit("tests/spark/test_spark_thrift.py::t") == conftest.THRIFT_UNIT
    assert conftest._unit("tests/test_engine.py::t") == "tests/test_engine.py"
