"""`consentgate verify`: replay a recorded run from the consent log and check its evidence still holds."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from consentgate.cli.common import (
    Database,
    Json,
    MappedPolicy,
    database_session,
    emit_json,
    fail,
    load_policy,
)
from consentgate.cli.output import console
from consentgate.errors import ConsentGateError
from consentgate.evidence import transparency, verification


def register(app: typer.Typer) -> None:
    app.command()(verify)


def verify(
    database: Database,
    run_id: Annotated[str, typer.Option("--run-id", help="The run to verify (see `consentgate lineage`).")],
    policy: MappedPolicy = None,
    as_json: Json = False,
) -> None:
    """Recompute a run's decisions as of its cut-off, compare the consent fingerprint, check its targets.

    Exits 1 when verification fails: the consent log was rewritten after the run, the decisions are not
    reproduced on an unchanged source, or a target still holding the run's output has rows of people
    who were not consented. Also reports the opt-out latency over all runs (aggregates only).
    """
    try:
        loaded = load_policy(policy)
        with database_session(database, read_only=True) as session:
            result = verification.verify_run(session, run_id, policy=loaded)
            try:
                source = transparency.consent_source(session, loaded, result["consent_table"])
                result["opt_out_latency"] = verification.opt_out_latency(session, source)
            except ConsentGateError:
                result["opt_out_latency"] = None  # the log is unreadable: already a problem above
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_json:
        emit_json(result)
    else:
        _print(result)
    if not result["ok"]:
        raise typer.Exit(1)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _print(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    verdict = {"verified": "[green]verified[/green]", "failed": "[red]FAILED[/red]"}.get(
        result["status"], "[yellow]verified with warnings[/yellow]"
    )
    console.print(f"run {result['run_id']} ({result['run_status']}, as of {result['as_of']} UTC): {verdict}")
    fp = result["fingerprint"]
    if fp:
        console.print(
            f"consent fingerprint: recorded {fp['recorded']} ({fp['events_recorded']} events), "
            f"recomputed {fp['recomputed']} ({fp['events_recomputed']} events): "
            + ("match" if fp["match"] else "[red]DIFFERENT[/red]"),
            highlight=False,
        )
    table = Table(title="datasets", title_justify="left")
    for col in ("dataset", "rows in (run / now)", "kept (run / now)", "replay", "target"):
        table.add_column(col)
    for d in result["datasets"]:
        rec, now = d["recorded"], d["recomputed"] or {}
        tc = d["target_check"] or {}
        target = tc.get("status", "-")
        if target == "replaced":
            target = f"replaced by run {tc.get('replaced_by')}"
        elif target in ("clean", "contaminated", "changed"):
            target = f"{target}: {tc['consented']} of {tc['rows']} rows consented"
        table.add_row(
            d["dataset"],
            f"{rec['rows_in']} / {now.get('rows_in', '-')}",
            f"{rec['rows_out']} / {now.get('rows_out', '-')}",
            d["status"],
            target,
        )
    console.print(table)
    for p in result["problems"]:
        console.print(f"[red]problem[/red]: {escape(p)}", highlight=False)
    for w in result["warnings"]:
        console.print(f"[yellow]warning[/yellow]: {escape(w)}", highlight=False)
    lat = result.get("opt_out_latency")
    if lat:
        console.print(
            f"opt-out latency over all runs: {lat['measured']} withdrawals reached a run, median "
            f"{_duration(lat['median_seconds'])}, max {_duration(lat['max_seconds'])}; {lat['pending']} pending, "
            f"{lat['before_first_run']} before the first run, {lat['untracked']} for purposes no run enforces",
            highlight=False,
        )
