"""`consentgate index`: create (or drop) the subject index on the consent log, for `consentgate subject`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from consentgate.cli.common import Database, Json, database_session, emit_json, fail, load_policy
from consentgate.evidence import transparency


def register(app: typer.Typer) -> None:
    app.command()(index)


def index(
    database: Database,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", "-p", help="Policy file naming the consent table and its columns."),
    ] = None,
    consent_table: Annotated[
        str | None, typer.Option(help="Consent log table (default: the policy's, else the latest run's).")
    ] = None,
    drop: Annotated[bool, typer.Option("--drop", help="Drop the index instead of creating it.")] = False,
    as_json: Json = False,
) -> None:
    """Index the consent log by subject key, so a subject report reads one person's events, not the whole log.

    Idempotent. DuckDB keeps the index up to date as events are appended; a `CREATE OR REPLACE` of the
    consent table drops it (run this again afterwards).
    """
    try:
        loaded = load_policy(policy)
        with database_session(database, read_only=False) as session:
            source = transparency.consent_source(session, loaded, consent_table)
            t0 = time.perf_counter()
            if drop:
                changed = transparency.drop_subject_index(session, source)
            else:
                changed = transparency.create_subject_index(session, source)
            seconds = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    summary = {
        "consent_table": str(source.table),
        "index": transparency.subject_index_name(source),
        "action": ("dropped" if changed else "absent") if drop else ("created" if changed else "exists"),
        "seconds": round(seconds, 3),
    }
    if as_json:
        emit_json(summary)
    else:
        typer.echo(f"subject index {summary['index']} on {summary['consent_table']}: {summary['action']}")
