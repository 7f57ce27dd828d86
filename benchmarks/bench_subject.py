"""How fast is `consentgate subject` on a 10M-event consent log, with and without the subject index?

    .venv/bin/python benchmarks/bench_subject.py [--events 10000000] [--runs 365] [--database PATH]

Builds (once; reused when --database already holds it) a DuckDB file with a consent log of --events
events over events/5 subjects in insertion (time) order, small marketing sources, two real
`run_policy` runs and --runs - 2 more run records (copies of the real lineage at earlier nightly
cut-offs, as a year of nightly runs would leave). Then times the subject report for a few subjects:
in-process on a fresh read-only connection, and end to end through the CLI in a new process; first
without the subject index, then with it (`consentgate index`). Prints the figures and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from consentgate.engine.enforcement import run_policy
from consentgate.engine.policy import parse
from consentgate.engine.session import open_duckdb
from consentgate.evidence import transparency

AS_OF = datetime(2026, 11, 28, 2, 0)
POLICY = {
    "purposes": [
        {"name": "ad_targeting", "description": "Ads chosen from what you browse and buy."},
        {"name": "email_marketing", "description": "Offers by e-mail."},
    ],
    "datasets": [
        {
            "name": "web_events",
            "source": "raw.web_events",
            "target": "consented.web_events",
            "subject_column": "customer_id",
            "purpose": "ad_targeting",
        },
        {
            "name": "purchases",
            "source": "raw.purchases",
            "target": "consented.purchases",
            "subject_column": "customer_id",
            "purpose": "ad_targeting",
        },
        {
            "name": "email_engagement",
            "source": "raw.email_engagement",
            "target": "consented.email_engagement",
            "subject_column": "email",
            "purpose": "email_marketing",
            "normalize": "lower",
        },
    ],
}


def build(path: Path, events: int, runs: int) -> None:
    subjects = max(events // 5, 1)
    con = duckdb.connect(str(path))
    # Events arrive in time order (as an append-only log does), so subject ids are scattered across
    # every row group: zone maps alone cannot prune a lookup by subject.
    con.execute(f"""
        CREATE OR REPLACE TABLE main.consent_events AS
        SELECT CASE WHEN i % 10 = 9 THEN 'Customer.' || s || '@Example.com'
                    WHEN i % 97 = 0 THEN ' ' || s || ' ' ELSE CAST(s AS VARCHAR) END AS subject_id,
               CASE WHEN i % 10 = 9 THEN 'email_marketing' ELSE 'ad_targeting' END AS purpose,
               ['granted', 'granted', 'withdrawn', 'denied', 'GRANTED '][1 + CAST(hash(i, 'st') % 5 AS BIGINT)] AS status,
               TIMESTAMP '2024-01-01' + CAST(i * (86400 * 1060 / {events}) AS BIGINT) * INTERVAL 1 SECOND AS event_ts,
               CASE WHEN i % 33 = 0 THEN TIMESTAMP '2024-01-01'
                    + CAST(i * (86400 * 1060 / {events}) + 86400 * 3 AS BIGINT) * INTERVAL 1 SECOND END AS recorded_at,
               CASE WHEN i % 17 = 0 THEN TIMESTAMP '2027-01-01' END AS expires_at,
               ['cookie_banner', 'account_settings', 'gpc'][1 + CAST(hash(i, 'src') % 3 AS BIGINT)] AS source,
               'v' || (1 + i % 3) AS policy_version
        FROM (SELECT i, 1 + CAST(hash(i, 'who') % {subjects} AS BIGINT) AS s FROM range({events}) t(i))
    """)
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"""CREATE OR REPLACE TABLE raw.web_events AS SELECT j AS event_id,
        1 + CAST(hash(j, 'w') % {subjects} AS BIGINT) AS customer_id FROM range(200000) t(j)""")
    con.execute(f"""CREATE OR REPLACE TABLE raw.purchases AS SELECT j AS order_id,
        1 + CAST(hash(j, 'p') % {subjects} AS BIGINT) AS customer_id FROM range(50000) t(j)""")
    con.execute(f"""CREATE OR REPLACE TABLE raw.email_engagement AS SELECT j AS message_id,
        'customer.' || (1 + CAST(hash(j, 'e') % {subjects} AS BIGINT)) || '@example.com' AS email
        FROM range(50000) t(j)""")
    con.close()
    policy = parse(POLICY)
    run_policy(policy, path, as_of=AS_OF - timedelta(days=1), run_id="bench-real-1")
    run_policy(policy, path, as_of=AS_OF, run_id="bench-real-2")
    con = duckdb.connect(str(path))
    # Copies of the real records at earlier nightly cut-offs; every other column as recorded (so the
    # copies follow the evidence tables' schema, whatever columns it has).
    con.execute(f"""
        INSERT INTO consentgate_runs BY NAME
        SELECT r.* REPLACE ('bench-' || n AS run_id, r.started_at - n * INTERVAL 1 DAY AS started_at,
                            r.finished_at - n * INTERVAL 1 DAY AS finished_at, r.as_of - n * INTERVAL 1 DAY AS as_of)
        FROM consentgate_runs AS r, range(2, {runs}) t(n) WHERE r.run_id = 'bench-real-1'""")
    con.execute(f"""
        INSERT INTO consentgate_lineage BY NAME
        SELECT l.* REPLACE ('bench-' || n AS run_id, l.started_at - n * INTERVAL 1 DAY AS started_at,
                            l.finished_at - n * INTERVAL 1 DAY AS finished_at)
        FROM consentgate_lineage AS l, range(2, {runs}) t(n) WHERE l.run_id = 'bench-real-1'""")
    con.execute("CHECKPOINT")
    con.close()


def time_in_process(path: Path, subject: str, policy_path: Path) -> float:
    from consentgate.engine.policy import load

    policy = load(policy_path)
    t0 = time.perf_counter()
    session = open_duckdb(path, read_only=True)
    try:
        report = transparency.subject_report(session, subject, policy=policy)
    finally:
        session.close()
    elapsed = time.perf_counter() - t0
    assert report["runs"], "the benchmark database has no runs"
    return elapsed


def time_cli(path: Path, subject: str, policy_path: Path) -> float:
    exe = Path(sys.executable).with_name("consentgate")
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(exe), "subject", subject, "--database", str(path), "--policy", str(policy_path), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.perf_counter() - t0
    json.loads(out)
    return elapsed


def measure(path: Path, subjects: list[str], policy_path: Path) -> tuple[float, float]:
    in_process = [time_in_process(path, s, policy_path) for s in subjects]
    cli = [time_cli(path, s, policy_path) for s in subjects]
    return statistics.median(in_process), statistics.median(cli)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=365)
    ap.add_argument("--database", type=Path, default=None, help="reuse/keep this file (default: a temp file)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = args.database or Path(tmp.name) / "bench_subject.duckdb"
    policy_path = Path(tmp.name) / "policy.yml"
    policy_path.write_text(json.dumps(POLICY))  # JSON is YAML
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.events, args.runs)
        print(f"built {path} in {time.perf_counter() - t0:.1f} s")
    con = duckdb.connect(str(path))
    events = con.execute("SELECT count(*) FROM main.consent_events").fetchall()[0][0]
    runs = con.execute("SELECT count(*) FROM consentgate_runs").fetchall()[0][0]
    con.close()
    subjects = ["12345", "777777", "Customer.4242@Example.com", "1999999", "31337"]
    print(f"consent log: {events:,} events; {runs} recorded runs; {len(subjects)} subjects, median of each")

    session = open_duckdb(path)
    try:
        transparency.drop_subject_index(session, transparency.consent_source(session))
    finally:
        session.close()
    plain = measure(path, subjects, policy_path)
    print(f"without subject index: in-process {plain[0]:.3f} s, CLI end to end {plain[1]:.3f} s")

    t0 = time.perf_counter()
    session = open_duckdb(path)
    try:
        transparency.create_subject_index(session, transparency.consent_source(session))
    finally:
        session.close()
    print(f"consentgate index: {time.perf_counter() - t0:.1f} s (once; kept up to date by DuckDB on insert)")
    indexed = measure(path, subjects, policy_path)
    print(f"with subject index:    in-process {indexed[0]:.3f} s, CLI end to end {indexed[1]:.3f} s")
    print(f"speed-up in-process: {plain[0] / indexed[0]:.1f}x")


if __name__ == "__main__":
    main()
