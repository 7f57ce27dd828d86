"""`tcf`: IAB TCF v2 TC strings (the `euconsent-v2` cookie, a CMP's export, Fides' `fides_string`).

A policy purpose is granted only if the string is usable as consent (signals.usable: no reason not
to count it) and every TCF purpose it maps to has consent (legitimate interest never stands in),
purpose 1 was disclosed (not `purposeOneTreatment`), every special feature it requires is opted in,
and every vendor it names has consent and is not restricted by a publisher restriction on any of
those purposes (`NOT_ALLOWED`, or `REQUIRE_LI`, which forbids consent as the basis). A decodable,
usable string that lacks any of it refuses the purpose (a withdrawal if the subject granted before,
else a denial). A string that does not decode, or decodes but is not usable, is `invalid`.
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source, TcfRule
from consentgate.signals import SignalError, tcf, usable
from consentgate.sources.kinds.base import GRANTED, INVALID, NEGATIVE, Observation, Rejected, text

_FORBIDDING = (0, 2)  # NOT_ALLOWED, REQUIRE_LI


def grants(fields: dict[str, Any], rule: TcfRule) -> bool:
    """True iff a decoded, usable TC string gives consent for everything `rule` requires."""
    consents = set(fields["purposeConsents"])
    if not set(rule.tcf_purposes) <= consents:
        return False
    if 1 in rule.tcf_purposes and fields.get("purposeOneTreatment"):
        return False
    if not set(rule.special_features) <= set(fields["specialFeatureOptins"]):
        return False
    if not set(rule.vendors) <= set(fields["vendorConsents"]):
        return False
    for r in fields["publisherRestrictions"]:
        if r["purposeId"] in rule.tcf_purposes and r["restrictionType"] in _FORBIDDING:
            if set(r["vendors"]) & set(rule.vendors):
                return False
    return True


def evaluate(fields: dict[str, Any] | None, rules: tuple[TcfRule, ...]) -> list[Observation]:
    """Observations for the rules with TCF purposes, from decoded fields (None: did not decode)."""
    tcf_rules = [r for r in rules if r.tcf_purposes]
    if fields is None:
        return [Observation(r.purpose, INVALID, detail="undecodable") for r in tcf_rules]
    reasons = usable.tcf_reasons(fields)
    if reasons:
        return [Observation(r.purpose, INVALID, detail=reasons[0]) for r in tcf_rules]
    return [Observation(r.purpose, GRANTED if grants(fields, r) else NEGATIVE) for r in tcf_rules]


def decode_or_none(value: str) -> dict[str, Any] | None:
    try:
        return tcf.decode(value)
    except SignalError:
        return None


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    value = text(row.get("signal"))
    if value is None or not value.strip():
        raise Rejected("no_signal")
    return evaluate(decode_or_none(value), source.rules)
