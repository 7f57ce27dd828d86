"""`fides`: Fides' privacy preference history (`privacypreferencehistory`), one row per saved notice.

`preference` `opt_in` grants the purposes its `notice_key` maps to; `opt_out` refuses them (a
withdrawal if the subject granted before, else a denial); with `method` `gpc` the opt-out is a GPC
withdrawal and the log's `source` says so (`<source>:gpc`). `acknowledge` (a notice-only notice) and
`tcf` (details live in the TC string: ingest `fides_string` with kind tcf) are not consent and write
nothing. Any other preference is `invalid`. A notice key the source does not map writes nothing
(`unmapped_notice`): it cannot grant a policy purpose. The identity column to key on (`email`,
`hashed_email`, `fides_user_device` ...) is the source's `subject` column.
"""

from __future__ import annotations

from typing import Any

from consentgate.engine.source_config import Source
from consentgate.rule.semantics import fold_case
from consentgate.sources.kinds.base import (
    GRANTED,
    INVALID,
    NEGATIVE,
    WITHDRAWN,
    Observation,
    Rejected,
    each,
    text,
)

_NOT_CONSENT = {"acknowledge": "acknowledge_not_consent", "tcf": "tcf_preference"}


def observe(source: Source, row: dict[str, Any]) -> list[Observation]:
    key = (text(row.get("notice_key")) or "").strip()
    purposes = source.purposes_for(key)
    if not purposes:
        raise Rejected("unmapped_notice")
    preference = fold_case((text(row.get("preference")) or "").strip())
    method = fold_case((text(row.get("method")) or "").strip())
    if preference in _NOT_CONSENT:
        raise Rejected(_NOT_CONSENT[preference])
    if preference == "opt_in":
        return each(purposes, GRANTED, detail=method or None)
    if preference == "opt_out":
        return each(purposes, WITHDRAWN if method == "gpc" else NEGATIVE, detail=method or None)
    return each(purposes, INVALID, detail="unknown_preference")
