"""What the commands share: options, one-line failure, JSON output, logging, the policy and the session."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from consentgate.engine.policy import load
from consentgate.engine.session import open_database
from consentgate.errors import ConsentGateError, debug_enabled, engine_message, mask_url, one_line

if TYPE_CHECKING:
    from consentgate.engine.policy import Policy
    from consentgate.engine.session import Session

Database = Annotated[
    str,
    typer.Option(
        "--database", "-d", help="DuckDB database file, or a connection URL (postgresql://user@host:5432/db)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
MappedPolicy = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="Policy file, for a consent log with mapped column names."),
]


def load_policy(path: Path | None) -> Policy | None:
    """The policy file if one was given (None means: the defaults and what the runs recorded)."""
    return load(path) if path else None


@contextmanager
def database_session(database: str, *, read_only: bool) -> Iterator[Session]:
    """A session on the database (a DuckDB file or a URL), closed when the block ends (open errors are
    one-line errors)."""
    session = open_database(database, read_only=read_only)
    try:
        yield session
    finally:
        session.close()


AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Consent cut-off, ISO 8601 (naive = UTC). Default: now.")
]


def fail(exc: BaseException, code: int = 1) -> NoReturn:
    """One line on stderr, no traceback (see docs/errors.md).

    With CONSENTGATE_DEBUG_ERRORS=1 a second line shows the message one_line() withheld (a database
    engine's, which can quote row values): on this terminal only, never in a record, log or event.
    """
    typer.echo(f"consentgate: error: {one_line(exc)}", err=True)
    if debug_enabled() and not isinstance(exc, ConsentGateError):
        raw = engine_message(exc) or str(exc)
        typer.echo(f"consentgate: debug: withheld message: {mask_url(' '.join(raw.split()))}", err=True)
    raise typer.Exit(code)


def emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, default=str, sort_keys=False))


def setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="consentgate: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
