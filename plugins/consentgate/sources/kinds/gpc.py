"""`gpc`: a Global Privacy Control header column (`Sec-GPC`). Withdrawals only.

Only `1` (the one value the GPC specification defines; optional whitespace around it) is a signal,
and it withdraws every purpose the source lists. Anything else, or no header, says nothing: it is
never consent (opt-in is the default) and writes nothing (`no_opt_out`).
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source
from consentgate.signals import gpc as decoder
from consentgate.sources.kinds.base import WITHDRAWN, Observation, Rejected, each, text


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    if not decoder.decode(text(row.get("signal")))["Gpc"]:
        raise Rejected("no_opt_out")
    return each(source.purposes_for("*"), WITHDRAWN)
