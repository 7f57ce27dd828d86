"""`events`: a table already in consentgate's own event shape (docs/semantics.md), copied as it is.

Statuses are matched as the rule matches them (trimmed, case-insensitive); any other status is
written as `invalid`, so it never grants and, as the latest event, excludes. A purpose not mapped
by the source's vocabulary (by default: the policy's purposes) is rejected (`unknown_purpose`).
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source
from consentgate.rule.semantics import fold_case
from consentgate.sources.kinds.base import DENIED, GRANTED, INVALID, WITHDRAWN, Observation, Rejected, text

_KNOWN = (GRANTED, DENIED, WITHDRAWN)


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    purpose = text(row.get("purpose"))
    if purpose is None or not purpose.strip(" "):
        raise Rejected("missing_purpose")
    purposes = source.purposes_for(fold_case(purpose.strip(" ")))
    if not purposes:
        raise Rejected("unknown_purpose")
    status = fold_case((text(row.get("status")) or "").strip(" "))
    status = status if status in _KNOWN else INVALID
    version = text(row.get("policy_version"))
    return [Observation(p, status, row.get("expires_at"), version) for p in purposes]
