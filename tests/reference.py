"""An independent, deliberately plain Python implementation of docs/semantics.md.

It shares no code with the product. It is the second opinion every engine is checked against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

REASONS = ("null_subject", "no_consent", "denied", "withdrawn", "expired", "invalid")
# Rule 6: lowering maps A-Z to a-z and nothing else (not Python's Unicode str.lower()).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Event:
    subject_id: Any
    purpose: str | None
    status: str | None
    event_ts: datetime | None
    recorded_at: datetime | None = None
    expires_at: datetime | None = None


def _key(value: Any, normalize: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip(" ")
    if text == "":
        return None
    return ascii_lower(text) if normalize == "lower" else text


def _kind(event: Event, as_of: datetime) -> str:
    status = ascii_lower((event.status or "").strip(" "))
    if status == "granted":
        if event.expires_at is not None and event.expires_at <= as_of:
            return "expired"
        return "granted"
    if status in ("withdrawn", "denied"):
        return status
    return "invalid"


# Lower wins a tie: the most restrictive event decides.
_TIE_ORDER = {"withdrawn": 0, "denied": 1, "invalid": 2, "expired": 3, "granted": 4}


def decide(
    events: Iterable[Event], purpose: str, as_of: datetime, normalize: str | None = None
) -> dict[str, str]:
    """Return {subject key: deciding kind} for every subject with a counted event."""
    wanted = ascii_lower(purpose.strip(" "))
    best: dict[str, tuple[datetime, int, str]] = {}
    for e in events:
        key = _key(e.subject_id, normalize)
        if key is None or e.purpose is None or e.event_ts is None:
            continue
        if ascii_lower(e.purpose.strip(" ")) != wanted:
            continue
        known = e.recorded_at if e.recorded_at is not None else e.event_ts
        if e.event_ts > as_of or known > as_of:
            continue
        kind = _kind(e, as_of)
        candidate = (e.event_ts, -_TIE_ORDER[kind], kind)
        current = best.get(key)
        if current is None or candidate[:2] > current[:2]:
            best[key] = candidate
    return {key: kind for key, (_, _, kind) in best.items()}


def reason_for(subject: Any, decided: dict[str, str], normalize: str | None) -> str | None:
    """None when the row is kept, else its exclusion reason."""
    key = _key(subject, normalize)
    if key is None:
        return "null_subject"
    kind = decided.get(key)
    if kind is None:
        return "no_consent"
    if kind == "granted":
        return None
    return kind


def enforce(
    rows: Sequence[tuple[Any, Any]],
    events: Iterable[Event],
    purpose: str,
    as_of: datetime,
    normalize: str | None = None,
) -> tuple[list[Any], dict[str, int]]:
    """rows are (row_id, subject). Returns (kept row ids in input order, counts by reason)."""
    decided = decide(events, purpose, as_of, normalize)
    kept: list[Any] = []
    counts = dict.fromkeys(REASONS, 0)
    for row_id, subject in rows:
        reason = reason_for(subject, decided, normalize)
        if reason is None:
            kept.append(row_id)
        else:
            counts[reason] += 1
    return kept, counts
