"""The demo warehouse's raw consent sources (consentgate.demo): real strings, ingested by the example
policy into the decisions an independent reading of the same raw rows gives, and the targets follow.

The independent reading decodes every TC and GPP string with the IAB's own libraries
(@iabtechlabtcf/core, @iabgpp/cmpapi, through tests/signals/reference), maps each raw row with the
plain rules of docs/sources.md written out again here, and lets the latest observation of any source
decide (ties: the most restrictive), as docs/semantics.md says. Nothing here is a hard-coded count.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from consentgate import demo
from consentgate.cli.commands.demo import ingest_policy_sources
from consentgate.engine.enforcement import run_policy
from consentgate.engine.policy import load
from consentgate.engine.session import open_duckdb
from consentgate.sources.ingest import ingest

ANCHOR = datetime(2026, 11, 20, 11)
SUBJECTS = 300
SEVERITY = {"withdrawn": 0, "refused": 1, "invalid": 2, "expired": 3, "granted": 4}
AD_PURPOSES, AD_VENDOR = {1, 3, 4}, 755
NO_LEGITIMATE_INTEREST = {1, 3, 4, 5, 6}
US_OPT_OUTS = ("SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut")


def _reference_module() -> Any:
    path = Path(__file__).resolve().parents[1] / "signals" / "conftest.py"
    spec = importlib.util.spec_from_file_location("consentgate_signals_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def iab() -> Iterator[Any]:
    """The IAB's reference decoders, one Node process for this module."""
    ref = _reference_module()
    ref.ensure_installed()
    process = ref.Reference()
    try:
        yield process
    finally:
        process.close()


# -- an independent reading of the raw sources ------------------------------------------------------


def _tc_status(fields: dict[str, Any] | None) -> str:
    """A TC string (reference TCModel fields, None: did not decode) for ad_targeting."""
    if fields is None:
        return "invalid"
    li = set(fields["purposeLegitimateInterests"]) | set(fields.get("publisherLegitimateInterests") or [])
    usable = (
        fields["version"] == 2
        and fields["isServiceSpecific"]
        and fields["tcfPolicyVersion"] >= 4
        and fields["cmpId"] >= 2
        and fields["vendorListVersion"] > 0
        and bool(fields["vendorsDisclosed"])
        and not fields.get("vendorsAllowed")
        and not li & NO_LEGITIMATE_INTEREST
    )
    if not usable:
        return "invalid"
    restricted = any(
        r["purposeId"] in AD_PURPOSES and r["restrictionType"] in (0, 2) and AD_VENDOR in r["vendors"]
        for r in fields.get("publisherRestrictions") or []
    )
    granted = (
        AD_PURPOSES <= set(fields["purposeConsents"])
        and AD_VENDOR in fields["vendorConsents"]
        and not fields["purposeOneTreatment"]
        and not restricted
    )
    return "granted" if granted else "refused"


def _decoded(iab: Any, op: str, strings: set[str]) -> dict[str, dict[str, Any] | None]:
    ordered = sorted(strings)
    replies = iab.call_many([{"op": op, "string": s} for s in ordered])
    return {s: r.get("ok") if "ok" in r else None for s, r in zip(ordered, replies, strict=True)}


def _rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


Obs = tuple[str, str, datetime, str, Any]


def _cmp(con: Any, iab: Any, where: str) -> list[Obs]:
    """The CMP export: the TC string column (tcf) and the GPP string column (gpp)."""
    cmp = _rows(con, "SELECT customer_id, tc_string, gpp_string, created_at FROM raw.cmp_consents" + where)
    inner = {g.split("~")[1] for _, _, g, _ in cmp if g}
    tcs = _decoded(iab, "decode_tcf", {r[1] for r in cmp if r[1]} | inner)
    gpps = _decoded(iab, "decode_gpp", {r[2] for r in cmp if r[2]})
    out: list[Obs] = []
    for customer, tc, gpp, ts in cmp:
        if tc:
            out.append((str(customer), "ad_targeting", ts, _tc_status(tcs[tc]), None))
        sections = gpps.get(gpp) if gpp else None
        if gpp and sections is None:
            out.append((str(customer), "ad_targeting", ts, "invalid", None))
        elif sections and "usnat" in sections:
            us = sections["usnat"]
            if any(us.get(f) == 1 for f in US_OPT_OUTS) or us.get("Gpc") is True:
                out.append((str(customer), "ad_targeting", ts, "withdrawn", None))
        elif sections and 2 in sections["sectionIds"]:
            out.append((str(customer), "ad_targeting", ts, _tc_status(tcs[gpp.split("~")[1]]), None))
    return out


def _segment(con: Any, where: str) -> list[Obs]:
    out: list[Obs] = []
    for user, context, ts in _rows(con, 'SELECT user_id, context, "timestamp" FROM segment.tracks' + where):
        prefs = json.loads(context).get("consent", {}).get("categoryPreferences", {})
        if user is not None and "Advertising" in prefs:
            value = prefs["Advertising"]
            status = "granted" if value is True else "refused" if value is False else "invalid"
            out.append((user, "ad_targeting", ts, status, None))
    return out


def observations(con: Any, iab: Any, arrived_by: datetime | None = None) -> list[Obs]:
    """(subject, purpose, event time, status, expires_at) of every raw row that says something, read
    independently of consentgate's mappers; only rows arrived by `arrived_by` if given."""

    def where(column: str) -> str:
        return f" WHERE {column} <= TIMESTAMP '{arrived_by}'" if arrived_by else ""

    out = _cmp(con, iab, where("exported_at")) + _segment(con, where("received_at"))
    web = _rows(con, "SELECT customer_id, sec_gpc, requested_at FROM raw.web_logs" + where("loaded_at"))
    out += [
        (str(c), "ad_targeting", ts, "withdrawn", None)
        for c, h, ts in web
        if c is not None and h and h.strip() == "1"
    ]
    fides = _rows(
        con,
        "SELECT email, preference, notice_key, created_at FROM fides.privacypreferencehistory"
        + where("created_at"),
    )
    out += [
        (email, "email_marketing", ts, "granted" if pref == "opt_in" else "refused", None)
        for email, pref, notice, ts in fides
        if email and notice == "newsletter" and pref in ("opt_in", "opt_out")
    ]
    account = _rows(
        con,
        "SELECT subject_id, purpose, status, event_ts, expires_at FROM raw.preference_center"
        + where("recorded_at"),
    )
    for subject, purpose, status, ts, expires in account:
        if purpose.strip().lower() == "ad_targeting":
            s = status.strip().lower()
            out.append((subject, "ad_targeting", ts, "refused" if s == "denied" else s, expires))
    return out


def expected_granted(obs: list[Obs], purpose: str, as_of: datetime) -> set[str]:
    """Subject keys (A-Z lowered for e-mail addresses, as the datasets are enforced) whose latest
    observation grants, unexpired at `as_of`."""
    latest: dict[str, tuple[datetime, int]] = {}
    for subject, p, ts, status, expires in obs:
        if p != purpose:
            continue
        if status == "granted" and expires is not None and expires <= as_of:
            status = "expired"
        key = subject.strip().lower() if purpose == "email_marketing" else subject.strip()
        rank = (ts, -SEVERITY[status])
        latest[key] = max(latest.get(key, rank), rank)
    return {k for k, (_, neg) in latest.items() if -neg == SEVERITY["granted"]}


def targets(path: Path) -> tuple[set[str], set[str]]:
    """(customers in consented.customers, lowered addresses in consented.email_engagement)."""
    with duckdb.connect(str(path), read_only=True) as con:
        ads = {str(r[0]) for r in _rows(con, "SELECT customer_id FROM consented.customers")}
        mail = {r[0].strip().lower() for r in _rows(con, "SELECT email FROM consented.email_engagement")}
    return ads, mail


def eligible(path: Path, obs: list[Obs], as_of: datetime) -> tuple[set[str], set[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        customers = {str(r[0]) for r in _rows(con, "SELECT customer_id FROM raw.customers")}
        mail = {r[0].strip().lower() for r in _rows(con, "SELECT email FROM raw.email_engagement")}
    return customers & expected_granted(obs, "ad_targeting", as_of), mail & expected_granted(
        obs, "email_marketing", as_of
    )


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


# -- the tests --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo built with a fixed anchor: history ingested; enforced; the last day ingested; enforced."""
    path = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    policy = load(demo.demo_policy_path())
    session = open_duckdb(path, must_exist=False)
    try:
        history = demo.build(session, SUBJECTS, ingest=ingest_policy_sources, anchor=ANCHOR)
    finally:
        session.close()
    before = run_policy(policy, path)
    before_targets = targets(path)
    session = open_duckdb(path)
    try:
        last_day = ingest(session, policy.sources, consent_table=policy.consent_table, columns=policy.columns)
        again = ingest(session, policy.sources, consent_table=policy.consent_table, columns=policy.columns)
    finally:
        session.close()
    after = run_policy(policy, path)
    return {
        "path": path, "policy": policy, "history": history, "last_day": last_day, "again": again,
        "before": before, "after": after, "before_targets": before_targets, "after_targets": targets(path),
    }  # fmt: skip


def test_every_source_of_the_example_policy_reads_the_demo_and_writes_events(warehouse) -> None:
    history = {r.source: r for r in warehouse["history"]}
    assert sorted(history) == sorted(s.name for s in warehouse["policy"].sources)
    for r in history.values():
        assert r.status == "success" and r.observations_read > 0 and r.events_written > 0, r.source
    # Signals repeated on every request grow the log by decision changes, not by observations.
    gpc = history["web_gpc"]
    assert gpc.events_written < gpc.observations_read - sum(gpc.rejected.values())
    # What real sources hold besides consent is counted, not written.
    assert (
        history["web_gpc"].rejected["no_opt_out"] > 0 and history["web_gpc"].rejected["missing_subject"] > 0
    )
    assert history["segment_consent"].rejected["no_consent_object"] > 0
    assert history["cmp_tcf"].rejected["no_signal"] > 0  # US visitors have GPP strings only
    assert history["fides_newsletter"].rejected["unmapped_notice"] > 0


def test_the_demo_strings_decode_as_the_iab_libraries_decode_them(iab) -> None:
    from consentgate.signals import decode

    strings = demo.tc_strings(ANCHOR)
    decoded = _decoded(iab, "decode_tcf", set(strings))
    for i, choice in enumerate(demo.TC_ORDER):
        for s in strings[i * demo.MONTHS : (i + 1) * demo.MONTHS]:
            if choice == "truncated":
                assert decoded[s] is None
                continue
            fields = decoded[s]
            assert fields is not None, choice
            assert sorted(fields["purposeConsents"]) == list(demo.TC_CHOICES[choice][0])
            assert sorted(fields["vendorConsents"]) == list(demo.TC_CHOICES[choice][1])
            assert decode("tcf", s).usable, choice  # usable as consent: TCF 2.3, disclosed vendors
            assert _tc_status(fields) == ("granted" if choice == "accept_all" else "refused")
    gpp = demo.gpp_strings()
    sections = _decoded(iab, "decode_gpp", set(gpp.values()))
    assert sections[gpp["us_no_opt_out"]]["usnat"]["SaleOptOut"] == 2
    assert sections[gpp["us_opted_out"]]["usnat"]["SaleOptOut"] == 1
    assert sections[gpp["us_gpc"]]["usnat"]["Gpc"] is True


def test_history_decides_as_an_independent_reading_of_the_raw_rows_and_the_targets_follow(
    warehouse, iab
) -> None:
    with duckdb.connect(str(warehouse["path"]), read_only=True) as con:
        obs = observations(con, iab, arrived_by=ANCHOR - timedelta(days=1))
    as_of = naive(warehouse["before"].as_of)
    ads, mail = eligible(warehouse["path"], obs, as_of)
    assert ads and mail
    assert warehouse["before_targets"] == (ads, mail)


def test_the_last_days_signals_become_decisions_and_leave_the_targets(warehouse, iab) -> None:
    with duckdb.connect(str(warehouse["path"]), read_only=True) as con:
        obs = observations(con, iab)
    as_of = naive(warehouse["after"].as_of)
    ads, mail = eligible(warehouse["path"], obs, as_of)
    assert warehouse["after_targets"] == (ads, mail)
    before_ads, before_mail = warehouse["before_targets"]
    assert before_ads - ads and before_mail - mail  # tonight's withdrawals and unsubscriptions
    assert sum(r.events_written for r in warehouse["last_day"]) > 0
    assert [r.events_written for r in warehouse["again"]] == [0] * len(warehouse["again"])


def test_rebuilding_the_demo_starts_a_fresh_log(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    counts = []
    for _ in range(2):
        session = open_duckdb(path, must_exist=False)
        try:
            records = demo.build(session, 50, ingest=ingest_policy_sources, anchor=ANCHOR)
            counts.append(
                (session.one("SELECT count(*) FROM consent_events")[0], [r.events_written for r in records])
            )
        finally:
            session.close()
    assert counts[0] == counts[1] and counts[0][0] > 0


def test_raw_sources_grow_with_subjects(tmp_path: Path) -> None:
    sizes = {}
    for n in (500, 2000):
        session = open_duckdb(tmp_path / f"w{n}.duckdb", must_exist=False)
        try:
            demo.build(session, n, ingest=ingest_policy_sources, anchor=ANCHOR)
            sizes[n] = {t: session.one(f"SELECT count(*) FROM {t}")[0] for t in demo.SOURCE_TABLES}
        finally:
            session.close()
    for table in demo.SOURCE_TABLES:
        assert 2 * sizes[500][table] < sizes[2000][table] < 8 * sizes[500][table], table


def test_the_demo_sources_ingest_on_postgresql_through_psycopg_3(warehouse, iab, pg_db) -> None:
    """The raw sources copied into PostgreSQL and ingested from scratch over psycopg 3 (the driver
    Airflow's PostgresHook hands out with SQLAlchemy 2): the same decisions as the independent reading."""
    import psycopg
    from consentgate.engine.enforcement import enforce
    from consentgate.engine.session import session_for

    con = psycopg.connect(host=pg_db.host, port=pg_db.port, user=pg_db.user, dbname=pg_db.dbname)
    try:
        with duckdb.connect(str(warehouse["path"]), read_only=True) as dk, con.cursor() as cur:
            for table in demo.SOURCE_TABLES:
                schema, name = table.split(".")
                cols = dk.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                    [schema, name],
                ).fetchall()
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                spec = ", ".join(f'"{c}" {"text" if t == "VARCHAR" else t}' for c, t in cols)
                cur.execute(f"CREATE TABLE {table} ({spec})")
                rows = dk.execute(f"SELECT * FROM {table}").fetchall()
                cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(cols))})", rows)
            cur.execute("CREATE TABLE people (customer_id text)")
            customers = [str(r[0]) for r in dk.execute("SELECT customer_id FROM raw.customers").fetchall()]
            cur.executemany("INSERT INTO people VALUES (%s)", [(c,) for c in customers])
            obs = observations(dk, iab)
        con.commit()
        session = session_for(con, "postgres")
        policy = warehouse["policy"]
        records = ingest(session, policy.sources, consent_table=policy.consent_table, columns=policy.columns)
        assert all(r.status == "success" and r.events_written > 0 for r in records)
        as_of = datetime.now(UTC).replace(tzinfo=None)
        enforce(
            connection=con, dialect="postgres", source="people", target="kept_people",
            subject_column="customer_id", purpose="ad_targeting", as_of=as_of,
        )  # fmt: skip
        with con.cursor() as cur:
            cur.execute("SELECT customer_id FROM kept_people")
            kept = {r[0] for r in cur.fetchall()}
        assert kept == set(customers) & expected_granted(obs, "ad_targeting", as_of)
    finally:
        con.close()
