"""The error ingestion raises when a source cannot be read or the consent log cannot be written."""

from __future__ import annotations

from consentgate.errors import ConsentGateError


class IngestError(ConsentGateError, LookupError):
    """A consent source cannot be read (missing table or column, unusable type) or the log is unfit."""
