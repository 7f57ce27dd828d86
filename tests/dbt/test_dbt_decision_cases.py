"""Every shared decision case (tests/cases/decision_cases.yaml) through the dbt macros, on DuckDB and on
a real PostgreSQL server, checked against the case's expectations and against tests/reference.py.

One dbt invocation per backend evaluates all cases: each case gets its own rows and events tables,
one model unions consented() over all cases, one unions consent_counts(), and an only_consented test
per case stores its failures (a count per exclusion reason) in a table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import reference
import yaml
from dbt_harness import Backend, duckdb_backend, fresh_pg_database, link_package, postgres_backend, run_dbt

CASES_FILE = Path(__file__).resolve().parents[1] / "cases" / "decision_cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text())["cases"]
REASONS = reference.REASONS

# A dbt-only case on top of the shared ones: timestamptz consent columns and an as_of with an offset,
# evaluated with a non-UTC session time zone. Instants are normalised to naive UTC (docs/semantics.md).
_UTC = UTC
_PLUS2 = timezone(timedelta(hours=2))
_MINUS5 = timezone(timedelta(hours=-5))
TZ_EVENTS = [
    ["a", "ad_targeting", "granted", datetime(2026, 1, 1, tzinfo=_UTC), None, None],
    ["a", "ad_targeting", "withdrawn", datetime(2026, 1, 10, 1, 0, tzinfo=_PLUS2), None, None],  # 23:00 UTC
    [
        "b",
        "ad_targeting",
        "granted",
        datetime(2026, 1, 1, tzinfo=_UTC),
        None,
        datetime(2026, 1, 9, 18, tzinfo=_MINUS5),
    ],
]
TZ_CASES = [
    {
        "name": "dbt_tz_before_withdrawal",
        "as_of": "2026-01-09T22:30:00",
        "purpose": "ad_targeting",
        "rows": [[1, "a"], [2, "b"]],
        "expect": {1: "kept", 2: "kept"},
    },
    {
        "name": "dbt_tz_after_withdrawal_offset_as_of",
        "as_of": "2026-01-10T00:30:00+01:00",  # 23:30 UTC
        "purpose": "ad_targeting",
        "rows": [[1, "a"], [2, "b"]],
        "expect": {1: "withdrawn", 2: "expired"},
    },
]
ALL_CASES = [*CASES, *TZ_CASES]
SESSION_TZ = "America/New_York"


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(_UTC).replace(tzinfo=None)


def _events(case: dict[str, Any]) -> list[list[Any]]:
    if case["name"].startswith("dbt_tz_"):
        return TZ_EVENTS
    return [[s, p, st, _ts(e), _ts(r), _ts(x)] for s, p, st, e, r, x in case["events"]]


def _sql_type(kind: str | None, backend: Backend) -> str:
    if kind == "text_ci":  # compares case-insensitively; keys still compare byte by byte
        return "varchar collate nocase" if backend.name == "duckdb" else "citext"
    return "bigint" if kind == "integer" else ("varchar" if backend.name == "duckdb" else "text")


def _load_cases(backend: Backend) -> None:
    ts = "timestamp"
    tstz = "timestamptz"
    for i, case in enumerate(ALL_CASES):
        stamp = tstz if case["name"].startswith("dbt_tz_") else ts
        events_type = _sql_type(case.get("consent_subject_type"), backend)
        rows_type = _sql_type(case.get("subject_type"), backend)
        backend.execute(
            f"create table events_{i} (subject_id {events_type}, purpose varchar, status varchar, "
            f"event_ts {stamp}, recorded_at {stamp}, expires_at {stamp}, source varchar, policy_version varchar)"
        )
        backend.execute(f"create table rows_{i} (row_id integer, subject {rows_type})")
        backend.executemany(
            f"insert into events_{i} values (?, ?, ?, ?, ?, ?, 'test', 'v1')".replace(
                "?", "%s" if backend.name == "postgres" else "?"
            ),
            [[*event] for event in _events(case)],
        )
        backend.executemany(
            f"insert into rows_{i} values (?, ?)".replace("?", "%s" if backend.name == "postgres" else "?"),
            case["rows"],
        )


def _jinja(value: Any) -> str:
    return "none" if value is None else json.dumps(value)


def chosen(selected: Sequence[int] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(number, case) of the cases `selected` by number (ALL_CASES' positions), all by default. A
    case keeps its number, so its tables and models are named as in the full set."""
    return [(i, ALL_CASES[i]) for i in (range(len(ALL_CASES)) if selected is None else selected)]


def _write_project(project: Path, backend: Backend, selected: Sequence[int] | None = None) -> None:
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: consentgate_cases\nversion: '1.0'\nconfig-version: 2\nprofile: consentgate_cases\n"
        "models:\n  consentgate_cases:\n    +materialized: table\n"
    )
    (project / "profiles.yml").write_text(
        yaml.safe_dump(
            {
                "consentgate_cases": {
                    "target": "{{ env_var('CONSENTGATE_DBT_TARGET') }}",
                    "outputs": {
                        "duckdb": {
                            "type": "duckdb",
                            "path": "{{ env_var('CONSENTGATE_DUCKDB', 'unused.duckdb') }}",
                            "schema": "main",
                            "threads": 4,
                            "settings": {"TimeZone": SESSION_TZ},
                        },
                        "postgres": {
                            "type": "postgres",
                            "host": "{{ env_var('CONSENTGATE_PG_HOST', '') }}",
                            "port": "{{ env_var('CONSENTGATE_PG_PORT', '0') | as_number }}",
                            "user": "{{ env_var('CONSENTGATE_PG_USER', '') }}",
                            "password": "",
                            "dbname": "{{ env_var('CONSENTGATE_PG_DBNAME', '') }}",
                            "schema": "{{ env_var('CONSENTGATE_PG_SCHEMA', '') }}",
                            "threads": 4,
                        },
                    },
                }
            }
        )
    )
    link_package(project)
    tables = []
    kept_parts = []
    count_parts = []
    for i, case in chosen(selected):
        args = (
            f"source('cases', 'rows_{i}'), 'subject', {_jinja(case['purpose'])}, as_of={_jinja(case['as_of'])}, "
            f"normalize={_jinja(case.get('normalize'))}, consent_relation=source('cases', 'events_{i}')"
        )
        kept_parts.append(
            f"select '{case['name']}' as case_name, cast(row_id as integer) as row_id\n"
            f"from ({{{{ consentgate.consented({args}) }}}}) as kept_{i}"
        )
        count_parts.append(
            f"select '{case['name']}' as case_name, c.*\nfrom ({{{{ consentgate.consent_counts({args}) }}}}) as c"
        )
        test_args = {
            "purpose": case["purpose"],
            "as_of": case["as_of"],
            "consent_relation": f"{backend.schema}.events_{i}",
        }
        if case.get("normalize"):
            test_args["normalize"] = case["normalize"]
        tables.append({"name": f"events_{i}"})
        tables.append(
            {
                "name": f"rows_{i}",
                "columns": [
                    {
                        "name": "subject",
                        "data_tests": [
                            {
                                "consentgate.only_consented": {
                                    "arguments": test_args,
                                    "config": {
                                        "store_failures": True,
                                        "alias": f"fail_{i}",
                                        "severity": "warn",
                                    },
                                }
                            }
                        ],
                    }
                ],
            }
        )
    (project / "models" / "case_kept.sql").write_text("\nunion all\n".join(kept_parts) + "\n")
    (project / "models" / "case_counts.sql").write_text("\nunion all\n".join(count_parts) + "\n")
    (project / "models" / "sources.yml").write_text(
        yaml.safe_dump(
            {"version": 2, "sources": [{"name": "cases", "schema": backend.schema, "tables": tables}]}
        )
    )


def _collect(backend: Backend) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {
        case["name"]: {"kept": set(), "counts": None, "failures": {}} for case in ALL_CASES
    }
    for name, row_id in backend.query("select case_name, row_id from case_kept"):
        results[name]["kept"].add(row_id)
    columns = ["rows_in", "rows_out", *[f"excluded_{reason}" for reason in REASONS]]
    for row in backend.query(f"select case_name, {', '.join(columns)} from case_counts"):
        results[row[0]]["counts"] = dict(zip(columns, (int(v) for v in row[1:]), strict=True))
    audit = f"{backend.schema}_dbt_test__audit"
    present = {
        r[0]
        for r in backend.query(
            "select table_name from information_schema.tables where table_schema = ?".replace(
                "?", "%s" if backend.name == "postgres" else "?"
            ),
            [audit],
        )
    }
    for i, case in enumerate(ALL_CASES):
        if f"fail_{i}" in present:
            for reason, failing in backend.query(
                f"select consentgate_reason, failing_rows from {audit}.fail_{i}"
            ):
                results[case["name"]]["failures"][reason] = int(failing)
    return results


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def case_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp(f"cases_{request.param}")
    if request.param == "duckdb":
        backend = duckdb_backend(base / "cases.duckdb")
    else:
        server = fresh_pg_database(request.getfixturevalue("pg_server"), "dbt_cases")
        backend = postgres_backend(server, schema="cases")
        backend.execute(f"create schema {backend.schema}")
        backend.execute("create extension if not exists citext")
        backend.execute(f"alter database {server.dbname} set timezone = '{SESSION_TZ}'")
    _load_cases(backend)
    project = base / "project"
    _write_project(project, backend)
    run_dbt(project, ["build"], backend)
    return request.param, _collect(backend)


def _expected(case: dict[str, Any]) -> tuple[set[int], dict[str, int]]:
    kept = {int(k) for k, v in case["expect"].items() if v == "kept"}
    counts = {"rows_in": len(case["rows"]), "rows_out": len(kept)}
    for reason in REASONS:
        counts[f"excluded_{reason}"] = sum(1 for v in case["expect"].values() if v == reason)
    return kept, counts


@pytest.mark.parametrize("case", ALL_CASES, ids=[case["name"] for case in ALL_CASES])
def test_reference_agrees_with_case_expectation(case: dict[str, Any]) -> None:
    events = [
        reference.Event(s, p, st, _naive_utc(e), _naive_utc(r), _naive_utc(x))
        for s, p, st, e, r, x in _events(case)
    ]
    as_of = _naive_utc(datetime.fromisoformat(case["as_of"]))
    kept, counts = reference.enforce(
        [tuple(row) for row in case["rows"]], events, case["purpose"], as_of, case.get("normalize")
    )
    expected_kept, expected_counts = _expected(case)
    assert set(kept) == expected_kept
    assert {f"excluded_{k}": v for k, v in counts.items()} == {
        k: v for k, v in expected_counts.items() if k.startswith("excluded_")
    }


@pytest.mark.parametrize("case", ALL_CASES, ids=[case["name"] for case in ALL_CASES])
def test_consented_keeps_exactly_the_expected_rows(case_results, case: dict[str, Any]) -> None:
    _, results = case_results
    expected_kept, _ = _expected(case)
    assert results[case["name"]]["kept"] == expected_kept


@pytest.mark.parametrize("case", ALL_CASES, ids=[case["name"] for case in ALL_CASES])
def test_consent_counts_match_expected_reasons(case_results, case: dict[str, Any]) -> None:
    _, results = case_results
    _, expected_counts = _expected(case)
    counts = results[case["name"]]["counts"]
    assert counts == expected_counts
    assert counts["rows_in"] == counts["rows_out"] + sum(counts[f"excluded_{r}"] for r in REASONS)


@pytest.mark.parametrize("case", ALL_CASES, ids=[case["name"] for case in ALL_CASES])
def test_only_consented_counts_the_excluded_rows_per_reason(case_results, case: dict[str, Any]) -> None:
    # Stored failures are one row per reason with a count: no subject key, no row (docs/errors.md).
    _, results = case_results
    expected: dict[str, int] = {}
    for verdict in case["expect"].values():
        if verdict != "kept":
            expected[verdict] = expected.get(verdict, 0) + 1
    assert results[case["name"]]["failures"] == expected
