"""What the database commands share: their common options, the optional policy and the DuckDB session.

Not a command (no `register`): the CLI registers only the public modules of this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from consentgate.db import Session
    from consentgate.policy import Policy

Database = Annotated[Path, typer.Option("--database", "-d", help="DuckDB database file.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
MappedPolicy = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="Policy file, for a consent log with mapped column names."),
]


def load_policy(path: Path | None) -> Policy | None:
    """The policy file if one was given (None means: the defaults and what the runs recorded)."""
    from consentgate.policy import load

    return load(path) if path else None


@contextmanager
def duckdb_session(database: Path, *, read_only: bool) -> Iterator[Session]:
    """A session on the DuckDB file, closed when the block ends (open errors are one-line errors)."""
    from consentgate.db import open_duckdb

    session = open_duckdb(database, read_only=read_only)
    try:
        yield session
    finally:
        session.close()
