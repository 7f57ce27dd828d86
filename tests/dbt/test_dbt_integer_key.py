"""integer_key() gives an integer exactly when the subject key is that integer's canonical text.

The purge probes an integer subject column with these integers instead of comparing text, so any
difference would purge the wrong subject (a withdrawn '-0' deleting subject 0) or miss one (a 19-digit
id). Compiled by dbt from the package's macro and evaluated on DuckDB and on a real PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_harness import Backend, copy_package, duckdb_backend, postgres_backend, run_dbt

KEYS = [
    "0",
    "-0",
    "42",
    "-42",
    "042",
    "+42",
    " 42",
    "42 ",
    "\u00a042",
    "4.0",
    "",
    "1e3",
    "1234567890123456789",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
]


def _check(tmp_path: Path, backend: Backend) -> None:
    project = copy_package(tmp_path / "pkg")
    sql = run_dbt(
        project, ["--quiet", "compile", "--inline", "{{ consentgate.integer_key('k', 'bigint') }}"], backend
    ).stdout.strip()
    backend.execute("create table keys_under_test (k varchar)")
    backend.executemany(
        "insert into keys_under_test values (%s)"
        if backend.name == "postgres"
        else "insert into keys_under_test values (?)",
        [(k,) for k in KEYS],
    )
    got = dict(backend.query(f"select k, {sql} from keys_under_test"))
    expected = {
        k: int(k) if k == str(int(k)) and -(2**63) <= int(k) < 2**63 else None for k in KEYS if _is_int(k)
    }
    expected |= {k: None for k in KEYS if not _is_int(k)}
    assert got == expected


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@pytest.mark.slow
def test_integer_key_on_duckdb(tmp_path: Path) -> None:
    _check(tmp_path, duckdb_backend(tmp_path / "keys.duckdb"))


@pytest.mark.slow
@pytest.mark.postgres
def test_integer_key_on_postgres(tmp_path: Path, pg_db) -> None:  # noqa: ANN001
    _check(tmp_path, postgres_backend(pg_db, schema="public"))
