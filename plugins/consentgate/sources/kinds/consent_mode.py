"""`consent_mode`: Google Consent Mode v2 states, one column per consent type (`ad_user_data`,
`ad_personalization`, ...), each `granted` or `denied`.

A purpose is granted only if every consent type mapped to it is `granted`; any `denied` refuses it.
A type that is null (the tag did not report it) says nothing, so a purpose with a null type and no
`denied` gets no event (Consent Mode's own default is denied). Any other value is `invalid`.
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source
from consentgate.rule.semantics import fold_case
from consentgate.sources.kinds.base import GRANTED, INVALID, NEGATIVE, Observation, Rejected, text


def _state(value: Any) -> str | None:
    v = text(value)
    if v is None or not v.strip():
        return None
    v = fold_case(v.strip())
    return {"granted": GRANTED, "denied": NEGATIVE}.get(v, INVALID)


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    by_purpose: dict[str, list[str | None]] = {}
    for consent_type, purposes in source.vocabulary:
        for p in purposes:
            by_purpose.setdefault(p, []).append(_state(row.get(consent_type)))
    out = []
    for purpose, states in by_purpose.items():
        for worst in (INVALID, NEGATIVE):
            if worst in states:
                out.append(Observation(purpose, worst))
                break
        else:
            if None not in states:
                out.append(Observation(purpose, GRANTED))
    if not out:
        raise Rejected("no_consent_state")
    return out
