"""`consentgate ingest`: build the consent log from the policy's consent sources (docs/sources.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from consentgate.cli.common import Database, Json
from consentgate.engine.policy import load
from consentgate.engine.session import open_database, url_scheme
from consentgate.engine.source_config import source_named
from consentgate.errors import PolicyError, one_line
from consentgate.evidence.openlineage import emit_failed_ingest, emit_ingest
from consentgate.sources.ingest import ingest as run_ingest

if TYPE_CHECKING:
    from consentgate.sources.log import IngestRecord


def register(app: typer.Typer) -> None:
    app.command()(ingest)


def ingest(
    policy: Annotated[
        Path, typer.Option("--policy", "-p", help="Policy file (YAML) with a sources: section.")
    ],
    database: Database = "consentgate.duckdb",
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Ingest only this source (repeatable).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Append what is new in each consent source (past its watermark) to the consent log.

    Idempotent: ingesting the same observations twice writes nothing. Every source is checked before
    anything is written; a source that cannot be read stops the ingest with a one-line error and a
    non-zero exit, so enforcement does not run on a log that misses a withdrawal. Counts only: no
    subject identifier is printed or recorded. With OpenLineage configured (as for `consentgate run`),
    each source's ingest is a job whose input is the source's table and whose output is the consent log.
    """
    ingest_id = uuid.uuid4().hex
    where = _lineage_location(database)
    try:
        records = _run(policy, database, source or [], ingest_id)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        emit_failed_ingest(ingest_id, exc, policy=_policy_or_none(policy), **where)
        typer.echo(f"consentgate: error: {one_line(exc)}", err=True)
        raise typer.Exit(1) from None
    emit_ingest(records, **where)
    _print(records, as_json)
    failed = [r for r in records if r.status != "success"]
    for r in failed:
        typer.echo(f"consentgate: error: source {r.source}: {r.error}", err=True)
    if failed:
        raise typer.Exit(1)


def _run(policy: Path, database: str, names: list[str], ingest_id: str) -> list[IngestRecord]:
    loaded = load(policy)
    sources = loaded.sources
    chosen = tuple(source_named(sources, n) for n in names) if names else sources
    if not chosen:
        raise PolicyError(
            f"policy file {str(policy)!r} declares no sources; add a sources: section (docs/sources.md)"
        )
    session = open_database(database)
    try:
        return run_ingest(
            session,
            chosen,
            consent_table=loaded.consent_table,
            columns=loaded.columns,
            ingest_id=ingest_id,
            raise_on_error=False,
        )
    finally:
        session.close()


def _policy_or_none(policy: Path) -> Any:
    try:
        return load(policy)
    except Exception:  # noqa: BLE001 - the error itself is reported by the caller
        return None


def _lineage_location(database: str) -> dict[str, Any]:
    """Where OpenLineage says the tables are: a DuckDB file, or a PostgreSQL server and database
    (the URL's host and port only, never its user or password)."""
    scheme = url_scheme(database)
    if scheme is None:
        return {"database": database}
    if scheme == "duckdb":
        return {"database": database.split("://", 1)[1]}
    parts = urlsplit(database)
    server = f"postgres://{parts.hostname}:{parts.port or 5432}"
    return {"location": (server, parts.path.lstrip("/")), "default_schema": "public"}


def _print(records: list[IngestRecord], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ingests": [r.summary() for r in records]}, default=str))
        return
    for r in records:
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(r.rejected.items())) or "none"
        wm = r.watermark_to.isoformat() if r.watermark_to else "none"
        typer.echo(
            f"{r.source} ({r.kind}, {r.source_table}): {r.status}; {r.observations_read} observations read, "
            f"{r.events_written} events written; not written: {rejected}; watermark {wm}"
        )
