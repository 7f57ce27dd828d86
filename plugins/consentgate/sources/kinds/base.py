"""What a kind's mapper returns for one source row: observations, or a rejection with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

GRANTED, DENIED, WITHDRAWN, INVALID = "granted", "denied", "withdrawn", "invalid"
#: A refusal whose status depends on the history: `withdrawn` if the subject granted this purpose
#: earlier, else `denied` (resolved in SQL over the log, so it does not depend on ingest order).
NEGATIVE = "negative"
STATUSES = (GRANTED, DENIED, WITHDRAWN, INVALID, NEGATIVE)


@dataclass(frozen=True)
class Observation:
    """One consent fact a row says about one policy purpose.

    :param purpose: the policy purpose
    :param status: granted | denied | withdrawn | invalid | negative
    :param expires_at: a grant's expiry, if the source has one
    :param policy_version: which notice the person saw, if the source says
    :param detail: appended to the source name in the log's `source` column (e.g. Fides' `gpc` method)
    """

    purpose: str
    status: str
    expires_at: datetime | None = None
    policy_version: str | None = None
    detail: str | None = None


class Rejected(Exception):
    """A row that yields no event; `reason` is counted in the ingest's evidence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def text(value: Any) -> str | None:
    """A cell as text (None for null)."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def each(purposes: tuple[str, ...], status: str, **kw: Any) -> list[Observation]:
    return [Observation(p, status, **kw) for p in purposes]
