"""Benchmark consentgate enforce against the bare SQL of the same rule and the naive pandas approach.

    python benchmarks/bench_enforce.py [--rows N] [--subjects N] [--events N] [--repeat 3]
                                       [--memory-limit 2GB] [--skip pandas] [--json]

Builds a DuckDB file with N marketing rows (text subject keys) and a consent log, then times, in one run
and each in its own process (so peak memory is that approach's own):
  (a) CREATE TABLE AS SELECT * of the source (the floor: copying the data),
  (b) a bare hand-written SQL of the same rule, no evidence,
  (c) consentgate.enforce end to end (validation, snapshot, fingerprint, target, counts by reason, lineage),
  (d) the pandas approach a PythonOperator would use: read both tables, decide in pandas, write back.
The approaches run in --repeat interleaved rounds (a, b, c, a, b, c, ...; pandas, ten times slower,
only in the first), so that a busy moment of the machine hits them alike. Prints each approach's
median time and peak RSS, the ratios of the medians, and the (c)/(b) ratio of every round. Not a
test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T = "2026-06-01 02:00:00"


def build(path: str, rows: int, subjects: int, events: int) -> None:
    import duckdb

    con = duckdb.connect(path)
    con.execute(f"""
        CREATE TABLE source AS
        SELECT i AS event_id,
               CASE WHEN hash(i, 'null') % 100 = 0 THEN NULL
                    ELSE 'cust-' || CAST(hash(i, 'who') % {subjects} AS VARCHAR) END AS customer_key,
               ['/', '/product', '/cart', '/checkout'][1 + CAST(hash(i, 'p') % 4 AS BIGINT)] AS page,
               TIMESTAMP '2026-01-01' + CAST(hash(i, 't') % 13000000 AS BIGINT) * INTERVAL 1 SECOND AS ts,
               CAST(hash(i, 'v') % 100000 AS DOUBLE) / 100 AS value
        FROM range({rows}) t(i)""")
    con.execute(f"""
        CREATE TABLE consent_events AS
        SELECT 'cust-' || CAST(hash(j, 's') % {int(subjects * 1.1)} AS VARCHAR) AS subject_id,
               CASE WHEN hash(j, 'pu') % 10 < 8 THEN 'ad_targeting' ELSE 'email_marketing' END AS purpose,
               CASE WHEN hash(j, 'st') % 100 < 70 THEN 'granted' WHEN hash(j, 'st') % 100 < 85 THEN 'withdrawn'
                    WHEN hash(j, 'st') % 100 < 99 THEN 'denied' ELSE 'pending' END AS status,
               TIMESTAMP '2025-01-01' + CAST(hash(j, 'e') % 45000000 AS BIGINT) * INTERVAL 1 SECOND AS event_ts,
               CASE WHEN hash(j, 'r') % 20 = 0
                    THEN TIMESTAMP '2025-01-01' + CAST(hash(j, 'r2') % 50000000 AS BIGINT) * INTERVAL 1 SECOND END
                 AS recorded_at,
               CASE WHEN hash(j, 'x') % 10 = 0
                    THEN TIMESTAMP '2026-01-01' + CAST(hash(j, 'x2') % 31536000 AS BIGINT) * INTERVAL 1 SECOND END
                 AS expires_at,
               'banner' AS source, 'v1' AS policy_version
        FROM range({events}) t(j)""")
    con.close()


BARE_SQL = f"""
CREATE OR REPLACE TABLE target_bare AS
WITH latest AS (
  SELECT trim(subject_id) AS k,
         max((epoch_us(event_ts) + 62135596800000000) * 8 + 4 -
             CASE lower(trim(status)) WHEN 'withdrawn' THEN 0 WHEN 'denied' THEN 1
                  WHEN 'granted' THEN CASE WHEN expires_at <= TIMESTAMP '{T}' THEN 3 ELSE 4 END ELSE 2 END) AS code
  FROM consent_events
  WHERE subject_id IS NOT NULL AND trim(subject_id) <> '' AND purpose IS NOT NULL AND event_ts IS NOT NULL
    AND lower(trim(purpose)) = 'ad_targeting'
    AND event_ts <= TIMESTAMP '{T}' AND coalesce(recorded_at, event_ts) <= TIMESTAMP '{T}'
  GROUP BY 1
)
SELECT s.* FROM source s
WHERE trim(s.customer_key) IN (SELECT k FROM latest WHERE code % 8 = 0)
"""


def _connect(path: str, memory_limit: str | None):
    import duckdb

    config = {"memory_limit": memory_limit} if memory_limit else {}
    con = duckdb.connect(path, config=config)
    con.execute("SET enable_progress_bar = false")
    return con


def approach(name: str, path: str, memory_limit: str | None) -> dict:
    """Run one approach in this process; return its seconds and output row count."""
    start = time.perf_counter()
    if name == "ctas":
        con = _connect(path, memory_limit)
        con.execute("CREATE OR REPLACE TABLE target_ctas AS SELECT * FROM source").fetchall()
        out = con.execute("SELECT count(*) FROM target_ctas").fetchone()[0]
        con.close()
    elif name == "bare_sql":
        con = _connect(path, memory_limit)
        con.execute(BARE_SQL).fetchall()
        out = con.execute("SELECT count(*) FROM target_bare").fetchone()[0]
        con.close()
    elif name == "consentgate":
        import consentgate

        con = _connect(path, memory_limit)
        r = consentgate.enforce(
            source="source", target="target_cg", subject_column="customer_key", purpose="ad_targeting",
            as_of=T, connection=con,
        )
        con.close()
        out = r.rows_out
    elif name == "pandas":
        import pandas as pd

        con = _connect(path, memory_limit)
        src = con.sql("SELECT * FROM source").df()
        ev = con.sql("SELECT * FROM consent_events").df()
        t = pd.Timestamp(T)
        ev = ev[ev.subject_id.notna() & ev.purpose.notna() & ev.event_ts.notna()]
        ev = ev.assign(k=ev.subject_id.str.strip(), p=ev.purpose.str.strip().str.lower())
        ev = ev[(ev.k != "") & (ev.p == "ad_targeting") & (ev.event_ts <= t)
                & (ev.recorded_at.fillna(ev.event_ts) <= t)]
        st = ev.status.str.strip().str.lower()
        sev = st.map({"withdrawn": 0, "denied": 1}).fillna(2)
        sev = sev.where(st != "granted", 4 - ((ev.expires_at <= t).fillna(False)).astype(int))
        ev = ev.assign(sev=sev).sort_values(["k", "event_ts", "sev"], ascending=[True, False, True])
        decided = ev.drop_duplicates("k")
        ok = set(decided.loc[decided.sev == 4, "k"])
        out_df = src[src.customer_key.str.strip().isin(ok)]
        con.register("out_df", out_df)
        con.execute("CREATE OR REPLACE TABLE target_pandas AS SELECT * FROM out_df").fetchall()
        out = len(out_df)
        con.close()
    else:
        raise ValueError(name)
    return {"seconds": time.perf_counter() - start, "rows_out": int(out)}


APPROACHES = ("ctas", "bare_sql", "consentgate", "pandas")


def run_child(name: str, path: str, memory_limit: str | None) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, "--path", path]
        + (["--memory-limit", memory_limit] if memory_limit else []),
        capture_output=True, text=True, check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(path: str, repeat: int, skip: list[str], memory_limit: str | None, quiet: bool) -> dict[str, list[dict]]:
    """Every approach once per round, rounds interleaved; pandas only in the first round."""
    runs: dict[str, list[dict]] = {}
    for round_no in range(repeat):
        for name in APPROACHES:
            if name in skip or (name == "pandas" and round_no > 0):
                continue
            r = run_child(name, path, memory_limit)
            runs.setdefault(name, []).append(r)
            if not quiet:
                print(f"round {round_no + 1}  {name:12s} {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:8.0f} MB"
                      f"  rows out {r['rows_out']:,}", flush=True)
    return runs


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Median seconds and peak RSS per approach, the ratios of the medians, and (c)/(b) per round."""
    results = {
        name: {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "runs_seconds": [round(r["seconds"], 3) for r in rs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "rows_out": rs[0]["rows_out"],
        }
        for name, rs in runs.items()
    }
    medians = {name: r["seconds"] for name, r in results.items()}
    pairs = {
        "consentgate_vs_bare_sql": ("consentgate", "bare_sql"),
        "consentgate_vs_ctas": ("consentgate", "ctas"),
        "pandas_vs_consentgate": ("pandas", "consentgate"),
    }
    summary: dict = {
        "results": results,
        "same_rows_out": len({r["rows_out"] for n, rs in runs.items() if n != "ctas" for r in rs}) == 1,
        "ratios": {k: medians[x] / medians[y] for k, (x, y) in pairs.items() if x in medians and y in medians},
    }
    if "consentgate" in runs and "bare_sql" in runs:
        summary["consentgate_vs_bare_sql_per_round"] = [
            round(c["seconds"] / b["seconds"], 3) for c, b in zip(runs["consentgate"], runs["bare_sql"], strict=True)
        ]
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--subjects", type=int, default=None, help="default: rows / 10")
    ap.add_argument("--events", type=int, default=None, help="default: subjects * 3")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 2GB")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    ap.add_argument("--skip", default="", help="comma-separated approaches to skip (e.g. pandas)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child == "build":
        build(a.path, a.rows, a.subjects, a.events)
        return
    if a.child:
        result = approach(a.child, a.path, a.memory_limit)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    subjects = a.subjects or max(a.rows // 10, 1)
    events = a.events or subjects * 3
    with tempfile.TemporaryDirectory(prefix="cg-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        path = str(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        # Built in a child too: on Linux a child's peak RSS starts from its parent's at fork.
        subprocess.run(
            [sys.executable, __file__, "--child", "build", "--path", path, "--rows", str(a.rows),
             "--subjects", str(subjects), "--events", str(events)],
            check=True,
        )
        build_s = time.perf_counter() - t0
        runs = measure(path, a.repeat, a.skip.split(","), a.memory_limit, quiet=a.json)
    report = {
        "rows": a.rows, "subjects": subjects, "events": events, "memory_limit": a.memory_limit,
        "repeat": a.repeat, "build_seconds": round(build_s, 2), "cpus": os.cpu_count(), **summarise(runs),
    }
    if a.json:
        print(json.dumps(report, indent=2))
        return
    print(f"medians of {a.repeat} round(s):")
    for name, r in report["results"].items():
        print(f"  {name:12s} {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:8.0f} MB")
    for k, v in report["ratios"].items():
        print(f"{k:28s} {v:6.2f}x")
    if "consentgate_vs_bare_sql_per_round" in report:
        per_round = ", ".join(f"{x:.2f}" for x in report["consentgate_vs_bare_sql_per_round"])
        print(f"consentgate / bare_sql per round: {per_round}")
    print(f"all approaches agree on rows out: {report['same_rows_out']}")


if __name__ == "__main__":
    main()
