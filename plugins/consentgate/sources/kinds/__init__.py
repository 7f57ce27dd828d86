"""One mapper per source kind: `observe(source, row) -> list[Observation]` (or raise Rejected).

`row` holds the source's logical columns (`signal`, `purpose`, `status`, ...) already read; the
engine (sources.ingest) handles subject, event time, identity, watermark and the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consentgate.engine.source_config import Kind, Source
from consentgate.sources.kinds import consent_mode, events, fides, gpc, gpp, onetrust, segment, tcf, usprivacy
from consentgate.sources.kinds.base import Observation, Rejected

Mapper = Callable[[Source, dict[str, Any]], list[Observation]]

MAPPERS: dict[Kind, Mapper] = {
    Kind.EVENTS: events.observe,
    Kind.GPC: gpc.observe,
    Kind.USPRIVACY: usprivacy.observe,
    Kind.FIDES: fides.observe,
    Kind.SEGMENT: segment.observe,
    Kind.ONETRUST: onetrust.observe,
    Kind.CONSENT_MODE: consent_mode.observe,
    Kind.TCF: tcf.observe,
    Kind.GPP: gpp.observe,
}

__all__ = ["MAPPERS", "Mapper", "Observation", "Rejected"]
