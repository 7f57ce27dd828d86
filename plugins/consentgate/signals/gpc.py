"""Global Privacy Control: the `Sec-GPC` request header (and `navigator.globalPrivacyControl`).

Per the GPC specification, the only valid header value is `1` (optional whitespace around it); any other
value, or no header, means the user agent expressed no preference: not an error, and not a signal.
"""

from __future__ import annotations

from typing import Any

from consentgate.signals.errors import SignalError


def decode(value: str | None) -> dict[str, Any]:
    """{"Gpc": True} for exactly `1`; {"Gpc": False} for anything else or nothing."""
    if value is not None and not isinstance(value, str):
        raise SignalError(f"GPC header value: expected text, got {type(value).__name__}")
    return {"Gpc": value is not None and value.strip(" \t") == "1"}
