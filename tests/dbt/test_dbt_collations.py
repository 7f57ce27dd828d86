"""Issue 9 through the dbt macros, on DuckDB and PostgreSQL: accent- and case-insensitive collations do
not merge keys, purposes or statuses; a counted event before year 1 fails the model naming the column;
a decimal subject_id and two case-insensitive spellings of a consent column fail the compile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dbt_harness import Backend, duckdb_backend, fresh_pg_database, link_package, postgres_backend, run_dbt

pytestmark = pytest.mark.slow

CONSENTED = (
    "{{{{ consentgate.consented(source('c', '{rows}'), 'subject', 'ads', as_of='2026-03-01T00:00:00', "
    "consent_relation=source('c', '{events}')) }}}}"
)


def _collated(backend: Backend) -> str:
    if backend.name == "duckdb":
        return "varchar collate nocase.noaccent"
    backend.execute(
        "create collation if not exists ci_level1 (provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
    )
    return "text collate ci_level1"


def _load(backend: Backend) -> None:
    ci = _collated(backend)
    p = "%s" if backend.name == "postgres" else "?"
    old = "'-infinity'"
    cols = "purpose {t}, status {t}, event_ts timestamp, recorded_at timestamp, expires_at timestamp"
    backend.execute(f"create table events_ci (subject_id {ci}, {cols.format(t=ci)})")
    backend.executemany(
        f"insert into events_ci values ({p}, {p}, {p}, {p}, null, null)",
        [
            ["ANN@X.COM", "ads", "withdrawn", "2026-01-01"],
            ["ann@x.com", "ads", "granted", "2026-02-01"],
            ["élodie", "ads", "granted", "2026-01-01"],
            ["bob", "ÁDS", "granted", "2026-01-01"],  # another purpose under the rule
            ["cy", "ads", "grantéd", "2026-01-01"],  # invalid under the rule
        ],
    )
    backend.execute(f"create table rows_ci (row_id integer, subject {ci})")
    backend.executemany(
        f"insert into rows_ci values ({p}, {p})",
        [[1, "ANN@X.COM"], [2, "ann@x.com"], [3, "elodie"], [4, "élodie"], [5, "bob"], [6, "cy"]],
    )
    backend.execute(f"create table events_old (subject_id varchar, {cols.format(t='varchar')})")
    backend.execute(
        f"insert into events_old values ('a', 'ads', 'granted', cast({old} as timestamp), null, null)"
    )
    backend.execute("create table rows_plain (row_id integer, subject varchar)")
    backend.execute("insert into rows_plain values (1, 'a')")
    backend.execute(f"create table events_decimal (subject_id decimal(10, 2), {cols.format(t='varchar')})")
    if backend.name == "postgres":  # DuckDB cannot hold two columns that differ only in case
        backend.execute(
            'create table events_twice ("Subject_Id" varchar, "SUBJECT_ID" varchar, '
            f"{cols.format(t='varchar')})"
        )


def _project(project: Path, backend: Backend) -> None:
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: collations\nversion: '1.0'\nconfig-version: 2\nprofile: collations\n"
        "models:\n  collations:\n    +materialized: table\n"
    )
    outputs = {
        "duckdb": {
            "type": "duckdb",
            "path": "{{ env_var('CONSENTGATE_DUCKDB', 'unused.duckdb') }}",
            "schema": "main",
            "threads": 1,
        },
        "postgres": {
            "type": "postgres",
            "host": "{{ env_var('CONSENTGATE_PG_HOST', '') }}",
            "port": "{{ env_var('CONSENTGATE_PG_PORT', '0') | as_number }}",
            "user": "{{ env_var('CONSENTGATE_PG_USER', '') }}",
            "password": "",
            "dbname": "{{ env_var('CONSENTGATE_PG_DBNAME', '') }}",
            "schema": "{{ env_var('CONSENTGATE_PG_SCHEMA', '') }}",
            "threads": 1,
        },
    }
    (project / "profiles.yml").write_text(
        yaml.safe_dump(
            {"collations": {"target": "{{ env_var('CONSENTGATE_DBT_TARGET') }}", "outputs": outputs}}
        )
    )
    tables = ["events_ci", "rows_ci", "events_old", "rows_plain", "events_decimal"]
    tables += ["events_twice"] if backend.name == "postgres" else []
    (project / "models" / "sources.yml").write_text(
        yaml.safe_dump(
            {
                "version": 2,
                "sources": [{"name": "c", "schema": backend.schema, "tables": [{"name": t} for t in tables]}],
            }
        )
    )
    models = {
        "kept_ci": ("rows_ci", "events_ci"),
        "too_old": ("rows_plain", "events_old"),
        "decimal_key": ("rows_plain", "events_decimal"),
        "twice": ("rows_plain", "events_twice"),
    }
    if backend.name != "postgres":
        del models["twice"]
    for name, (rows, events) in models.items():
        (project / "models" / f"{name}.sql").write_text(CONSENTED.format(rows=rows, events=events) + "\n")
    link_package(project)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp(f"collations_{request.param}")
    if request.param == "duckdb":
        backend = duckdb_backend(base / "c.duckdb")
    else:
        server = fresh_pg_database(request.getfixturevalue("pg_server"), "dbt_collations")
        backend = postgres_backend(server, schema="c")
        backend.execute("create schema c")
    _load(backend)
    _project(base / "project", backend)
    return base / "project", backend


def test_collated_columns_compare_keys_purposes_and_statuses_byte_by_byte(project) -> None:
    path, backend = project
    run_dbt(path, ["run", "--select", "kept_ci"], backend)
    assert sorted(r[0] for r in backend.query("select row_id from kept_ci")) == [2, 4]


def test_a_counted_event_before_year_one_fails_the_model_naming_the_column(project) -> None:
    path, backend = project
    proc = run_dbt(path, ["run", "--select", "too_old"], backend, ok=False)
    assert proc.returncode != 0
    assert "consent column event_ts holds an event that counts but is dated before 0001-01-01" in proc.stdout


def test_a_decimal_subject_id_fails_the_compile(project) -> None:
    path, backend = project
    proc = run_dbt(path, ["run", "--select", "decimal_key"], backend, ok=False)
    assert proc.returncode != 0
    assert "(subject_id) of" in proc.stdout and "no unique text form" in proc.stdout


# PostgreSQL only: DuckDB cannot hold two columns whose names differ only in case.
@pytest.mark.parametrize("project", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_case_insensitive_consent_columns_fail_the_compile_naming_both(project) -> None:
    path, backend = project
    proc = run_dbt(path, ["run", "--select", "twice"], backend, ok=False)
    assert proc.returncode != 0
    assert (
        "matches 'Subject_Id' and 'SUBJECT_ID'" in proc.stdout
        or "matches 'SUBJECT_ID' and 'Subject_Id'" in proc.stdout
    )
