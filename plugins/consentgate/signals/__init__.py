"""Consent signals: IAB TCF v2 TC strings, GPP strings and sections, US Privacy strings and GPC values.

`decode(kind, text)` decodes one signal (raising `SignalError` for anything malformed) and says, with
named reasons, why a signal that decodes must still not count as consent. No network, standard library
only. See docs/signals.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from consentgate.signals import gpc, gpp, tcf, usable, usprivacy
from consentgate.signals.errors import SignalError

__all__ = ["KINDS", "Decoded", "SignalError", "decode", "detect"]

#: Every kind `decode` accepts ("auto" detects one of the others from the text).
KINDS: tuple[str, ...] = (
    "auto", "tcf", "gpp", "gpp-header", "uspv1", "gpc", "tcfeuv2", "tcfcav1", *gpp.US_SECTIONS_NAMES
)  # fmt: skip

_USP = re.compile(r"1[YNyn-]{3}")


@dataclass(frozen=True)
class Decoded:
    """One decoded signal: its kind, its fields (reference-implementation names) and why it is not consent.

    :param kind: what was decoded (`tcf`, `gpp`, `gpp-header`, `uspv1`, `gpc`, or a GPP section prefix).
    :param fields: the decoded fields; id sets as sorted lists, timestamps as ISO 8601 UTC.
    :param not_consent: named reasons the signal must not count as consent; empty means usable.
    """

    kind: str
    fields: dict[str, Any] = field(repr=False)
    not_consent: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return not self.not_consent

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "fields": self.fields, "not_consent": list(self.not_consent)}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


def detect(text: str) -> str:
    """The kind of a signal from its text: GPP (`DB...`), TC string (`C...`, v1 `B...`), `1YNN`, GPC `1`."""
    value = text.strip()
    if value in ("0", "1"):
        return "gpc"
    if _USP.fullmatch(value):
        return "uspv1"
    if value.startswith("DB"):
        return "gpp"
    if value[:1] in ("B", "C"):
        return "tcf"
    raise SignalError(
        "cannot tell what kind of signal this is (not a TC string, GPP string, US Privacy string or GPC "
        "value); pass the kind explicitly"
    )


def decode(kind: str, text: str) -> Decoded:
    """Decode one signal of `kind` (see KINDS); raises SignalError naming the problem if it is malformed."""
    if not isinstance(text, str):
        raise SignalError(f"expected the signal as text, got {type(text).__name__}")
    if kind == "auto":
        kind = detect(text)
    if kind == "tcf":
        fields = tcf.decode(text)
        return Decoded("tcf", fields, tuple(usable.tcf_reasons(fields)))
    if kind == "gpp":
        fields, reasons = gpp.decode(text)
        return Decoded("gpp", fields, tuple(reasons))
    if kind == "gpp-header":
        return Decoded(kind, gpp.header(text.strip().split("~")[0]), ())
    if kind == "uspv1":
        fields = usprivacy.decode(text)
        return Decoded(kind, fields, tuple(usable.uspv1_reasons(fields)))
    if kind == "gpc":
        fields = gpc.decode(text)
        return Decoded(kind, fields, tuple(usable.gpc_reasons(fields)))
    if kind in gpp.SECTION_IDS and kind in KINDS:
        fields, reasons = gpp.section(kind, text.strip())
        return Decoded(kind, {kind: fields}, tuple(f"{kind}.{r}" for r in reasons))
    raise SignalError(f"unknown signal kind {kind!r}; one of: {', '.join(KINDS)}")
