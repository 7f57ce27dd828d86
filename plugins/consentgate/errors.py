"""Every error consentgate raises on purpose. Each is a one-line message naming the problem.

`retryable(exc)` is the one place that decides whether a failure may go away by itself; `one_line(exc)`
the one place that turns any exception into text fit for a log, a run record or a lineage event: our
own messages pass, anyone else's (a database engine's, a library's) is reduced to its class, because
it can quote row values. See docs/errors.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn


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


class DatabaseUnavailableError(ConsentGateError, ConnectionError):
    """A database server named by a URL cannot be reached or refuses the login."""


class NotADatabaseError(ConsentGateError, ValueError):
    """The database file is not a DuckDB database (another format, damaged or truncated)."""


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


class ManifestError(ConsentGateError, ValueError):
    """A dbt manifest is missing, unreadable, or does not say what a gated model needs (e.g. its subject column)."""


class RunFailedError(ConsentGateError, RuntimeError):
    """A task of an orchestrated run failed, or the run's evidence is inconsistent."""


DEBUG_ENV = "CONSENTGATE_DEBUG_ERRORS"

WITHHELD = (
    "its message is withheld because it can quote row values; run the consentgate command with "
    f"{DEBUG_ENV}=1 to print it on your terminal, never recorded"
)


class DatabaseError(RuntimeError):
    """A statement (or other code) failed inside a consentgate stage; the original message is withheld.

    Deliberately not a ConsentGateError: callers that degrade on our own errors (verify, report) must
    still fail on this one. Its text names the stage, the table and the error class, never the engine's
    message, which can quote row values (`Could not convert string "alice@example.com"`, PostgreSQL's
    `invalid input syntax for type bigint: "..."`, DuckDB's `Original Line: ...`).
    """

    def __init__(self, stage: str, table: object, exc: BaseException) -> None:
        self.stage = stage
        self.table = None if table is None else str(table)
        self.error_class = error_class(exc)
        self.sqlstate = _sqlstate(exc)
        self.retryable = _retryable_class(exc)
        what = f"{stage} {self.table!r}" if self.table else stage
        state = f", SQLSTATE {self.sqlstate}" if self.sqlstate else ""
        super().__init__(f"{what} failed: {self.error_class}{state} ({WITHHELD})")
        # Kept off args/str/repr: only the CLI prints it, and only when CONSENTGATE_DEBUG_ERRORS=1.
        self._engine_message: str | None = str(exc)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled (multiprocessing, a result backend) without the engine's message.
        return _restore_database_error, (
            str(self),
            self.stage,
            self.table,
            self.error_class,
            self.sqlstate,
            self.retryable,
        )


def _restore_database_error(message: str, *fields: Any) -> DatabaseError:
    err = DatabaseError.__new__(DatabaseError)
    RuntimeError.__init__(err, message)
    err.stage, err.table, err.error_class, err.sqlstate, err.retryable = fields
    err._engine_message = None
    return err


def error_class(exc: BaseException) -> str:
    """`duckdb.ConversionException`, `psycopg2.errors.InvalidTextRepresentation`, `KeyError`..."""
    cls = type(exc)
    module = cls.__module__.lstrip("_")
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
    return code if isinstance(code, str) and re.fullmatch(r"[0-9A-Z]{5}", code) else None


def _retryable_class(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseError):
        return exc.retryable
    name = type(exc).__name__
    return name in {"OperationalError", "InterfaceError", "ConnectionException", "IOException"}


def shown(value: object) -> str:
    """A value received, for an error message: short text quoted, anything else by its type only."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__}"


def retryable(exc: BaseException) -> bool:
    """True only for failures that may go away by themselves (a locked file, a lost connection).

    Bad data, bad configuration and violated rules are never retried.
    """
    if isinstance(exc, DatabaseLockedError):
        return True
    if isinstance(exc, ConsentGateError):
        return False
    return _retryable_class(exc)


def withheld(exc: BaseException, stage: str, table: object = None) -> BaseException:
    """`exc` itself when its text is safe (ours), else a DatabaseError naming `stage` and `table`."""
    if isinstance(exc, ConsentGateError | DatabaseError) or not isinstance(exc, Exception):
        return exc
    return DatabaseError(stage, table, exc)


def raise_unchained(err: BaseException) -> NoReturn:
    """Raise `err` with no cause and no context, so no traceback (Airflow logs them) shows the
    exception it replaces."""
    try:
        raise err from None
    finally:
        err.__context__ = None


@contextmanager
def stage(what: str, table: object = None) -> Iterator[None]:
    """Turn any failure inside the block that is not ours into a DatabaseError naming `what` and `table`:

    `with stage("reading source", table="raw.web_events"): ...` fails with
    `reading source 'raw.web_events' failed: duckdb.ConversionException (the engine's message is withheld ...)`.
    """
    try:
        yield
    except Exception as exc:
        err = withheld(exc, what, table)
        if err is exc:
            raise
    else:
        return
    raise_unchained(err)


def engine_message(exc: BaseException) -> str | None:
    """The withheld original message, for the CLI's local debug output only (never recorded)."""
    return getattr(exc, "_engine_message", None)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes"}


# scheme://user:password@host -> scheme://user:***@host; password=... / token=... in DSNs and query strings.
# (one slash too: a URL passed through pathlib loses the second.)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*:/{1,2}[^\s/@:'\"]*:)[^\s@'\"]*@")
_KEY_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|token|secret|motherduck_token|api_key|apikey)(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)"
)


def mask_url(text: str) -> str:
    """`text` with the password of every connection URL or DSN in it masked (`postgresql://u:***@h/db`,
    `host=h password=***`); everything else unchanged."""
    return _KEY_SECRET.sub(r"\1\2***", _URL_PASSWORD.sub(r"\1***@", text))


def one_line(exc: BaseException) -> str:
    """A single-line message for any exception, safe by construction to log, record or emit.

    Our own errors (ConsentGateError, DatabaseError) say what went wrong without quoting row values;
    any other exception is reduced to its class (and SQLSTATE): an engine's or library's message can
    quote the offending value, which may be a subject identifier. Passwords in URLs are masked.
    """
    if isinstance(exc, ConsentGateError | DatabaseError):
        text = str(exc)
    else:
        state = _sqlstate(exc)
        text = f"{error_class(exc)}{f', SQLSTATE {state}' if state else ''} ({WITHHELD})"
    return mask_url(" ".join(text.split()))
