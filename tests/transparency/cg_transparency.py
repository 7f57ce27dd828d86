"""The transparency tests' story: a small hand-made warehouse on a real DuckDB file, and CLI helpers.

Imported by name (not as `conftest`, a name every test directory shares).

The story (all times naive UTC), one consent log and two sources, enforced by runs r1, r2, r3:

- A grants ads on 01-01 and withdraws on 02-10 (recorded 02-11): kept by r1, excluded from r2 on.
- B grants ads on 01-05 and stays in; C denies ads; G grants ads on 03-01 (kept from r3 on).
- D grants ads, then withdraws on 02-20, but the withdrawal is recorded only on 03-20: r3 (03-15)
  still keeps D, and no run has applied it yet (pending).
- E opts in to e-mail as `Erin.Secret@Example.org` and unsubscribes on 03-01 as
  ` erin.secret@example.org ` (e-mail keys are compared lower-cased); an ads grant exists for the
  lower-cased address only, which for ads (exact keys) is someone else.
- F withdrew ads on 2025-12-01, before any run; someone withdrew `profiling`, which no run enforces.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import consentgate
import duckdb
import yaml
from consentgate.engine.policy import parse

A, B, C, D = "cust-A-7781", "cust-B-5512", "cust-C-9034", "cust-D-3310"
E = "Erin.Secret@Example.org"
F, G, P, X = "cust-F-1200", "cust-G-6120", "cust-P-4471", "cust-X-0000"
SUBJECT_IDS = (A, B, C, D, E, F, G, P, X)

R1, R2, R3 = datetime(2026, 2, 1), datetime(2026, 2, 15), datetime(2026, 3, 15)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


EVENTS: list[tuple[Any, ...]] = [
    # subject_id, purpose, status, event_ts, recorded_at, expires_at, source, policy_version
    (A, "ad_targeting", "granted", ts("2026-01-01"), None, None, "cookie_banner", "v1"),
    (A, "ad_targeting", "withdrawn", ts("2026-02-10"), ts("2026-02-11"), None, "gpc", "v2"),
    (B, "ad_targeting", "granted", ts("2026-01-05"), None, None, "cookie_banner", "v1"),
    (C, "ad_targeting", "denied", ts("2026-01-03"), None, None, "cookie_banner", "v1"),
    (D, "ad_targeting", "granted", ts("2026-01-10"), None, None, "cookie_banner", "v1"),
    (D, "ad_targeting", "withdrawn", ts("2026-02-20"), ts("2026-03-20"), None, "support_ticket", "v2"),
    (E, "email_marketing", "granted", ts("2026-01-02"), None, None, "newsletter_form", "v1"),
    (
        " erin.secret@example.org ",
        "email_marketing",
        "withdrawn",
        ts("2026-03-01"),
        None,
        None,
        "unsubscribe",
        "v1",
    ),
    (
        "erin.secret@example.org",
        "ad_targeting",
        "granted",
        ts("2026-01-02"),
        None,
        None,
        "cookie_banner",
        "v1",
    ),
    (F, "ad_targeting", "withdrawn", ts("2025-12-01"), None, None, "account_settings", "v1"),
    (G, "ad_targeting", "granted", ts("2026-03-01"), None, None, "account_settings", "v2"),
    (P, "profiling", "withdrawn", ts("2026-02-01"), None, None, "account_settings", "v2"),
]
WEB_ROWS = [(1, A), (2, A), (3, B), (4, C), (5, D), (6, None), (7, X), (8, G)]
MAIL_ROWS = [(1, "ERIN.SECRET@example.org"), (2, "nobody-q@example.org")]

POLICY: dict[str, Any] = {
    "consent": {"table": "consent_events"},
    "purposes": [
        {"name": "ad_targeting", "description": "We choose the ads you see from what you browse and buy."},
        {"name": "email_marketing", "description": "We send you offers by e-mail."},
    ],
    "datasets": [
        {
            "name": "web",
            "source": "raw.web",
            "target": "consented.web",
            "subject_column": "customer_ref",
            "purpose": "ad_targeting",
        },
        {
            "name": "mail",
            "source": "raw.mail",
            "target": "consented.mail",
            "subject_column": "email",
            "purpose": "email_marketing",
            "normalize": "lower",
        },
    ],
}


def build(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE consent_events (subject_id VARCHAR, purpose VARCHAR, status VARCHAR, event_ts TIMESTAMP, "
        "recorded_at TIMESTAMP, expires_at TIMESTAMP, source VARCHAR, policy_version VARCHAR)"
    )
    con.executemany("INSERT INTO consent_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", EVENTS)
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.web (event_id BIGINT, customer_ref VARCHAR)")
    con.executemany("INSERT INTO raw.web VALUES (?, ?)", WEB_ROWS)
    con.execute("CREATE TABLE raw.mail (message_id BIGINT, email VARCHAR)")
    con.executemany("INSERT INTO raw.mail VALUES (?, ?)", MAIL_ROWS)
    con.close()


def build_with_runs(path: Path) -> Path:
    """The story's database with runs r1, r2 and r3 recorded."""
    build(path)
    policy = parse(POLICY)
    for run_id, as_of in (("r1", R1), ("r2", R2), ("r3", R3)):
        result = consentgate.run_policy(policy, path, as_of=as_of, run_id=run_id)
        assert result.ok, result.errors
    return path


def write_policy(path: Path) -> Path:
    path.write_text(yaml.safe_dump(POLICY, sort_keys=False))
    return path


class Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def elements(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(page)
    return parser.found


def chart_values(page: str, chart: str) -> list[dict[str, str]]:
    """The data-* attributes of the value-carrying elements of one chart (an `svg` with data-chart)."""
    out, inside = [], False
    for tag, attrs in elements(page):
        if tag == "svg":
            inside = attrs.get("data-chart") == chart
        elif inside and "data-value" in attrs:
            out.append(attrs)
    return out


def sql(path: Path, statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path))
    try:
        return con.execute(statement, params or []).fetchall()
    finally:
        con.close()


def cg(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `consentgate` command, as a user runs it."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("consentgate")), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def cg_json(*args: str) -> tuple[int, dict[str, Any]]:
    p = cg(*args, "--json")
    assert p.stdout.strip(), p.stderr
    return p.returncode, json.loads(p.stdout)


def assert_no_subject_id(text: str) -> None:
    lowered = text.lower()
    for sid in SUBJECT_IDS:
        assert sid.lower() not in lowered, f"subject id {sid!r} leaked"
    assert "erin.secret" not in lowered
