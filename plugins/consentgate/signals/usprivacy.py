"""IAB US Privacy strings (CCPA, `1YNN`): version, notice given, opted out of sale, LSPA covered.

Layout: IAB Tech Lab "U.S. Privacy String" v1.0: four characters, the first the version (1), each other
`Y`, `N` or `-` (not applicable). Field names are those of iabgpp-es's uspv1 section.
"""

from __future__ import annotations

from typing import Any

from consentgate.signals.errors import SignalError, prefix

_FIELDS = ("Notice", "OptOutSale", "LspaCovered")


def decode(text: str) -> dict[str, Any]:
    """`1YNN` -> {"Version": 1, "Notice": "Y", "OptOutSale": "N", "LspaCovered": "N"}; case-insensitive."""
    if not isinstance(text, str):
        raise SignalError(f"US Privacy string: expected text, got {type(text).__name__}")
    value = text.strip().upper()
    if len(value) != 4:
        raise SignalError(f"US Privacy string {prefix(text)}: {len(value)} characters; exactly 4 (e.g. 1YNN)")
    if value[0] != "1":
        raise SignalError(f"US Privacy string: unknown version {value[0]!r}; only version 1 exists")
    out: dict[str, Any] = {"Version": 1}
    for position, (name, char) in enumerate(zip(_FIELDS, value[1:], strict=True), start=2):
        if char not in "YN-":
            raise SignalError(
                f"US Privacy string: character {position} ({name}) is {char!r}; must be Y, N or -"
            )
        out[name] = char
    return out
