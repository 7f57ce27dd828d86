"""Every error consentgate raises on purpose. Each is a one-line message naming the problem.

`retryable(exc)` is the one place that decides whether a failure may go away by itself.
"""

from __future__ import annotations

import re


class ConsentGateError(Exception):
    """Base class: a failure consentgate explains in one line."""


class InvalidIdentifierError(ConsentGateError, ValueError):
    """A table or column name is not a plain identifier path."""


class InvalidAsOfError(ConsentGateError, ValueError):
    """The consent cut-off could not be parsed as an ISO 8601 timestamp."""


class PolicyError(ConsentGateError, ValueError):
    """The policy file is missing, unreadable or invalid."""


class SourceError(ConsentGateError, LookupError):
    """A marketing source table or its subject column is missing."""


class ConsentSourceError(ConsentGateError, LookupError):
    """The consent table is missing, lacks a required column or has a column of an unusable type."""


class TargetError(ConsentGateError, ValueError):
    """The target would overwrite the source, the consent log or the evidence tables."""


class DatabaseLockedError(ConsentGateError, OSError):
    """Another process holds the database file's write lock."""


class DatabaseNotFoundError(ConsentGateError, FileNotFoundError):
    """The database file does not exist."""


class ConsistencyError(ConsentGateError, RuntimeError):
    """Two computations of the same enforcement disagreed; nothing was written."""


class ConsentViolationError(ConsentGateError, AssertionError):
    """An audited table holds rows whose subjects are not consented."""


class RunNotFoundError(ConsentGateError, LookupError):
    """No recorded run has the requested run_id."""


class UnsupportedConnectionError(ConsentGateError, ValueError):
    """An Airflow connection is missing a database file or is of a type consentgate cannot enforce on."""


class DbtBuildError(ConsentGateError, RuntimeError):
    """dbt exited with a non-zero status (a failed model or test, or a dbt error)."""


class RunFailedError(ConsentGateError, RuntimeError):
    """A task of an orchestrated run failed, or the run's evidence is inconsistent."""


def retryable(exc: BaseException) -> bool:
    """True only for failures that may go away by themselves (a locked file, a lost connection).

    Bad data, bad configuration and violated rules are never retried.
    """
    if isinstance(exc, DatabaseLockedError):
        return True
    if isinstance(exc, ConsentGateError):
        return False
    name = type(exc).__name__
    return name in {"OperationalError", "InterfaceError", "ConnectionException", "IOException"}


_QUOTED_VALUE = re.compile(r"'(?:[^']|'')*'")


def one_line(exc: BaseException) -> str:
    """A single-line message for any exception, with quoted literals redacted from database errors.

    Database drivers echo offending values in single quotes ("Could not convert string 'x'"); such a
    value may be a subject identifier, so it never reaches a log, an error or a lineage row.
    """
    if isinstance(exc, ConsentGateError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {_QUOTED_VALUE.sub('<redacted>', str(exc))}"
    return " ".join(text.split())
