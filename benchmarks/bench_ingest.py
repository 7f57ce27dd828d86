"""Benchmark consent-source ingestion: a full ingest against decoding alone, and a 1% increment.

    python benchmarks/bench_ingest.py [--n 200000] [--subjects N] [--seed 1] [--json]

Builds, in a fresh DuckDB file, a table of --n TC-string observations (a seeded mix of a few hundred
realistic strings: accept-all, reject-all, partial purposes, a vendor missing, a publisher restriction,
unusable and undecodable ones) over --subjects subjects (default n/10), streamed in over 30 days (loaded_at an hour after seen_at). Then, in
one run:
  decode alone   read the rows and decode every TC string (consentgate.signals.tcf.decode)
  full ingest    consentgate.sources.ingest.ingest of the same table into an empty log
  increment      1% more rows, loaded a day later, ingested past the watermark
and prints the seconds and the ratios (the issue's targets: full within 2x of decoding alone; the
increment at most 5% of the full ingest). `--n 10000000` is the issue's size (about 10 minutes here).
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "signals"))  # tcbits: the test suite's independent bit writer

from tcbits import bits, disclosed, tc, vendor_bitfield  # noqa: E402

SOURCE = {
    "name": "euconsent", "kind": "tcf", "table": "raw.tc_strings",
    "columns": {"subject": "customer_id", "signal": "euconsent_v2", "event_ts": "seen_at", "recorded_at": "loaded_at"},
    "purposes": {"ad_targeting": {"tcf_purposes": [1, 3, 4], "vendors": [755]}},
}  # fmt: skip


def restriction_bits(purpose: int, kind: int, vendor: int) -> str:
    """One publisher restriction (purpose, type, a single vendor)."""
    return bits(1, 12) + bits(purpose, 6) + bits(kind, 2) + bits(1, 12) + "0" + bits(vendor, 16)


def strings(rng: random.Random) -> list[str]:
    """A few hundred distinct, realistic TC strings (about 60% grant the benchmark's purpose)."""
    out = []
    for i in range(300):
        created = 17_100_000_000 + i * 3_600
        vendors = sorted(rng.sample(range(1, 1200), rng.randint(0, 60)) + ([755] if rng.random() < 0.8 else []))
        purposes = [1, 2, 3, 4, 7, 9, 10] if rng.random() < 0.7 else rng.sample(range(1, 11), rng.randint(0, 4))
        extra = {"restrictions": restriction_bits(4, 0, 755)} if rng.random() < 0.05 else {}
        cmp_id = 1 if rng.random() < 0.02 else 10
        core = {"created": created, "purposes": purposes, "vendor_consents": vendor_bitfield(vendors, 1200), "cmp_id": cmp_id}
        out.append(tc(None, disclosed(vendors or [1]), **core, **extra))
    return out + ["CPxyz-not-a-tc-string"]


def build(con, n: int, subjects: int, seed: int, day0: int = 0, table_exists: bool = False) -> None:
    rng = random.Random(seed)
    pool = strings(random.Random(1))
    start = datetime(2026, 1, 1)
    if not table_exists:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE TABLE raw.tc_strings (customer_id varchar, euconsent_v2 varchar, seen_at timestamp, loaded_at timestamp)")
    con.execute("CREATE OR REPLACE TEMP TABLE pool (i integer, s varchar)")
    con.executemany("INSERT INTO pool VALUES (?, ?)", list(enumerate(pool)))
    con.execute(
        f"INSERT INTO raw.tc_strings SELECT 'c' || ((r * 7919 + {seed}) % {subjects}), p.s, "
        f"TIMESTAMP '{start}' + to_seconds(({day0} * 86400 + r * 2592000 // {n})::bigint), "
        f"TIMESTAMP '{start}' + to_seconds(({day0} * 86400 + r * 2592000 // {n})::bigint) + INTERVAL 1 HOUR "
        f"FROM range({n}) t(r) JOIN pool p ON p.i = (r * 31 + {rng.randint(0, 99)}) % {len(pool)}"
    )


def decode_alone(session) -> float:
    from consentgate.signals import SignalError
    from consentgate.signals.tcf import decode

    t = time.perf_counter()
    cur = session.connection.cursor()
    cur.execute("SELECT customer_id, euconsent_v2, seen_at, loaded_at FROM raw.tc_strings")
    while rows := cur.fetchmany(5000):
        for _, text, _, _ in rows:
            try:
                decode(text)
            except SignalError:
                pass
    cur.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--subjects", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import duckdb
    from consentgate.engine.session import session_for
    from consentgate.engine.source_config import parse_sources
    from consentgate.sources.ingest import ingest

    subjects = args.subjects or max(args.n // 10, 1)
    sources = parse_sources([SOURCE], {"ad_targeting"}, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        build(con, args.n, subjects, args.seed)
        session = session_for(con, "duckdb")
        decode_s = decode_alone(session)
        t = time.perf_counter()
        (full,) = ingest(session, sources)
        full_s = time.perf_counter() - t
        build(con, max(args.n // 100, 1), subjects, args.seed + 1, day0=31, table_exists=True)
        t = time.perf_counter()
        (inc,) = ingest(session, sources)
        inc_s = time.perf_counter() - t
        con.close()
    result = {
        "observations": args.n, "subjects": subjects, "decode_alone_s": round(decode_s, 3),
        "full_ingest_s": round(full_s, 3), "full_over_decode": round(full_s / decode_s, 3),
        "events_written": full.events_written, "increment_rows_read": inc.observations_read,
        "increment_s": round(inc_s, 3), "increment_over_full": round(inc_s / full_s, 4),
        "increment_events_written": inc.events_written,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.n:,} TC-string observations over {subjects:,} subjects")
    print(f"  decode alone   {decode_s:8.2f} s")
    print(f"  full ingest    {full_s:8.2f} s   {full_s / decode_s:5.2f}x decoding alone (target <= 2x); "
          f"{full.events_written:,} events written")  # fmt: skip
    print(f"  1% increment   {inc_s:8.2f} s   {inc_s / full_s:6.1%} of the full ingest (target <= 5%); "
          f"{inc.observations_read:,} rows read")  # fmt: skip


if __name__ == "__main__":
    main()
