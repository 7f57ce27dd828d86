"""`segment`: `context.consent.categoryPreferences` on Segment event tables.

The signal column holds the event's JSON (the whole message, its `context`, its `consent` object or
the `categoryPreferences` object itself). A mapped category `true` grants its purposes, `false`
refuses them; a category the event does not carry says nothing. An event with no consent object is
no consent (Segment lets such events through; consentgate does not): it writes nothing
(`no_consent_object`). JSON that does not parse, or a category value that is not true/false, is
`invalid` for the purposes concerned.
"""

from __future__ import annotations

import json
from typing import Any

from consentgate.engine.source_config import Source
from consentgate.sources.kinds.base import GRANTED, INVALID, NEGATIVE, Observation, Rejected, each

_PATH = ("context", "consent", "categoryPreferences")


def _preferences(value: Any) -> dict[str, Any] | None:
    """The categoryPreferences object, found under any prefix of context.consent.categoryPreferences."""
    if isinstance(value, str):
        value = json.loads(value)
    for i in range(len(_PATH)):
        node: Any = value
        for step in _PATH[i:]:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return node
    return None


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    raw = row.get("signal")
    if raw is None:
        raise Rejected("no_consent_object")
    try:
        prefs = _preferences(raw)
    except ValueError:
        return each(source.purposes, INVALID, detail="unparsable_json")
    if prefs is None:
        raise Rejected("no_consent_object")
    out: list[Observation] = []
    for category, purposes in source.vocabulary:
        if category not in prefs:
            continue
        value = prefs[category]
        status = GRANTED if value is True else NEGATIVE if value is False else INVALID
        out.extend(each(purposes, status))
    if not out:
        raise Rejected("no_mapped_category")
    return out
