"""`onetrust`: the OptanonConsent cookie's groups (`format: cookie`) or consent-receipt purpose statuses
(`format: receipts`).

Cookie: the signal column holds the cookie value (URL-encoded, `...&groups=C0001%3A1%2CC0004%3A0&...`)
or its groups string (`C0001:1,C0004:0`). A mapped group `1` grants, `0` refuses; a mapped group the
cookie does not list says nothing. A groups string that does not parse (an entry not `ID:0|1`) is
`invalid` for every mapped purpose; a cookie without groups writes nothing (`no_groups`).

Receipts (Universal Consent purpose statuses): ACTIVE and CONFIRMED grant; WITHDRAWN withdraws;
OPT_OUT, NOTGIVEN and NO_CONSENT refuse; EXPIRED is a grant that expired when recorded (excluded
as `expired`); PENDING (double opt-in not yet confirmed) writes nothing. Any other status is
`invalid`. The purpose column holds the OneTrust purpose id (or name) the vocabulary maps.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote

from consentgate.engine.source_config import Source
from consentgate.sources.kinds.base import (
    GRANTED,
    INVALID,
    NEGATIVE,
    WITHDRAWN,
    Observation,
    Rejected,
    each,
    text,
)

_GROUP = re.compile(r"([A-Za-z0-9_]+):([01])")
_RECEIPT = {"ACTIVE": GRANTED, "CONFIRMED": GRANTED, "WITHDRAWN": WITHDRAWN, "OPT_OUT": NEGATIVE}
_RECEIPT |= {"NOTGIVEN": NEGATIVE, "NO_CONSENT": NEGATIVE}


def groups(value: str) -> dict[str, str] | None:
    """{group id: '0'|'1'} from a cookie value or a groups string; None if it does not parse."""
    value = value.strip()
    if "groups=" in value or "&" in value:
        found = parse_qs(value, keep_blank_values=True).get("groups")
        if not found:
            return {}
        value = found[0]
    value = unquote(value)
    out: dict[str, str] = {}
    for entry in value.split(","):
        m = _GROUP.fullmatch(entry.strip())
        if m is None:
            return None
        out[m.group(1)] = m.group(2)
    return out


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    return _receipt(source, row) if source.format == "receipts" else _cookie(source, row)


def _cookie(source: Source, row: dict[str, Any]) -> list[Observation]:
    value = text(row.get("signal"))
    if value is None or not value.strip():
        raise Rejected("no_groups")
    parsed = groups(value)
    if parsed is None:
        return each(source.purposes, INVALID, detail="unparsable_groups")
    if not parsed:
        raise Rejected("no_groups")
    out: list[Observation] = []
    for group, purposes in source.vocabulary:
        if group in parsed:
            out.extend(each(purposes, GRANTED if parsed[group] == "1" else NEGATIVE))
    if not out:
        raise Rejected("no_mapped_group")
    return out


def _receipt(source: Source, row: dict[str, Any]) -> list[Observation]:
    purposes = source.purposes_for((text(row.get("purpose")) or "").strip())
    if not purposes:
        raise Rejected("unmapped_purpose")
    status = (text(row.get("status")) or "").strip().upper()
    if status == "PENDING":
        raise Rejected("pending_confirmation")
    if status == "EXPIRED":
        return each(purposes, GRANTED, expires_at=row.get("event_ts"), detail="expired")
    if status in _RECEIPT:
        return each(purposes, _RECEIPT[status])
    return each(purposes, INVALID, detail="unknown_status")
