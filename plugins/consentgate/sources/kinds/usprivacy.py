"""`usprivacy`: IAB US Privacy strings (`1YYN`). Withdrawals only.

`OptOutSale` = `Y` withdraws every purpose the source lists. `N` or `-` is "did not opt out", which is
never consent: nothing is written (`no_opt_out`). A string that does not decode is written as
`invalid` for every listed purpose: it never grants and, as the latest event, excludes (the person
may have opted out; consentgate cannot tell).
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source
from consentgate.signals import SignalError
from consentgate.signals import usprivacy as decoder
from consentgate.sources.kinds.base import INVALID, WITHDRAWN, Observation, Rejected, each, text


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    value = text(row.get("signal"))
    if value is None or not value.strip():
        raise Rejected("no_signal")
    purposes = source.purposes_for("*")
    try:
        fields = decoder.decode(value)
    except SignalError:
        return each(purposes, INVALID, detail="undecodable")
    if fields["OptOutSale"] != "Y":
        raise Rejected("no_opt_out")
    return each(purposes, WITHDRAWN)
