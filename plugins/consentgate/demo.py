"""A realistic, deterministic synthetic marketing warehouse in DuckDB, for the demo and the nightly DAG.

Built entirely in SQL from `range()` and `hash()`, so the same --subjects gives the same data.
Raw tables go to schema `raw`; the consent log is `main.consent_events`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from consentgate.engine.session import Session

DEMO_POLICY = "examples/demo_policy.yml"


def demo_policy_path() -> Path:
    return Path(str(resources.files("consentgate").joinpath(DEMO_POLICY)))


def _pct(salt: str, expr: str = "i") -> str:
    """A deterministic pseudo-random percentile 0..99 of row i."""
    return f"CAST(hash({expr}, '{salt}') % 100 AS BIGINT)"


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
                   (CASE {_pct('case')} % 3 WHEN 0 THEN 'Customer.' WHEN 1 THEN 'customer.' ELSE 'CUSTOMER.' END)
                     || i || (CASE WHEN {_pct('dom')} < 50 THEN '@Example.com' ELSE '@mail.example.org' END) AS email,
                   ['DE','FR','NL','US','GB','ES'][1 + {_pct('country')} % 6] AS country,
                   {a} - ({_pct('created')} * 7) * {day} AS created_at
            FROM range(1, {n} + 1) t(i)""",
        ),
        (
            "consent log",
            f"""CREATE OR REPLACE TABLE main.consent_events AS
            WITH c AS (SELECT customer_id AS i, email FROM raw.customers),
            first AS (  -- the first choice: 62% grant ads, 6% deny, 1% unknown status, the rest never asked
              SELECT CAST(i AS VARCHAR) AS subject_id, 'ad_targeting' AS purpose,
                     CASE WHEN {_pct('ads')} < 62 THEN 'granted' WHEN {_pct('ads')} < 68 THEN 'denied'
                          ELSE 'pending' END AS status,
                     {a} - (300 + {_pct('t1')}) * {day} AS event_ts,
                     CAST(NULL AS TIMESTAMP) AS recorded_at,
                     CASE WHEN {_pct('ads')} < 62 AND {_pct('exp')} < 12
                          THEN {a} - (150 - {_pct('t2')} * 3) * {day} END AS expires_at,
                     'cookie_banner' AS source, 'v1' AS policy_version
              FROM c WHERE {_pct('ads')} < 69
            ),
            optout AS (  -- 12% of granters withdraw later; a third of those through a GPC browser signal
              SELECT CAST(i AS VARCHAR), 'AD_TARGETING', ' Withdrawn',
                     {a} - (20 + {_pct('t3')} * 2) * {day},
                     CASE WHEN {_pct('late')} < 15 THEN {a} - (5 + {_pct('t3')} % 10) * {day} END,
                     NULL, CASE WHEN {_pct('gpc')} < 33 THEN 'gpc' ELSE 'account_settings' END, 'v2'
              FROM c WHERE {_pct('ads')} < 62 AND {_pct('out')} < 12
            ),
            regrant AS (  -- a quarter of those who withdrew opt in again
              SELECT CAST(i AS VARCHAR), 'ad_targeting', 'GRANTED', {a} - (2 + {_pct('t4')} % 15) * {day},
                     NULL, {a} + 365 * {day}, 'account_settings', 'v2'
              FROM c WHERE {_pct('ads')} < 62 AND {_pct('out')} < 3
            ),
            mail AS (  -- newsletter opt-ins keyed by e-mail, in whatever case the form received
              SELECT CASE WHEN {_pct('mcase')} < 50 THEN lower(email) ELSE email END, 'email_marketing',
                     CASE WHEN {_pct('mail')} < 55 THEN 'granted' ELSE 'denied' END,
                     {a} - (200 + {_pct('t5')}) * {day}, NULL, NULL, 'newsletter_form', 'v1'
              FROM c WHERE {_pct('mail')} < 75
            ),
            unsub AS (
              SELECT upper(email), 'email_marketing', 'withdrawn', {a} - (10 + {_pct('t6')}) * {day},
                     NULL, NULL, 'unsubscribe_link', 'v1'
              FROM c WHERE {_pct('mail')} < 55 AND {_pct('unsub')} < 10
            )
            SELECT * FROM first UNION ALL SELECT * FROM optout UNION ALL SELECT * FROM regrant
            UNION ALL SELECT * FROM mail UNION ALL SELECT * FROM unsub""",
        ),
        (
            "web events",
            f"""CREATE OR REPLACE TABLE raw.web_events AS
            SELECT j AS event_id,
                   CASE WHEN {_pct('anon', 'j')} < 8 THEN NULL ELSE CAST(1 + hash(j, 'who') % {n} AS BIGINT) END AS customer_id,
                   ['/','/product','/cart','/checkout','/blog','/search'][1 + {_pct('page', 'j')} % 6] AS page,
                   {a} - CAST(hash(j, 'ts') % (86400 * 90) AS BIGINT) * INTERVAL 1 SECOND AS event_ts
            FROM range(1, {n} * 20 + 1) t(j)""",
        ),
        (
            "e-mail engagement",
            f"""CREATE OR REPLACE TABLE raw.email_engagement AS
            SELECT j AS message_id,
                   CASE {_pct('ecase', 'j')} % 3 WHEN 0 THEN upper(c.email) WHEN 1 THEN lower(c.email)
                        ELSE c.email END AS email,
                   ['delivered','opened','clicked'][1 + {_pct('act', 'j')} % 3] AS action,
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
    ]


def build(session: Session, subjects: int, anchor: datetime | None = None, progress: object = None) -> None:
    """Create (replace) the demo tables. `progress(label)` is called before each step."""
    if anchor is None:
        anchor = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(hours=1)
    with session.transaction() as s:
        for label, sql in build_steps(anchor, subjects):
            if progress:
                progress(label)  # type: ignore[operator]
            s.run(sql)
