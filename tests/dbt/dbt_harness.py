"""Helpers for the dbt package tests: copies of the package, real dbt subprocesses, small DB access.

Every test works on its own copy of dbt_project/ in a temp dir, with its own target path and its own
DuckDB file (or PostgreSQL database), so tests never share state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "dbt_project"
DBT = str(Path(sys.executable).with_name("dbt"))
_IGNORE = shutil.ignore_patterns(
    "target", "logs", "dbt_packages", "package-lock.yml", "*.duckdb", "*.duckdb.wal", ".user.yml"
)


@dataclass
class Backend:
    """Where a dbt project runs: the env vars its profiles.yml reads, and a way to run SQL there.

    :param name: duckdb | postgres
    :param env: environment variables for dbt (CONSENTGATE_DUCKDB or CONSENTGATE_PG_*)
    :param schema: the target schema
    """

    name: str
    env: dict[str, str]
    schema: str
    pg: Any = field(default=None, repr=False)  # a tests/pgserver.PgServer for postgres

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A DB-API connection; committed on success. Never hold it while dbt runs (DuckDB locks)."""
        if self.name == "duckdb":
            import duckdb

            con = duckdb.connect(self.env["CONSENTGATE_DUCKDB"])
            try:
                yield con
            finally:
                con.close()
        else:
            con = self.pg.connect()
            try:
                with con.cursor() as cur:
                    cur.execute(f'set search_path to "{self.schema}"')
                yield con
                con.commit()
            finally:
                con.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.connect() as con:
            if self.name == "duckdb":
                return con.execute(sql, list(params)).fetchall()
            with con.cursor() as cur:
                cur.execute(sql, tuple(params))
                return cur.fetchall() if cur.description else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.connect() as con:
            if self.name == "duckdb":
                con.execute(sql, list(params))
            else:
                with con.cursor() as cur:
                    cur.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.connect() as con:
            if self.name == "duckdb":
                con.executemany(sql, [list(row) for row in rows])
            else:
                with con.cursor() as cur:
                    cur.executemany(sql, [tuple(row) for row in rows])


def duckdb_backend(path: Path) -> Backend:
    return Backend("duckdb", {"CONSENTGATE_DBT_TARGET": "duckdb", "CONSENTGATE_DUCKDB": str(path)}, "main")


def postgres_backend(server: Any, schema: str = "consentgate") -> Backend:
    env = {
        "CONSENTGATE_DBT_TARGET": "postgres",
        "CONSENTGATE_PG_HOST": server.host,
        "CONSENTGATE_PG_PORT": str(server.port),
        "CONSENTGATE_PG_USER": server.user,
        "CONSENTGATE_PG_PASSWORD": "",
        "CONSENTGATE_PG_DBNAME": server.dbname,
        "CONSENTGATE_PG_SCHEMA": schema,
    }
    return Backend("postgres", env, schema, pg=server)


def fresh_pg_database(pg_server: Any, name: str) -> Any:
    """A new, empty database on the session server (for module-scoped fixtures; pg_db is per test)."""
    from pgserver import fresh_database

    return fresh_database(pg_server, name)


def copy_package(dest: Path, *, install: bool = True) -> Path:
    """Copy dbt_project/ to dest and return the integration project's directory. With install, the
    package is linked into dbt_packages/ as `dbt deps` would for `local: ../` (one test runs the real
    `dbt deps`)."""
    shutil.copytree(PACKAGE, dest, ignore=_IGNORE)
    project = dest / "integration_tests"
    if install:
        link_package(project, dest)
    return project


def example_on_duckdb(base: Path, template: Path) -> tuple[Path, Backend]:
    """A private copy of the example project and of the demo database under base."""
    project = copy_package(base / "pkg")
    shutil.copyfile(template, base / "example.duckdb")
    return project, duckdb_backend(base / "example.duckdb")


def link_package(project: Path, package: Path = PACKAGE) -> None:
    (project / "dbt_packages").mkdir(exist_ok=True)
    (project / "dbt_packages" / "consentgate").symlink_to(package, target_is_directory=True)


def run_dbt(
    project: Path,
    args: Sequence[str],
    backend: Backend | None = None,
    *,
    ok: bool = True,
    extra_env: dict | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `dbt ARGS --project-dir P --profiles-dir P` in a subprocess and return it. With ok, a
    non-zero exit fails the test with dbt's output."""
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_USE_COLORS": "false",
        **(backend.env if backend else {}),
        **(extra_env or {}),
    }
    cmd = [DBT, *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(
            f"dbt {' '.join(args)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-8000:]}"
            f"\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


def vars_arg(**values: Any) -> list[str]:
    import json

    return ["--vars", json.dumps(values)]


#: A project macro for on-run-end, before log_lineage: with var forget_cached, it drops every model,
#: seed, snapshot and source of the graph (the consent log is one) from dbt's relation cache, as
#: dbt-spark's listing does when a concurrent invocation drops a relation while it lists the schema.
FORGET_CACHED = """{% macro forget_cached() %}
  {%- if execute and var('forget_cached', false) -%}
    {%- set forgotten = [] -%}
    {%- for node in (graph.nodes.values() | list) + (graph.sources.values() | list)
          if node.resource_type in ['model', 'seed', 'snapshot', 'source'] -%}
      {%- set relation = adapter.get_relation(node.database, node.schema, node.identifier or node.alias) -%}
      {%- if relation is not none -%}
        {%- do adapter.cache_dropped(relation) -%}
        {%- do forgotten.append(relation.identifier) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- do log('forget_cached: forgot ' ~ (forgotten | sort | join(',')), info=true) -%}
  {%- endif -%}
  {{ return('') }}
{% endmacro %}
"""


def add_forget_cached_hook(project: Path) -> None:
    """Add FORGET_CACHED to the project and run it on-run-end just before log_lineage."""
    (project / "macros").mkdir(exist_ok=True)
    (project / "macros" / "forget_cached.sql").write_text(FORGET_CACHED)
    yml = project / "dbt_project.yml"
    hook = '  - "{{ consentgate.log_lineage(results) }}"'
    text = yml.read_text()
    assert text.count(hook) == 1, text
    yml.write_text(text.replace(hook, '  - "{{ forget_cached() }}"\n' + hook))
