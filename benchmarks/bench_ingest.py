"""Benchmark consent-source ingestion across the kinds: a full ingest against decoding alone, a 1%
increment, peak memory, and the log's size against the decision changes.

    python benchmarks/bench_ingest.py [--n 200000] [--subjects N] [--kinds tcf,gpp,...] [--seed 1]
                                      [--memory-limit 2GB] [--json]

Builds, in a fresh DuckDB file, --n observations over --subjects subjects (default n/10), split
across the kinds in the proportions of MIX (TC strings, GPP strings, GPC headers on web requests,
Segment events, OneTrust cookies, Consent Mode states, Fides preference history), each table a
seeded mix of a small pool of realistic values (accept-all, reject-all, partial purposes, a vendor
missing, a publisher restriction, unusable and undecodable TC strings; US opt-outs and GPC in GPP;
...), streamed in over 30 days (arrival an hour after the event). Then, in one run:

  decode alone   read every row and decode its signal (consentgate.signals: tcf, gpp, gpc; JSON for
                 Segment, the groups string for OneTrust; Consent Mode and Fides have nothing to decode)
  full ingest    consentgate.sources.ingest.ingest of every source into an empty log
  increment      1% more rows in every table, arriving a day later, ingested past the watermarks

and prints seconds, ratios (the issue's targets: full within 2x of decoding alone; the increment at
most 5% of the full ingest), the process's peak memory (RSS, DuckDB's included; DuckDB is held to
--memory-limit and spills beyond it), and the log's size against the observations and against the
decisions: after the full ingest, the subjects whose latest observation (any source) decides; after
the increment, the subjects whose decision it changed, both counted in SQL from the pools' statuses
(Fides keeps its history: every new choice is written). A signal repeated on
every request adds observations, not events. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "signals"))  # tcbits: the test suite's independent bit writer

from tcbits import bits, disclosed, tc, vendor_bitfield  # noqa: E402

START = datetime(2026, 1, 1)
# kind -> share of the observations
MIX = {
    "tcf": 0.35,
    "gpc": 0.30,
    "gpp": 0.10,
    "segment": 0.10,
    "onetrust": 0.07,
    "consent_mode": 0.05,
    "fides": 0.03,
}
_TS = {"event_ts": "seen_at", "recorded_at": "loaded_at"}
SOURCES: dict[str, dict[str, Any]] = {
    "tcf": {
        "name": "euconsent", "kind": "tcf", "table": "raw.tc_strings",
        "columns": {"subject": "customer_id", "signal": "value", **_TS},
        "purposes": {"ad_targeting": {"tcf_purposes": [1, 3, 4], "vendors": [755]}},
    },
    "gpp": {
        "name": "gpp", "kind": "gpp", "table": "raw.gpp_strings",
        "columns": {"subject": "customer_id", "signal": "value", **_TS},
        "purposes": {"ad_targeting": {"tcf_purposes": [1, 3, 4], "vendors": [755],
                                      "us_opt_outs": ["SaleOptOut", "TargetedAdvertisingOptOut"], "gpc": True}},
    },
    "gpc": {
        "name": "web_gpc", "kind": "gpc", "table": "raw.web_requests",
        "columns": {"subject": "customer_id", "signal": "value", **_TS}, "purposes": ["ad_targeting"],
    },
    "segment": {
        "name": "segment", "kind": "segment", "table": "raw.segment_tracks",
        "columns": {"subject": "customer_id", "signal": "value", **_TS}, "purposes": {"Advertising": "ad_targeting"},
    },
    "onetrust": {
        "name": "optanon", "kind": "onetrust", "table": "raw.optanon",
        "columns": {"subject": "customer_id", "signal": "value", **_TS}, "purposes": {"C0004": "ad_targeting"},
    },
    "consent_mode": {
        "name": "gtag", "kind": "consent_mode", "table": "raw.consent_states",
        "columns": {"subject": "customer_id", "ad_user_data": "value", "ad_personalization": "value2", **_TS},
        "purposes": {"ad_user_data": "ad_targeting", "ad_personalization": "ad_targeting"},
    },
    "fides": {
        "name": "fides", "kind": "fides", "table": "raw.fides_history",
        "columns": {"subject": "customer_id", "preference": "value", "notice_key": "value2", "id": "row_id",
                    "event_ts": "seen_at", "recorded_at": "loaded_at"},
        "purposes": {"marketing_advertising": "ad_targeting"},
    },
}  # fmt: skip


def restriction_bits(purpose: int, kind: int, vendor: int) -> str:
    """One publisher restriction (purpose, type, a single vendor)."""
    return bits(1, 12) + bits(purpose, 6) + bits(kind, 2) + bits(1, 12) + "0" + bits(vendor, 16)


def tc_strings(rng: random.Random) -> list[str]:
    """A few hundred distinct, realistic TC strings (about 60% grant the benchmark's purpose)."""
    out = []
    for i in range(300):
        created = 17_100_000_000 + i * 3_600
        vendors = sorted(
            rng.sample(range(1, 1200), rng.randint(0, 60)) + ([755] if rng.random() < 0.8 else [])
        )
        purposes = (
            [1, 2, 3, 4, 7, 9, 10] if rng.random() < 0.7 else rng.sample(range(1, 11), rng.randint(0, 4))
        )
        extra = {"restrictions": restriction_bits(4, 0, 755)} if rng.random() < 0.05 else {}
        cmp_id = 1 if rng.random() < 0.02 else 10
        core = {
            "created": created,
            "purposes": purposes,
            "vendor_consents": vendor_bitfield(vendors, 1200),
            "cmp_id": cmp_id,
        }
        out.append(tc(None, disclosed(vendors or [1]), **core, **extra))
    return out + ["CPxyz-not-a-tc-string"]


def pools() -> dict[str, list[tuple[str | None, str | None]]]:
    """kind -> the distinct (value, value2) rows its table is drawn from."""
    from consentgate.demo import gpp_header, usnat_section

    tcs = tc_strings(random.Random(1))
    us = [usnat_section(False, False)] * 6 + [usnat_section(True, False), usnat_section(False, True)]
    consent = [
        json.dumps({"consent": {"categoryPreferences": {"Advertising": a, "Analytics": True}}})
        for a in (True, False)
    ]
    return {
        "tcf": [(s, None) for s in tcs],
        "gpp": [(f"{gpp_header(2)}~{s}", None) for s in tcs[:60]] + [(f"{gpp_header(7)}~{u}", None) for u in us]
        + [("DBABMA~garbage", None)],
        "gpc": [(None, None)] * 30 + [("1", None)],  # the header absent on most requests
        "segment": [(consent[0], None)] * 6 + [(consent[1], None)] * 3 + [(json.dumps({"page": {"path": "/"}}), None)],
        "onetrust": [(f"isGpcEnabled=0&groups=C0001%3A1%2CC0002%3A1%2CC0004%3A{g}", None) for g in (1, 1, 1, 0)]
        + [("isGpcEnabled=0&groups=C0001%3A1", None)],
        "consent_mode": [("granted", "granted")] * 5 + [("granted", "denied"), ("denied", "denied"), (None, None)],
        "fides": [("opt_in", "marketing_advertising")] * 4 + [("opt_out", "marketing_advertising"),
                                                             ("acknowledge", "essential")],
    }  # fmt: skip


def build(
    con: Any, counts: dict[str, int], subjects: int, seed: int, day0: int = 0, first: bool = True
) -> None:
    """Append counts[kind] rows to each kind's table (created when `first`), spread over 30 days from day0."""
    for kind, n in counts.items():
        table = SOURCES[kind]["table"]
        if first:
            con.execute("CREATE SCHEMA IF NOT EXISTS raw")
            con.execute(
                f"CREATE TABLE {table} (row_id varchar, customer_id varchar, value varchar, value2 varchar, "
                "seen_at timestamp, loaded_at timestamp)"
            )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE pool_{kind} (i integer, value varchar, value2 varchar)"
            )
            con.executemany(
                f"INSERT INTO pool_{kind} VALUES (?, ?, ?)", [(i, *v) for i, v in enumerate(pools()[kind])]
            )
        size = con.execute(f"SELECT count(*) FROM pool_{kind}").fetchone()[0]
        ts = f"TIMESTAMP '{START}' + to_seconds(({day0} * 86400 + r * 2592000 // {n})::bigint)"
        con.execute(
            f"INSERT INTO {table} SELECT '{kind}-{day0}-' || r, 'c' || (hash(r, {seed}, '{kind}') % {subjects}), "
            f"p.value, p.value2, {ts}, {ts} + INTERVAL 1 HOUR FROM range({n}) t(r) "
            f"JOIN pool_{kind} p ON p.i = hash(r, {seed}, '{kind}', 'v') % {size}"
        )


def decoder(kind: str) -> Callable[[Any], Any]:
    from consentgate.signals import SignalError, gpc, gpp, tcf
    from consentgate.sources.kinds.onetrust import groups

    def safely(f: Callable[[str], Any]) -> Callable[[Any], Any]:
        def run(value: Any) -> Any:
            try:
                return f(value) if value is not None else None
            except (SignalError, ValueError):
                return None

        return run

    return {
        "tcf": safely(tcf.decode), "gpp": safely(gpp.decode), "gpc": gpc.decode, "segment": safely(json.loads),
        "onetrust": safely(groups), "consent_mode": lambda v: v, "fides": lambda v: v,
    }[kind]  # fmt: skip


def decode_alone(con: Any, kinds: list[str]) -> float:
    t = time.perf_counter()
    for kind in kinds:
        decode = decoder(kind)
        cur = con.cursor()
        cur.execute(f"SELECT customer_id, value, value2, seen_at, loaded_at FROM {SOURCES[kind]['table']}")
        while rows := cur.fetchmany(5000):
            for _, value, _, _, _ in rows:
                decode(value)
        cur.close()
    return time.perf_counter() - t


def statuses(con: Any, kinds: list[str], sources: dict[str, Any]) -> None:
    """pool_status(kind, value, value2, granted): each pool value's decision (1 grants, 0 refuses,
    withdraws or is invalid; no row: says nothing), from the kind's own mapper."""
    from consentgate.sources.kinds import Rejected
    from consentgate.sources.reading import observations

    con.execute(
        "CREATE OR REPLACE TEMP TABLE pool_status (kind varchar, value varchar, value2 varchar, granted integer)"
    )
    for kind in kinds:
        src = sources[kind]
        logical = {actual: name for name, actual in src.columns}
        for value, value2 in set(pools()[kind]):
            row = {logical.get("value", "signal"): value, logical.get("value2", "value2"): value2}
            if kind == "consent_mode":
                row = {"ad_user_data": value, "ad_personalization": value2}
            try:
                found = observations(src, row)
            except Rejected:
                continue
            if found:
                con.execute(
                    "INSERT INTO pool_status VALUES (?, ?, ?, ?)",
                    [kind, value, value2, int(all(o.status == "granted" for o in found))],
                )


def decisions(con: Any, kinds: list[str], name: str) -> int:
    """Temp table `name`(customer_id, granted): each subject's decision, that of its latest
    observation that says something (any source; at one instant the most restrictive, as the rule
    orders ties), computed in SQL from the pool's statuses. Returns the number of subjects decided."""
    union = " UNION ALL ".join(
        f"SELECT t.customer_id, t.seen_at, s.granted FROM {SOURCES[k]['table']} t JOIN pool_status s "
        f"ON s.kind = '{k}' AND s.value IS NOT DISTINCT FROM t.value AND s.value2 IS NOT DISTINCT FROM t.value2"
        for k in kinds
    )
    instants = (
        f"SELECT customer_id, seen_at, min(granted) AS granted FROM ({union}) o GROUP BY customer_id, seen_at"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT customer_id, arg_max(granted, seen_at) AS granted "
        f"FROM ({instants}) i GROUP BY customer_id"
    )
    return int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])


def changed(con: Any, before: str, after: str) -> int:
    """Subjects whose decision the increment changed (or made: no decision before)."""
    return int(
        con.execute(
            f"SELECT count(*) FROM {after} a LEFT JOIN {before} b USING (customer_id) "
            "WHERE b.customer_id IS NULL OR a.granted <> b.granted"
        ).fetchone()[0]
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--subjects", type=int, default=None)
    ap.add_argument(
        "--kinds", default=",".join(MIX), help="comma-separated kinds (default: all, in MIX's shares)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB's memory_limit (it spills to disk beyond)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import duckdb
    from consentgate.engine.session import session_for
    from consentgate.engine.source_config import parse_sources
    from consentgate.sources.ingest import ingest

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    share = sum(MIX[k] for k in kinds)
    counts = {k: max(int(args.n * MIX[k] / share), 1) for k in kinds}
    n = sum(counts.values())
    subjects = args.subjects or max(n // 10, 1)
    parsed = parse_sources([SOURCES[k] for k in kinds], {"ad_targeting"}, "bench")
    sources = dict(zip(kinds, parsed, strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        con.execute(f"SET temp_directory = '{Path(tmp) / 'spill'}'")
        t = time.perf_counter()
        build(con, counts, subjects, args.seed)
        build_s, build_mb = time.perf_counter() - t, peak_mb()
        statuses(con, kinds, sources)
        decided = decisions(con, kinds, "decided_full")
        session = session_for(con, "duckdb")
        decode_s = decode_alone(con, kinds)
        decode_mb = peak_mb()
        t = time.perf_counter()
        full = ingest(session, parsed)
        full_s, full_mb = time.perf_counter() - t, peak_mb()
        log_full = con.execute("SELECT count(*) FROM consent_events").fetchone()[0]
        build(
            con,
            {k: max(c // 100, 1) for k, c in counts.items()},
            subjects,
            args.seed + 1,
            day0=31,
            first=False,
        )
        decisions(con, kinds, "decided_after")
        changes = changed(con, "decided_full", "decided_after")
        t = time.perf_counter()
        inc = ingest(session, parsed)
        inc_s, inc_mb = time.perf_counter() - t, peak_mb()
        log_after = con.execute("SELECT count(*) FROM consent_events").fetchone()[0]
        con.close()
    result = {
        "observations": n, "subjects": subjects, "per_kind": counts, "build_s": round(build_s, 1),
        "decode_alone_s": round(decode_s, 2), "full_ingest_s": round(full_s, 2),
        "full_over_decode": round(full_s / decode_s, 3), "increment_observations": sum(r.observations_read for r in inc),
        "increment_s": round(inc_s, 2), "increment_over_full": round(inc_s / full_s, 4),
        "log_events_full": log_full, "subjects_decided_full": decided,
        "increment_events_written": log_after - log_full, "increment_decisions_changed": changes,
        "fides_observations_full": counts.get("fides", 0),
        "events_written_by_kind": {k: r.events_written for k, r in zip(kinds, full, strict=True)},
        "increment_events_by_kind": {k: r.events_written for k, r in zip(kinds, inc, strict=True)},
        "peak_rss_mb": {"build": round(build_mb), "decode": round(decode_mb), "full_ingest": round(full_mb),
                        "increment": round(inc_mb)},
        "duckdb_memory_limit": args.memory_limit,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{n:,} observations over {subjects:,} subjects: "
        + ", ".join(f"{k} {c:,}" for k, c in counts.items())
    )
    print(f"  build          {build_s:8.1f} s")
    print(f"  decode alone   {decode_s:8.2f} s")
    print(f"  full ingest    {full_s:8.2f} s   {full_s / decode_s:5.2f}x decoding alone (target <= 2x)")
    print(f"  1% increment   {inc_s:8.2f} s   {inc_s / full_s:6.1%} of the full ingest (target <= 5%)")
    print(f"  log            full: {log_full:,} events for {n:,} observations, {decided:,} subjects decided; "
          f"increment: {log_after - log_full:,} events for {changes:,} decisions changed "
          f"(fides keeps history: {result['increment_events_by_kind'].get('fides', 0):,} of them)")  # fmt: skip
    print(f"  peak RSS       {result['peak_rss_mb']} MB (DuckDB memory_limit {args.memory_limit})")


if __name__ == "__main__":
    main()
