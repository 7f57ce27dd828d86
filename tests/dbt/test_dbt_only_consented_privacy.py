"""`dbt build --store-failures` with the only_consented test stores no personal data (issue #9, part 3).

The test used to return every violating row, so dbt copied the rows (e-mail addresses included) of the
people who did not consent into the `dbt_test__audit` schema. It now fails with one row per exclusion
reason and a count: what an auditor needs, nothing that identifies a person. Run for real on DuckDB and
on PostgreSQL, with a marker value in every column of the tested model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dbt_harness import Backend, duckdb_backend, link_package, postgres_backend, run_dbt

pytestmark = pytest.mark.slow

MARKER = "MARKER-7f3a@leak.test"
# (key, consent events): p1 consented, p2 never asked, p3 and p4 withdrew, p5 denied.
PEOPLE = {
    "p1": [("granted", "2026-01-01")],
    "p2": [],
    "p3": [("granted", "2026-01-01"), ("withdrawn", "2026-02-01")],
    "p4": [("granted", "2026-01-01"), ("withdrawn", "2026-02-02")],
    "p5": [("denied", "2026-01-01")],
}
EXPECTED = {"no_consent": 1, "withdrawn": 2, "denied": 1}


def key(person: str) -> str:
    return f"{person}.{MARKER}"


def _load(backend: Backend, only: set[str] | None = None) -> None:
    ph = "%s" if backend.name == "postgres" else "?"
    text = "text" if backend.name == "postgres" else "varchar"
    backend.execute(
        f"create table consent_log (subject_id {text}, purpose {text}, status {text}, event_ts timestamp, "
        f"recorded_at timestamp, expires_at timestamp, source {text}, policy_version {text})"
    )
    backend.execute(f"create table people (customer_id {text}, email {text}, note {text})")
    events = [
        (key(p), "ad_targeting", status, ts, None, None, MARKER, MARKER)
        for p, history in PEOPLE.items()
        for status, ts in history
    ]
    backend.executemany(f"insert into consent_log values ({', '.join([ph] * 8)})", events)
    chosen = [p for p in PEOPLE if only is None or p in only]
    backend.executemany(
        f"insert into people values ({ph}, {ph}, {ph})", [(key(p), f"{p}@{MARKER}", MARKER) for p in chosen]
    )


def _project(project: Path, backend: Backend) -> None:
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: cg_privacy\nversion: '1.0'\nconfig-version: 2\nprofile: cg_privacy\n"
        "models:\n  cg_privacy:\n    +materialized: table\n"
    )
    outputs = {
        "duckdb": {"type": "duckdb", "path": backend.env.get("CONSENTGATE_DUCKDB", "x"), "schema": "main"},
        "postgres": {
            "type": "postgres",
            "host": backend.env.get("CONSENTGATE_PG_HOST", ""),
            "port": int(backend.env.get("CONSENTGATE_PG_PORT", "0")),
            "user": backend.env.get("CONSENTGATE_PG_USER", ""),
            "password": "",
            "dbname": backend.env.get("CONSENTGATE_PG_DBNAME", ""),
            "schema": backend.schema,
        },
    }
    (project / "profiles.yml").write_text(
        yaml.safe_dump(
            {"cg_privacy": {"target": backend.name, "outputs": {backend.name: outputs[backend.name]}}}
        )
    )
    link_package(project)
    (project / "models" / "ad_people.sql").write_text("select * from {{ source('crm', 'people') }}\n")
    test = {
        "consentgate.only_consented": {
            "arguments": {
                "purpose": "ad_targeting",
                "as_of": "2026-03-01T00:00:00",
                "consent_relation": f"{backend.schema}.consent_log",
            }
        }
    }
    (project / "models" / "schema.yml").write_text(
        yaml.safe_dump(
            {
                "version": 2,
                "sources": [
                    {
                        "name": "crm",
                        "schema": backend.schema,
                        "tables": [{"name": "people"}, {"name": "consent_log"}],
                    }
                ],
                "models": [{"name": "ad_people", "columns": [{"name": "customer_id", "data_tests": [test]}]}],
            }
        )
    )


def _stored_failures(backend: Backend) -> list[tuple]:
    ph = "%s" if backend.name == "postgres" else "?"
    audit = f"{backend.schema}_dbt_test__audit"
    tables = [
        r[0]
        for r in backend.query(
            f"select table_name from information_schema.tables where table_schema = {ph}", [audit]
        )
    ]
    assert len(tables) == 1, tables
    return backend.query(f"select * from {audit}.{tables[0]}")


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "duckdb":
        return duckdb_backend(tmp_path / "privacy.duckdb")
    backend = postgres_backend(request.getfixturevalue("pg_db"), schema="crm")
    backend.execute("create schema crm")
    return backend


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request, tmp_path)


def test_stored_failures_are_counts_per_reason_with_no_personal_data(
    tmp_path: Path, backend: Backend
) -> None:
    _load(backend)
    project = tmp_path / "project"
    _project(project, backend)
    proc = run_dbt(project, ["build", "--store-failures"], backend, ok=False)
    assert proc.returncode == 1, proc.stdout[-4000:]
    assert "Got 4 results, configured to fail if != 0" in proc.stdout  # one per violating row
    assert MARKER not in proc.stdout + proc.stderr
    stored = _stored_failures(backend)
    assert MARKER not in str(stored)
    by_reason = {row[3]: int(row[4]) for row in stored}  # subject_column, purpose, as_of, reason, rows
    assert by_reason == EXPECTED
    assert {row[:2] for row in stored} == {("customer_id", "ad_targeting")}


def test_the_test_passes_when_everyone_consented(tmp_path: Path, backend: Backend) -> None:
    _load(backend, only={"p1"})
    project = tmp_path / "project"
    _project(project, backend)
    proc = run_dbt(project, ["build", "--store-failures"], backend)
    assert MARKER not in proc.stdout
    assert _stored_failures(backend) == []
