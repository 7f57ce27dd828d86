"""Benchmark: the cost of consentgate.purge_withdrawn (the dbt post-hook) against table size.

For tables of 1M and 10M rows (100,000 subjects) with 100 subjects whose consent changed since the
last run, it times, in one DuckDB file and one run:

  incremental  the purge the hook runs on an incremental build (only subjects changed since the
               watermark are decided; an integer subject column is probed directly)
  nothing      the same with no subject changed since the watermark
  full         the purge without a watermark (every subject decided, every row's key compared)
  text key     the incremental purge on the same table with a text subject column

The SQL is compiled from the package's own macros by `dbt compile --inline` (the very statements the
hook executes), then run in DuckDB inside a transaction that is rolled back, 5 times; the median is
reported. Everything is printed as a table with the ratio full / incremental.

    python benchmarks/bench_purge.py                 # 1M and 10M rows
    python benchmarks/bench_purge.py --rows 1000000  # one size
    python benchmarks/bench_purge.py --postgres 127.0.0.1:5432   # on PostgreSQL (user postgres,
                                                                 # database postgres, schema bench_purge)
    python benchmarks/bench_purge.py --sweep [--rows 10000000] [--results FILE]
        # a nightly run against the fraction of subjects changed (0.01% .. 100%): incremental purge,
        # full purge and a full consentgate enforcement of the same table (docs/nightly_vs_changed.png)

Needs dbt-core, dbt-duckdb and duckdb (the project's `dbt` extra), psycopg2 for --postgres. Uses a
temp dir; about a minute on DuckDB. On PostgreSQL the tables get a b-tree index on the subject column.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dbt_project"
SUBJECTS = 100_000
CHANGED = 100
LAST_RUN = "2026-01-10 00:00:00.000000"  # the watermark W
AS_OF = "2026-01-12"  # the cut-off T of this run
REPEATS = 5


def build_data(path: Path, rows: int, changed: int = CHANGED) -> None:
    """ad_events (integer subject) and ad_events_text (text subject), and a consent log where
    `changed` subjects (default 100) changed in (W, T]: 20 grants expired, and of the others three in
    four withdrew, the rest re-confirmed their grant (100: 60 withdrew, 20 re-confirmed)."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(
        f"""create or replace table ad_events as
        select (i % {SUBJECTS}) as customer_id, i as event_id, 'p' || (i % 50) as page,
               timestamp '2025-12-01' + to_seconds(i % 1000000) as event_ts
        from range({rows}) t(i)"""
    )
    con.execute(
        """create or replace table ad_events_text as
        select 'C-' || customer_id as customer_key, event_id, page, event_ts from ad_events"""
    )
    con.execute(
        """create or replace table consent_events (subject_id varchar, purpose varchar, status varchar,
        event_ts timestamp, recorded_at timestamp, expires_at timestamp, source varchar, policy_version varchar)"""
    )
    # Everybody granted long ago; subjects 0..19 (changed below) with a grant that expires in (W, T].
    con.execute(
        f"""insert into consent_events
        select cast(i as varchar), 'ad_targeting', 'granted', timestamp '2025-11-01', null,
               case when i % 5000 = 0 and i < {20 * 5000} then timestamp '2026-01-11' end, 'banner', 'v1'
        from range({SUBJECTS}) t(i)"""
    )
    # Withdrawals and re-grants recorded in (W, T], spread over the key space (997 is prime to
    # SUBJECTS, so the subjects are distinct).
    others = max(changed - 20, 0)
    con.execute(
        f"""insert into consent_events
        select cast((1 + i * 997) % {SUBJECTS} as varchar), 'ad_targeting',
               case when i < {others * 3 // 4} then 'withdrawn' else 'granted' end,
               timestamp '2026-01-11 08:00:00', null, null, 'settings', 'v2'
        from range({others}) t(i)"""
    )
    con.execute(
        """create or replace table consent_events_text as
        select 'C-' || subject_id as subject_id, purpose, status, event_ts, recorded_at, expires_at, source,
               policy_version from consent_events"""
    )
    con.execute("checkpoint")
    con.close()


PG_SCHEMA = "bench_purge"


def pg_connect(server: str):  # noqa: ANN201 - a psycopg2 connection
    import psycopg2

    host, _, port = server.partition(":")
    return psycopg2.connect(host=host, port=int(port or 5432), user="postgres", dbname="postgres")


def build_data_postgres(server: str, rows: int) -> None:
    """The same tables as build_data, in schema bench_purge, with an index on the subject columns."""
    con = pg_connect(server)
    s = PG_SCHEMA
    with con, con.cursor() as cur:
        cur.execute(f"drop schema if exists {s} cascade; create schema {s}")
        cur.execute(
            f"""create table {s}.ad_events as
            select (i % {SUBJECTS})::bigint as customer_id, i::bigint as event_id, 'p' || (i % 50) as page,
                   timestamp '2025-12-01' + make_interval(secs => i % 1000000) as event_ts
            from generate_series(0, {rows} - 1) t(i)"""
        )
        cur.execute(
            f"""create table {s}.ad_events_text as
            select 'C-' || customer_id as customer_key, event_id, page, event_ts from {s}.ad_events"""
        )
        cur.execute(
            f"""create table {s}.consent_events (subject_id text, purpose text, status text, event_ts timestamp,
            recorded_at timestamp, expires_at timestamp, source text, policy_version text)"""
        )
        cur.execute(
            f"""insert into {s}.consent_events
            select i::text, 'ad_targeting', 'granted', timestamp '2025-11-01', null,
                   case when i % 5000 = 0 and i < {20 * 5000} then timestamp '2026-01-11' end, 'banner', 'v1'
            from generate_series(0, {SUBJECTS} - 1) t(i)"""
        )
        cur.execute(
            f"""insert into {s}.consent_events
            select (1 + i * 997)::text, 'ad_targeting', case when i < 60 then 'withdrawn' else 'granted' end,
                   timestamp '2026-01-11 08:00:00', null, null, 'settings', 'v2'
            from generate_series(0, {CHANGED - 20} - 1) t(i)"""
        )
        cur.execute(
            f"""create table {s}.consent_events_text as
            select 'C-' || subject_id as subject_id, purpose, status, event_ts, recorded_at, expires_at, source,
                   policy_version from {s}.consent_events"""
        )
        cur.execute(f"create index on {s}.ad_events (customer_id)")
        cur.execute(f"create index on {s}.ad_events_text (customer_key)")
        cur.execute(f"analyze {s}.ad_events; analyze {s}.ad_events_text; analyze {s}.consent_events")
    con.close()


def time_statement_postgres(server: str, sql: str) -> tuple[float, int]:
    con = pg_connect(server)
    try:
        timings, deleted = [], 0
        for _ in range(REPEATS):
            with con.cursor() as cur:
                start = time.perf_counter()
                cur.execute(sql)
                timings.append(time.perf_counter() - start)
                deleted = cur.rowcount
            con.rollback()
        return statistics.median(timings), deleted
    finally:
        con.close()


def write_project(root: Path, db: Path) -> Path:
    project = root / "bench_project"
    (project / "dbt_packages").mkdir(parents=True)
    (project / "dbt_packages" / "consentgate").symlink_to(PACKAGE, target_is_directory=True)
    (project / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
    )
    (project / "profiles.yml").write_text(
        f"bench:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n      path: '{db}'\n      threads: 1\n"
    )
    return project


def write_project_postgres(root: Path, server: str) -> Path:
    project = write_project(root, root / "unused.duckdb")
    host, _, port = server.partition(":")
    (project / "profiles.yml").write_text(
        "bench:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n"
        f"      host: '{host}'\n      port: {int(port or 5432)}\n      user: postgres\n      password: ''\n"
        f"      dbname: postgres\n      schema: {PG_SCHEMA}\n      threads: 1\n"
    )
    return project


def compile_sql(project: Path, body: str) -> str:
    """Compile a Jinja snippet with the package's macros (dbt compile --inline) and return the SQL."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = subprocess.run(
        [
            dbt,
            "--quiet",
            "compile",
            "--inline",
            body,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
    )
    if proc.returncode != 0:
        raise SystemExit(f"dbt compile failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def purge_sql(project: Path, table: str, column: str, consent: str, mode: str, schema: str = "main") -> str:
    spec = (
        f"consentgate._call_spec('bench', api.Relation.create(schema='{schema}', identifier='{table}'), "
        f"'{column}', 'ad_targeting', '{AS_OF}', none, "
        f"api.Relation.create(schema='{schema}', identifier='{consent}'))"
    )
    if mode == "full":
        call = "consentgate._purge_all_sql(spec)"
    else:
        dtype = "BIGINT" if column == "customer_id" else "VARCHAR"
        since = LAST_RUN if mode == "incremental" else "2026-01-12 00:00:00.000000"  # nothing changed since T
        call = f"consentgate._purge_changed_sql(spec, '{since}', api.Column('{column}', '{dtype}'))"
    return compile_sql(project, "{% set spec = " + spec + " %}{{ " + call + " }}")


def time_statement(db: Path, sql: str) -> tuple[float, int]:
    """Median seconds over REPEATS runs (each rolled back) and the rows the statement deletes."""
    import duckdb

    con = duckdb.connect(str(db))
    try:
        timings, deleted = [], 0
        for _ in range(REPEATS):
            con.execute("begin")
            start = time.perf_counter()
            result = con.execute(sql).fetchall()
            timings.append(time.perf_counter() - start)
            con.execute("rollback")
            deleted = int(result[0][0]) if result else 0
        return statistics.median(timings), deleted
    finally:
        con.close()


PLANS = [
    ("incremental", "ad_events", "customer_id", "consent_events", "incremental"),
    ("nothing", "ad_events", "customer_id", "consent_events", "nothing"),
    ("full", "ad_events", "customer_id", "consent_events", "full"),
    ("text key", "ad_events_text", "customer_key", "consent_events_text", "incremental"),
]


def bench(rows: int, root: Path, postgres: str | None) -> list[tuple[str, int, float, int]]:
    started = time.perf_counter()
    if postgres:
        build_data_postgres(postgres, rows)
        project = write_project_postgres(root / f"p{rows}", postgres)
        schema = PG_SCHEMA
    else:
        db = root / f"bench_{rows}.duckdb"
        build_data(db, rows)
        project = write_project(root / f"p{rows}", db)
        schema = "main"
    print(f"  built {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    compiled = [(label, purge_sql(project, t, c, k, m, schema)) for label, t, c, k, m in PLANS]
    results = []
    for label, sql in compiled:
        seconds, deleted = time_statement_postgres(postgres, sql) if postgres else time_statement(db, sql)
        results.append((label, rows, seconds, deleted))
    return results


def time_enforce(db: Path) -> float:
    """Median seconds of a full consentgate enforcement (replace) of the text-key table, in process."""
    import consentgate
    import duckdb

    timings = []
    for _ in range(3):
        con = duckdb.connect(str(db))
        start = time.perf_counter()
        consentgate.enforce(
            source="ad_events_text",
            target="consented_events",
            subject_column="customer_key",
            purpose="ad_targeting",
            as_of=AS_OF,
            consent_table="consent_events_text",
            connection=con,
        )
        timings.append(time.perf_counter() - start)
        con.close()
    return statistics.median(timings)


FRACTIONS = (0.0001, 0.001, 0.01, 0.1, 0.5, 1.0)


def sweep(rows: int, root: Path, results: str | None) -> None:
    """A nightly run's time against the fraction of subjects whose consent changed since the last
    run: the incremental purge, the full purge and a full consentgate enforcement of the same table."""
    print(
        f"{'changed':>9} {'fraction':>9} {'incremental':>12} {'full purge':>11} {'enforce':>9} {'deleted':>9}"
    )
    points = []
    for fraction in FRACTIONS:
        changed = max(20, int(SUBJECTS * fraction))
        db = root / f"sweep_{changed}.duckdb"
        build_data(db, rows, changed)
        project = write_project(root / f"s{changed}", db)
        inc, deleted = time_statement(
            db, purge_sql(project, "ad_events_text", "customer_key", "consent_events_text", "incremental")
        )
        full, _ = time_statement(
            db, purge_sql(project, "ad_events_text", "customer_key", "consent_events_text", "full")
        )
        enforce_s = time_enforce(db)
        points.append(
            {
                "changed": changed,
                "fraction": changed / SUBJECTS,
                "incremental_purge": inc,
                "full_purge": full,
                "enforce": enforce_s,
                "deleted": deleted,
            }
        )
        print(
            f"{changed:>9,} {changed / SUBJECTS:>9.4f} {inc:>12.3f} {full:>11.3f} {enforce_s:>9.3f} {deleted:>9,}",
            flush=True,
        )
        db.unlink()
    if results:
        import json

        with open(results, "a", encoding="utf-8") as f:
            f.write(
                json.dumps({"kind": "nightly_sweep", "rows": rows, "subjects": SUBJECTS, "points": points})
                + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, action="append", help="table size (repeatable); default 1M and 10M"
    )
    parser.add_argument(
        "--postgres", metavar="HOST:PORT", help="run on this PostgreSQL server instead of DuckDB"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="instead: time a nightly run against the fraction of subjects changed (text key, --rows or 10M)",
    )
    parser.add_argument("--results", help="with --sweep: append the points as one JSON line to this file")
    args = parser.parse_args()
    if args.sweep:
        root = Path(tempfile.mkdtemp(prefix="consentgate-bench-purge-", dir=os.environ.get("BENCH_DIR")))
        try:
            sweep((args.rows or [10_000_000])[0], root, args.results)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    sizes = args.rows or [1_000_000, 10_000_000]
    if args.postgres:
        con = pg_connect(args.postgres)
        with con.cursor() as cur:
            cur.execute("show server_version")
            engine = f"PostgreSQL {cur.fetchone()[0]} (b-tree index on the subject column)"
        con.close()
    else:
        import duckdb

        engine = f"DuckDB {duckdb.__version__}"
    print(
        f"purge_withdrawn on {engine}, {SUBJECTS:,} subjects, {CHANGED} changed, "
        f"median of {REPEATS} (rolled back), {os.cpu_count()} cores"
    )
    root = Path(tempfile.mkdtemp(prefix="consentgate-bench-purge-"))
    try:
        all_results = [r for rows in sizes for r in bench(rows, root, args.postgres)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if args.postgres:
            con = pg_connect(args.postgres)
            with con, con.cursor() as cur:
                cur.execute(f"drop schema if exists {PG_SCHEMA} cascade")
            con.close()
    print(f"{'rows':>12} {'purge':<12} {'seconds':>9} {'rows deleted':>13}")
    for label, rows, seconds, deleted in all_results:
        print(f"{rows:>12,} {label:<12} {seconds:>9.3f} {deleted:>13,}")
    for rows in sizes:
        by = {label: s for label, r, s, _ in all_results if r == rows}
        print(f"{rows:>12,} full / incremental = {by['full'] / by['incremental']:.1f}x")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        for label in ("incremental", "full"):
            a = next(s for lab, r, s, _ in all_results if lab == label and r == lo)
            b = next(s for lab, r, s, _ in all_results if lab == label and r == hi)
            print(f"{label}: {hi // lo}x the rows -> {b / a:.1f}x the time")


if __name__ == "__main__":
    main()
