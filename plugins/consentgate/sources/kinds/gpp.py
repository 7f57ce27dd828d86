"""`gpp`: IAB GPP strings. The tcfeuv2 section is read as a TC string (kinds.tcf); the US sections
(US National, the states, uspv1) and their GPC sub-sections can only withdraw.

For a purpose with `us_opt_outs`, any listed opt-out field equal to 1 in any US section (uspv1:
`OptOutSale` = `Y` counts as SaleOptOut) is a withdrawal; with `gpc: true`, a GPC sub-section with
`Gpc` true is a withdrawal. A withdrawal wins over a TCF grant in the same string. "Did not opt out"
(2) is never consent: a purpose with no TCF mapping gets no event then. A string that does not decode
is `invalid` for every purpose the source maps.
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source, TcfRule
from consentgate.signals import SignalError, gpp
from consentgate.sources.kinds import tcf as tcf_kind
from consentgate.sources.kinds.base import INVALID, WITHDRAWN, Observation, Rejected, text


def _decode(value: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(sections by API prefix, the tcfeuv2 section as TCModel fields or None)."""
    sections, _ = gpp.decode(value)
    tc = None
    if "tcfeuv2" in sections:
        parts = value.strip().split("~")
        part = parts[1 + sections["sectionIds"].index(gpp.TCFEUV2_ID)]
        tc = tcf_kind.decode_or_none(part)
    return sections, tc


def _withdraws(sections: dict[str, Any], rule: TcfRule) -> bool:
    for name in (*gpp.US_SECTIONS_NAMES, "uspv1"):
        s = sections.get(name)
        if not isinstance(s, dict):
            continue
        if any(s.get(f) == 1 for f in rule.us_opt_outs):
            return True
        if "SaleOptOut" in rule.us_opt_outs and s.get("OptOutSale") == "Y":
            return True
        if rule.gpc and s.get("Gpc") is True:
            return True
    return False


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    value = text(row.get("signal"))
    if value is None or not value.strip():
        raise Rejected("no_signal")
    try:
        sections, tc = _decode(value)
    except SignalError:
        return [Observation(r.purpose, INVALID, detail="undecodable") for r in source.rules]
    out = {r.purpose: Observation(r.purpose, WITHDRAWN) for r in source.rules if _withdraws(sections, r)}
    if tc is not None or "tcfeuv2" in sections:
        for o in tcf_kind.evaluate(tc, source.rules):
            out.setdefault(o.purpose, o)
    if not out:
        raise Rejected("no_opt_out")
    return list(out.values())
