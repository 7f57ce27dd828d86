"""`consentgate report`: write the HTML run report (one self-contained file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consentgate.cli.common import Database, Json, MappedPolicy, emit_json, fail, load_policy
from consentgate.evidence.report import write_report


def register(app: typer.Typer) -> None:
    app.command()(report)


def report(
    database: Database,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="The run to report (default: the latest).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "consentgate-report.html"
    ),
    policy: MappedPolicy = None,
    as_json: Json = False,
) -> None:
    """Write an HTML report of a run (rows in and out, exclusions, consent changes) and of the trend across runs.

    Self-contained: inline CSS and SVG, no script, nothing fetched. Counts only, never a subject id.
    """
    try:
        written = write_report(database, out, run_id, policy=load_policy(policy))
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_json:
        emit_json(written)
    else:
        what = f"run {written['run_id']}" if written["run_id"] else "no run recorded yet"
        typer.echo(f"report of {what} written to {written['report']}")
        for note in written["notes"]:
            typer.echo(f"consentgate: note: {note}", err=True)
