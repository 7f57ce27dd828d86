"""People, not rows: what the run report leads with, and the consent-source ingests a run took in.

People per purpose are counted from the consent log as of the run's recorded cut-off, with the rule's
own decision SQL (the engine's snapshot), so any later reader gets the same numbers from the same
append-only log: no count is stored, and nothing about a person but a number leaves the database.

A person is a distinct subject key of the consent log (trimmed; lower-cased for a purpose the run
enforced with `normalize: lower`), decided for one purpose: consented (a valid grant decides), or
excluded as withdrawn, denied, expired or invalid. People with no consent event are not in the log,
and rows without a subject belong to no one: those appear only in the row counts per dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from consentgate.engine import lineage
from consentgate.engine.enforcement import Enforcer
from consentgate.engine.session import Session
from consentgate.rule import semantics
from consentgate.rule.names import TableName
from consentgate.rule.semantics import SEVERITY_REASON, VALID_GRANT, ConsentColumns

#: The decisions a person can have for a purpose, in the order the page shows them.
DECISIONS = ("consented", "withdrawn", "denied", "expired", "invalid")


def run_purposes(datasets: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """(purpose, normalize) pairs the run's datasets enforced, sorted; a purpose enforced both ways
    appears twice (its people are counted under each key form)."""
    return sorted(
        {
            (semantics.fold_case(str(d["purpose"]).strip(" ")), d.get("normalize"))
            for d in datasets
            if d.get("purpose")
        },
        key=lambda p: (p[0], p[1] or ""),
    )


def people_by_purpose(
    session: Session,
    *,
    consent_table: str,
    as_of: datetime,
    purposes: Sequence[tuple[str, str | None]],
    columns: ConsentColumns | None = None,
) -> list[dict[str, Any]]:
    """Per (purpose, normalize): the number of people by decision as of `as_of`, and in total.

    One read of the consent log (the engine's snapshot, a session-private temporary table) and one
    aggregate per purpose; counts only."""
    if not purposes:
        return []
    enforcer = Enforcer(session, consent_table=consent_table, columns=columns, as_of=as_of, run_id="report")
    enforcer.take_snapshot([p for p, _ in purposes])
    decided = semantics.scratch(session.dialect, semantics.DECIDED)
    out = []
    for purpose, normalize in purposes:
        enforcer._decide(purpose, normalize)  # noqa: SLF001 - the rule's decisions, read, never re-implemented
        counts = dict.fromkeys(DECISIONS, 0)
        for severity, n in session.all(f"SELECT severity, count(*) FROM {decided} GROUP BY 1"):
            key = "consented" if int(severity) == VALID_GRANT else SEVERITY_REASON[int(severity)]
            counts[key] += int(n)
        out.append({"purpose": purpose, "normalize": normalize, "people": sum(counts.values()), **counts})
    return out


def run_ingests(
    session: Session, lower: datetime | None, upper: datetime | None
) -> list[dict[str, Any]] | None:
    """The consent-source ingests whose events started to count in a run: recorded after the previous
    run's cut-off `lower` (open when None) and by this run's cut-off `upper`. A failed ingest, which
    recorded nothing, is placed by when it finished. None when no ingest was ever recorded."""
    if upper is None or session.columns(TableName(None, lineage.INGESTS)) is None:
        return None
    p = session.dialect.param
    when = "coalesce(recorded_at, finished_at, started_at)"
    low = f" AND {when} > CAST({p} AS TIMESTAMP)" if lower is not None else ""
    rows = session.all(
        f"SELECT source, kind, status, observations_read, events_written, rejected, watermark_from, watermark_to, "
        f"recorded_at, finished_at, error FROM {lineage.INGESTS} "
        f"WHERE {when} <= CAST({p} AS TIMESTAMP){low} ORDER BY source, {when}",
        [upper, *([lower] if lower is not None else [])],
    )
    out = []
    for source, kind, status, read, written, rejected, wm_from, wm_to, recorded, finished, error in rows:
        try:
            by_reason = {str(k): int(v) for k, v in (json.loads(rejected or "{}") or {}).items()}
        except (ValueError, TypeError, AttributeError):
            by_reason = {}
        out.append(
            {
                "source": source,
                "kind": kind,
                "status": status,
                "observations_read": int(read or 0),
                "events_written": int(written or 0),
                "rejected": by_reason,
                "watermark_from": wm_from,
                "watermark_to": wm_to,
                "recorded_at": recorded or finished,
                "error": error,
            }
        )
    return out
