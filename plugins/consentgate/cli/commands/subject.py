"""`consentgate subject ID`: one person's consent history, current state and every run's decision for them.

The only command that prints a subject identifier, and only the one asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from consentgate.cli.common import Database, Json, database_session, emit_json, fail, load_policy
from consentgate.cli.output import console
from consentgate.evidence import transparency


def register(app: typer.Typer) -> None:
    app.command()(subject)


def subject(
    subject_id: Annotated[str, typer.Argument(help="The person's key as it appears in the consent log.")],
    database: Database,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", "-p", help="Policy file: consent table/columns, purposes and key normalisation."
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Show one person's consent history, their state per purpose now, and whether each run kept their rows."""
    try:
        loaded = load_policy(policy)
        with database_session(database, read_only=True) as session:
            report = transparency.subject_report(session, subject_id, policy=loaded)
    except Exception as exc:  # noqa: BLE001 - one line, exit non-zero
        fail(exc)
    if as_json:
        emit_json(report)
    else:
        _print(report)


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(
        f"subject {report['subject_id']!r}: consent log {report['consent_table']}, state as of "
        f"{report['as_of']} UTC",
        highlight=False,
        markup=False,
    )
    if not report["history"]:
        console.print("no consent event recorded for this key")
    for group in report["history"]:
        table = Table(title=f"consent history: {group['purpose']}", title_justify="left")
        for col in ("status", "event_ts", "recorded_at", "expires_at", "source", "policy_version", "key"):
            table.add_column(col)
        for e in group["events"]:
            table.add_row(
                *(
                    str(e[k] or "")
                    for k in ("status", "event_ts", "recorded_at", "expires_at", "source", "policy_version")
                ),
                str(e["subject_id"]),
            )
        console.print(table)
    now = Table(title="state now", title_justify="left")
    for col in ("purpose", "key match", "state", "what it means"):
        now.add_column(col)
    for c in report["current"]:
        now.add_row(
            c["purpose"],
            "case-insensitive" if c["normalize"] == "lower" else "exact",
            c["state"],
            c["description"] or "",
        )
    console.print(now)
    runs = Table(title="runs: were this person's rows eligible?", title_justify="left")
    for col in ("run", "status", "as of", "dataset", "target", "purpose", "eligible", "why"):
        runs.add_column(col)
    for run in report["runs"]:
        if not run["datasets"]:
            runs.add_row(
                run["run_id"],
                run["status"],
                str(run["as_of"] or ""),
                "-",
                "-",
                "-",
                "-",
                "no dataset recorded",
            )
        for ds in run["datasets"]:
            eligible = "n/a" if ds["eligible"] is None else ("yes" if ds["eligible"] else "no")
            runs.add_row(
                run["run_id"],
                run["status"],
                str(run["as_of"] or ""),
                ds["dataset"],
                ds["target"],
                ds["purpose"],
                eligible,
                "" if ds["eligible"] else str(ds["state"] or "run has no cut-off"),
            )
    console.print(runs)
    if not report["subject_index"]:
        console.print(
            "hint: the consent log has no subject index; `consentgate index --database ...` makes this report "
            "read only this person's events instead of the whole log",
            style="dim",
            highlight=False,
        )
