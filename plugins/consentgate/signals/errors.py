"""The one error the signal decoders raise: a consent string that is not well formed."""

from __future__ import annotations

from consentgate.errors import ConsentGateError

#: How much of a bad input an error message may quote (a consent string can be long; never echo it whole).
PREFIX_CHARS = 12


class SignalError(ConsentGateError, ValueError):
    """A consent signal (TC string, GPP string, US Privacy string, GPC value) is malformed."""


def prefix(text: str) -> str:
    """A short, quotable prefix of an input: enough to find the row, never the whole string."""
    return repr(text[:PREFIX_CHARS] + ("..." if len(text) > PREFIX_CHARS else ""))
