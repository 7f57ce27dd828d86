"""A realistic, deterministic synthetic marketing warehouse in DuckDB, for the demo and the nightly DAG.

Built in SQL from `range()` and `hash()`, so the same --subjects gives the same data. Marketing data
goes to schema `raw` (customers, web events, e-mail engagement, purchases). Consent lives where it
lives in a real company, as the products write it, and the example policy's `sources:` ingest it:

- `raw.cmp_consents`: the CMP's export, one row per consent saved: a TC string (`tc_string`, EU
  visitors) and a GPP string (`gpp_string`: its tcfeuv2 section for EU visitors, the US National
  section, with a GPC sub-section when the browser sent GPC, for US visitors);
- `raw.web_logs`: web requests with the `Sec-GPC` header (`sec_gpc`, `1` or absent);
- `segment.tracks`: Segment track events with `context.consent.categoryPreferences` (US site);
- `fides.privacypreferencehistory`: Fides' privacy preference history (the newsletter, by e-mail);
- `raw.preference_center`: the account settings page's own log, already in consentgate's event shape.

The consent log `main.consent_events` is built by ingestion only. `build` ingests every observation
up to a day before the newest one (the history a warehouse already has) and then loads the last day's
observations, which the next `consentgate ingest` (or the nightly DAG) turns into decisions.

TC and GPP strings are encoded here, bit by bit as the IAB specifications lay them out (TCF v2.3
core and disclosed-vendors segments, GPP header, US National v2 section, GPC sub-section), and
decode with consentgate's decoders exactly as the IAB's libraries decode them (tests/sources).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from consentgate.engine import lineage
from consentgate.engine.policy import Policy, load
from consentgate.engine.session import Session

#: Ingests the policy's sources into its consent log (consentgate.sources.ingest.ingest, given by the
#: caller: the demo sits beside `sources` in the layers and does not import it).
Ingest = Callable[[Session, Policy], object]

DEMO_POLICY = "examples/demo_policy.yml"
#: The consent sources' raw tables and the column whose value orders arrival (the sources' watermark).
SOURCE_TABLES = {
    "raw.cmp_consents": "exported_at",
    "raw.web_logs": "loaded_at",
    "segment.tracks": "received_at",
    "fides.privacypreferencehistory": "created_at",
    "raw.preference_center": "recorded_at",
}
MARKETING_TABLES = ("raw.customers", "raw.web_events", "raw.email_engagement", "raw.purchases")
#: Months of TC strings (one string per choice and month: the CMP writes the day it was saved, to the
#: month is close enough for a demo and keeps the strings a small literal list).
MONTHS = 15


def demo_policy_path() -> Path:
    return Path(str(resources.files("consentgate").joinpath(DEMO_POLICY)))


# -- TC and GPP strings -----------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
CMP_ID, CMP_VERSION, VENDOR_LIST_VERSION, POLICY_VERSION = 300, 4, 148, 5
#: GVL vendor ids: 755 is Google Advertising Products (the ad platform the demo's audiences go to).
GOOGLE = 755
VENDORS = (10, 32, 52, GOOGLE, 804)
ALL_PURPOSES = tuple(range(1, 11))
LI_PURPOSES = (2, 7, 8, 9, 10)  # TCF 2.2+ allows legitimate interest only for these
#: EU choices: purposes consented, vendors consented. Refusals as the banners' buttons write them.
TC_CHOICES = {
    "accept_all": (ALL_PURPOSES, VENDORS),
    "reject_all": ((), ()),
    "no_personalised_ads": ((1, 2, 7, 8, 9, 10), VENDORS),  # purposes 3 and 4 refused
    "no_google": (ALL_PURPOSES, (10, 32, 52, 804)),  # the vendor the data would go to refused
}
TC_ORDER = ("accept_all", "reject_all", "no_personalised_ads", "no_google", "truncated")


def _bits(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def _ids(ids: Sequence[int], width: int) -> str:
    return "".join("1" if i in ids else "0" for i in range(1, width + 1))


def _b64(bitstring: str, pad: int) -> str:
    bitstring += "0" * (-len(bitstring) % pad)
    return "".join(_B64[int(bitstring[i : i + 6], 2)] for i in range(0, len(bitstring), 6))


def _letters(code: str) -> str:
    return _bits(ord(code[0]) - 65, 6) + _bits(ord(code[1]) - 65, 6)


def _vendor_bits(ids: Sequence[int]) -> str:
    max_id = max(ids, default=0)
    return _bits(max_id, 16) + "0" + _ids(ids, max_id)


def tc_string(created: datetime, purposes: Sequence[int], vendors: Sequence[int]) -> str:
    """A TCF v2.3 TC string (policy version 5): core segment and the mandatory disclosed-vendors one.

    Legitimate interest is claimed only for the purposes that allow it; every vendor is disclosed."""
    ds = int(created.replace(tzinfo=UTC).timestamp()) * 10
    core = _bits(2, 6) + _bits(ds, 36) + _bits(ds, 36) + _bits(CMP_ID, 12) + _bits(CMP_VERSION, 12)
    core += _bits(1, 6) + _letters("EN") + _bits(VENDOR_LIST_VERSION, 12) + _bits(POLICY_VERSION, 6)
    core += "1" + "0" + _ids((), 12) + _ids(purposes, 24) + _ids(LI_PURPOSES, 24) + "0" + _letters("DE")
    core += _vendor_bits(vendors) + _vendor_bits((10, 32)) + _bits(0, 12)
    return _b64(core, 24) + "." + _b64(_bits(1, 3) + _vendor_bits(VENDORS), 24)


def _fibonacci(value: int) -> str:
    fib = [1, 2]
    while fib[-1] <= value:
        fib.append(fib[-1] + fib[-2])
    code = ["0"] * len(fib)
    for i in range(len(fib) - 1, -1, -1):
        if fib[i] <= value:
            code[i], value = "1", value - fib[i]
    return "".join(code).rstrip("0") + "1"


def gpp_header(section_id: int) -> str:
    """A GPP header (type 3, version 1) naming one section."""
    return _b64(_bits(3, 6) + _bits(1, 6) + _bits(1, 12) + "0" + _fibonacci(section_id), 6)


def usnat_section(opted_out: bool, gpc: bool) -> str:
    """A US National v2 section: notices given; sale, sharing and targeted advertising opted out (1)
    or not (2, which is never consent); with `gpc`, a GPC sub-section with Gpc set."""
    two = "".join(_bits(v, 2) for v in (1, 1, 1, 1, 1, 1) + ((1, 1, 1) if opted_out else (2, 2, 2)))
    rest = "".join(_bits(0, 2) for _ in range(16 + 3 + 1)) + "".join(_bits(v, 2) for v in (1, 2, 2))
    core = _bits(2, 6) + two + rest
    core += "0" * (-len(core) % 8)
    return _b64(core, 6) + ("." + _b64(_bits(1, 2) + "1", 6) if gpc else "")


def tc_strings(anchor: datetime) -> list[str]:
    """One TC string per choice (TC_ORDER) and month back from `anchor`: index choice * MONTHS + month."""
    out = []
    for choice in TC_ORDER:
        for month in range(MONTHS):
            day = (anchor - timedelta(days=30 * month)).replace(day=1, hour=0, minute=0, second=0)
            if choice == "truncated":  # an export that cut the column off: does not decode
                out.append(tc_string(day, *TC_CHOICES["accept_all"])[:40])
            else:
                out.append(tc_string(day, *TC_CHOICES[choice]))
    return out


def gpp_strings() -> dict[str, str]:
    return {
        "us_no_opt_out": f"{gpp_header(7)}~{usnat_section(False, False)}",
        "us_opted_out": f"{gpp_header(7)}~{usnat_section(True, False)}",
        "us_gpc": f"{gpp_header(7)}~{usnat_section(False, True)}",
    }


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


# -- the warehouse ----------------------------------------------------------------------------------


def _pct(salt: str, expr: str = "i") -> str:
    """A deterministic pseudo-random percentile 0..99 of row i."""
    return f"CAST(hash({expr}, '{salt}') % 100 AS BIGINT)"


def _timeline(a: str) -> str:
    """Each customer's consent story (a temp table the raw consent sources are drawn from)."""
    day = "INTERVAL 1 DAY"
    return f"""CREATE OR REPLACE TEMP TABLE demo_timeline AS
        SELECT i, email, country = 'US' AS us, choice, first_ts,
               out_ts, CASE WHEN out_ts IS NULL THEN NULL ELSE channel END AS channel,
               CASE WHEN out_ts IS NOT NULL AND channel <> 'gpc' AND {_pct("out")} < 3 AND NOT today
                    THEN {a} - (2 + {_pct("t4")} % 15) * {day} END AS regrant_ts,
               CASE WHEN choice = 'grant' AND {_pct("exp")} < 12 THEN {a} - (100 + {_pct("t2")}) * {day} END
                 AS loyalty_ts,
               {_pct("gpcbrowser")} < 3 AS gpc_browser,
               CASE WHEN {_pct("mail")} < 75 THEN {a} - (200 + {_pct("t5")}) * {day} END AS mail_ts,
               {_pct("mail")} < 55 AS mail_in,
               CASE WHEN {_pct("mail")} < 55 AND {_pct("unsub")} < 10 THEN
                 CASE WHEN {_pct("unsubtoday")} < 15 THEN {a} - {_pct("tu")} * 13 * INTERVAL 1 MINUTE
                      ELSE {a} - (10 + {_pct("t6")}) * {day} END END AS unsub_ts
        FROM (
          SELECT i, email, country, today, channel,
                 CASE WHEN {_pct("ads")} < 62 THEN 'grant' WHEN {_pct("ads")} < 68 THEN 'deny'
                      WHEN {_pct("ads")} < 69 THEN 'invalid' END AS choice,
                 {a} - (300 + {_pct("t1")}) * {day} - {_pct("h1")} * 13 * INTERVAL 1 MINUTE AS first_ts,
                 CASE WHEN {_pct("ads")} < 62 AND {_pct("out")} < 12 THEN
                   CASE WHEN today THEN {a} - {_pct("tt")} * 14 * INTERVAL 1 MINUTE
                        ELSE {a} - (20 + {_pct("t3")} * 2) * {day} END END AS out_ts
          FROM (SELECT customer_id AS i, email, country, {_pct("today")} < 10 AS today,
                       CASE WHEN {_pct("gpc")} < 33 THEN 'gpc' WHEN {_pct("gpc")} < 66 THEN 'cmp'
                            ELSE 'account' END AS channel
                        FROM raw.customers) c
        ) t"""


def _consent_steps(a: str, n: int, anchor: datetime) -> list[tuple[str, str]]:
    tcs, gpps = tc_strings(anchor), gpp_strings()
    strings = _list(tcs)

    def tc(choice_index: str, ts: str) -> str:
        month = f"least(CAST(datediff('month', {ts}, {a}) AS BIGINT), {MONTHS - 1})"
        return f"{strings}[1 + ({choice_index}) * {MONTHS} + {month}]"

    refusal = f"CASE WHEN {_pct('refuse')} < 60 THEN 1 WHEN {_pct('refuse')} < 85 THEN 2 ELSE 3 END"
    eu_gpp = f"'{gpp_header(2)}~' || "
    segment_ctx = (
        """'{"library":{"name":"analytics.js","version":"5.2.0"},"page":{"path":"' || path || '"}'"""
        """ || CASE WHEN prefs IS NULL THEN '' ELSE ',"consent":{"categoryPreferences":{"Advertising":' """
        """|| prefs || ',"Analytics":true,"Functional":true}}' END || '}'"""
    )
    # The Advertising category of a US customer at time `ts`, as JSON (NULL: no choice made yet).
    prefs = (
        "CASE WHEN t.choice IS NULL OR s.ts < t.first_ts THEN NULL "
        "WHEN t.regrant_ts IS NOT NULL AND s.ts >= t.regrant_ts THEN 'true' "
        "WHEN t.out_ts IS NOT NULL AND s.ts >= t.out_ts THEN 'false' "
        """ELSE CASE t.choice WHEN 'grant' THEN 'true' WHEN 'deny' THEN 'false' ELSE '"yes"' END END"""
    )
    return [
        ("consent timeline", _timeline(a)),
        (
            "CMP export (TC and GPP strings)",
            f"""CREATE OR REPLACE TABLE raw.cmp_consents AS
            WITH saved AS (
              SELECT i, us, first_ts AS ts, CASE choice WHEN 'grant' THEN 0 WHEN 'deny' THEN {refusal}
                     ELSE 4 END AS tc_choice, 'us_no_opt_out' AS us_kind
              FROM demo_timeline WHERE choice IS NOT NULL
              UNION ALL  -- withdrawals made in the banner: EU a refusing string, US an opt-out (GPC: forwarded)
              SELECT i, us, out_ts, {refusal}, CASE channel WHEN 'gpc' THEN 'us_gpc' ELSE 'us_opted_out' END
              FROM demo_timeline WHERE channel IN ('cmp', 'gpc') AND (us OR channel = 'cmp')
            )
            SELECT 'cns_' || substr(md5(CAST(i AS VARCHAR) || '/' || CAST(ts AS VARCHAR)), 1, 20) AS consent_id,
                   i AS customer_id,
                   CASE WHEN us THEN NULL ELSE {tc("tc_choice", "ts")} END AS tc_string,
                   CASE WHEN us THEN {_list(list(gpps.values()))}[CASE us_kind WHEN 'us_no_opt_out' THEN 1
                        WHEN 'us_opted_out' THEN 2 ELSE 3 END]
                        ELSE {eu_gpp}{tc("tc_choice", "ts")} END AS gpp_string,
                   ts AS created_at, ts + INTERVAL 20 MINUTE AS exported_at
            FROM saved""",
        ),
        (
            "web logs (Sec-GPC)",
            f"""CREATE OR REPLACE TABLE raw.web_logs AS
            WITH r AS (
              SELECT j, CASE WHEN {_pct("anon", "j")} < 10 THEN NULL
                             ELSE CAST(1 + hash(j, 'visitor') % {n} AS BIGINT) END AS customer_id,
                     {a} - CAST(hash(j, 'rts') % (86400 * 90) AS BIGINT) * INTERVAL 1 SECOND AS ts
              FROM range(1, {n} * 4 + 1) t(j)
              UNION ALL  -- the request on which a GPC withdrawer's browser first sent the header
              SELECT {n} * 4 + i, i, out_ts FROM demo_timeline WHERE channel = 'gpc'
            )
            SELECT 'req_' || r.j AS request_id, r.customer_id,
                   ['/', '/product', '/cart', '/checkout', '/account'][1 + {_pct("wpath", "r.j")} % 5] AS path,
                   CASE WHEN t.gpc_browser OR (t.channel = 'gpc' AND r.ts >= t.out_ts) THEN '1' END AS sec_gpc,
                   r.ts AS requested_at, date_trunc('hour', r.ts) + INTERVAL 1 HOUR AS loaded_at
            FROM r LEFT JOIN demo_timeline t ON t.i = r.customer_id""",
        ),
        ("schema segment", "CREATE SCHEMA IF NOT EXISTS segment"),
        (
            "Segment events (consent objects)",
            f"""CREATE OR REPLACE TABLE segment.tracks AS
            WITH s AS (
              SELECT j, CAST(1 + hash(j, 'seg') % {n} AS BIGINT) AS i,
                     ['Product Viewed', 'Product Added', 'Order Completed'][1 + {_pct("sev", "j")} % 3] AS event,
                     {a} - CAST(hash(j, 'sts') % (86400 * 400) AS BIGINT) * INTERVAL 1 SECOND AS ts
              FROM range(1, {n} * 6 + 1) t(j)
              UNION ALL  -- Segment Consent Management's own event on every change of preferences
              SELECT {n} * 6 + i * 3 + k, i, 'Segment Consent Preference Updated',
                     [first_ts, out_ts, regrant_ts][k + 1]
              FROM demo_timeline, range(3) r(k) WHERE us AND choice IS NOT NULL
                AND [first_ts, out_ts, regrant_ts][k + 1] IS NOT NULL
            ), e AS (
              SELECT s.*, ['/', '/product', '/cart', '/checkout'][1 + {_pct("spath", "s.j")} % 4] AS path,
                     CASE WHEN s.event = 'Order Completed' AND {_pct("server", "s.j")} < 50 THEN NULL  -- server-side
                          ELSE {prefs} END AS prefs
              FROM s JOIN demo_timeline t ON t.i = s.i WHERE t.us
            )
            SELECT 'msg_' || substr(md5(CAST(j AS VARCHAR) || 'm'), 1, 24) AS message_id,
                   CAST(i AS VARCHAR) AS user_id, substr(md5(CAST(i AS VARCHAR) || 'anon'), 1, 32) AS anonymous_id,
                   event, {segment_ctx} AS context,
                   ts AS "timestamp", ts + ({_pct("lag", "j")} % 30) * INTERVAL 1 SECOND AS received_at
            FROM e""",
        ),
        ("schema fides", "CREATE SCHEMA IF NOT EXISTS fides"),
        (
            "Fides privacy preference history",
            f"""CREATE OR REPLACE TABLE fides.privacypreferencehistory AS
            WITH p AS (  -- the newsletter notice, as the form received the address
              SELECT i, CASE WHEN {_pct("mcase")} < 50 THEN lower(email) ELSE email END AS email,
                     CASE WHEN mail_in THEN 'opt_in' ELSE 'opt_out' END AS preference, 'newsletter' AS notice_key,
                     CASE WHEN mail_in THEN 'button' ELSE 'reject' END AS method, 'overlay' AS request_origin,
                     mail_ts AS ts
              FROM demo_timeline WHERE mail_ts IS NOT NULL
              UNION ALL  -- unsubscribing in the privacy center
              SELECT i, upper(email), 'opt_out', 'newsletter', 'save', 'privacy_center', unsub_ts
              FROM demo_timeline WHERE unsub_ts IS NOT NULL
              UNION ALL  -- a notice-only notice: acknowledged, which is not consent
              SELECT i, lower(email), 'acknowledge', 'essential', 'acknowledge', 'overlay', mail_ts
              FROM demo_timeline WHERE mail_ts IS NOT NULL AND {_pct("ack")} < 40
              UNION ALL  -- a notice the policy does not use
              SELECT i, lower(email), CASE WHEN {_pct("an")} < 70 THEN 'opt_in' ELSE 'opt_out' END, 'analytics',
                     'save', 'privacy_center', mail_ts + INTERVAL 3 MINUTE
              FROM demo_timeline WHERE mail_ts IS NOT NULL AND {_pct("ana")} < 30
            )
            SELECT 'pri_' || substr(md5(CAST(i AS VARCHAR) || notice_key || CAST(ts AS VARCHAR)), 1, 24) AS id,
                   ts AS created_at, email, 'fides_' || substr(md5(CAST(i AS VARCHAR) || 'device'), 1, 24)
                   AS fides_user_device, preference, notice_key,
                   'pri_notice_hist_' || notice_key || '_2' AS privacy_notice_history_id, method, request_origin
            FROM p""",
        ),
        (
            "preference center events",
            f"""CREATE OR REPLACE TABLE raw.preference_center AS
            SELECT CAST(i AS VARCHAR) AS subject_id, 'AD_TARGETING' AS purpose, ' Withdrawn' AS status,
                   out_ts AS event_ts, out_ts AS recorded_at, CAST(NULL AS TIMESTAMP) AS expires_at,
                   'account_settings' AS source, 'v2' AS policy_version
            FROM demo_timeline WHERE channel = 'account'
            UNION ALL  -- opting in again, for a year
            SELECT CAST(i AS VARCHAR), 'ad_targeting', 'GRANTED', regrant_ts, regrant_ts,
                   regrant_ts + INTERVAL 365 DAY, 'account_settings', 'v2'
            FROM demo_timeline WHERE regrant_ts IS NOT NULL
            UNION ALL  -- a loyalty-programme consent for a fixed term: a third still run for two months or
            -- more, the rest ended a day or more before the anchor (never during the nights that follow)
            SELECT CAST(i AS VARCHAR), 'ad_targeting', 'granted', loyalty_ts, loyalty_ts,
                   CASE WHEN {_pct("t2")} % 3 = 0 THEN {a} + (60 + {_pct("t2")}) * INTERVAL 1 DAY
                        ELSE {a} - (1 + {_pct("t2")} % 90) * INTERVAL 1 DAY END, 'loyalty_programme', 'v2'
            FROM demo_timeline WHERE loyalty_ts IS NOT NULL""",
        ),
    ]


def build_steps(anchor: datetime, subjects: int) -> list[tuple[str, str]]:
    """(label, SQL) steps that build the warehouse. `anchor` is the newest event time (naive UTC)."""
    a = f"TIMESTAMP '{anchor:%Y-%m-%d %H:%M:%S}'"
    n = int(subjects)
    day = "INTERVAL 1 DAY"
    return [
        ("schemas", "CREATE SCHEMA IF NOT EXISTS raw"),
        (
            "customers",
            f"""CREATE OR REPLACE TABLE raw.customers AS
            SELECT i AS customer_id,
                   (CASE {_pct("case")} % 3 WHEN 0 THEN 'Customer.' WHEN 1 THEN 'customer.' ELSE 'CUSTOMER.' END)
                     || i || (CASE WHEN {_pct("dom")} < 50 THEN '@Example.com' ELSE '@mail.example.org' END) AS email,
                   ['DE','FR','NL','US','GB','ES'][1 + {_pct("country")} % 6] AS country,
                   {a} - ({_pct("created")} * 7) * {day} AS created_at
            FROM range(1, {n} + 1) t(i)""",
        ),
        *_consent_steps(a, n, anchor),
        (
            "web events",
            f"""CREATE OR REPLACE TABLE raw.web_events AS
            SELECT j AS event_id,
                   CASE WHEN {_pct("anon", "j")} < 8 THEN NULL ELSE CAST(1 + hash(j, 'who') % {n} AS BIGINT) END AS customer_id,
                   ['/','/product','/cart','/checkout','/blog','/search'][1 + {_pct("page", "j")} % 6] AS page,
                   {a} - CAST(hash(j, 'ts') % (86400 * 90) AS BIGINT) * INTERVAL 1 SECOND AS event_ts
            FROM range(1, {n} * 20 + 1) t(j)""",
        ),
        (
            "e-mail engagement",
            f"""CREATE OR REPLACE TABLE raw.email_engagement AS
            SELECT j AS message_id,
                   CASE {_pct("ecase", "j")} % 3 WHEN 0 THEN upper(c.email) WHEN 1 THEN lower(c.email)
                        ELSE c.email END AS email,
                   ['delivered','opened','clicked'][1 + {_pct("act", "j")} % 3] AS action,
                   {a} - CAST(hash(j, 'ts') % (86400 * 60) AS BIGINT) * INTERVAL 1 SECOND AS event_ts
            FROM range(1, {n} * 5 + 1) t(j)
            JOIN raw.customers c ON c.customer_id = CAST(1 + hash(j, 'rcpt') % {n} AS BIGINT)""",
        ),
        (
            "purchases",
            f"""CREATE OR REPLACE TABLE raw.purchases AS
            SELECT j AS order_id, CAST(1 + hash(j, 'buyer') % {n} AS BIGINT) AS customer_id,
                   CAST(5 + CAST(hash(j, 'amt') % 20000 AS BIGINT) / 100.0 AS DECIMAL(12,2)) AS amount,
                   {a} - CAST(hash(j, 'ts') % (86400 * 180) AS BIGINT) * INTERVAL 1 SECOND AS ordered_at
            FROM range(1, {n} * 3 + 1) t(j)""",
        ),
        ("cleanup", "DROP TABLE IF EXISTS demo_timeline"),
    ]


def _reset_consent_state(s: Session, consent_table: str) -> None:
    """A rebuilt warehouse starts a fresh consent log: its watermarks and source state would not fit."""
    for table in (consent_table, lineage.SOURCE_STATE, lineage.SOURCE_LATEST):
        s.run(f"DROP TABLE IF EXISTS {table}")


def build(
    session: Session,
    subjects: int,
    *,
    ingest: Ingest,
    anchor: datetime | None = None,
    progress: Callable[[str], object] | None = None,
) -> object:
    """Create (replace) the demo tables, ingest the consent history (every observation up to a day
    before `anchor`) with `ingest(session, policy)`, then load the last day's observations, left for
    the next ingest. Returns what `ingest` returned. `progress(label)` is called before each step."""
    if anchor is None:
        now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        anchor = now - timedelta(hours=1)
    policy = load(demo_policy_path())
    cutoff = anchor - timedelta(days=1)
    with session.transaction() as s:
        _reset_consent_state(s, policy.consent_table)
        for label, sql in build_steps(anchor, subjects):
            if progress:
                progress(label)
            s.run(sql)
        for i, (table, arrival) in enumerate(SOURCE_TABLES.items()):  # hold the last day back
            s.run(
                f"CREATE OR REPLACE TEMP TABLE demo_last_day_{i} AS SELECT * FROM {table} WHERE {arrival} > ?",
                [cutoff],
            )
            s.run(f"DELETE FROM {table} WHERE {arrival} > ?", [cutoff])
    if progress:
        progress("consent log (history)")
    records = ingest(session, policy)
    if progress:
        progress("the last day's consent observations")
    with session.transaction() as s:
        for i, table in enumerate(SOURCE_TABLES):
            s.run(f"INSERT INTO {table} SELECT * FROM demo_last_day_{i}")
            s.run(f"DROP TABLE demo_last_day_{i}")
    return records
