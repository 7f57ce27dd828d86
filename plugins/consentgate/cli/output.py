"""Human-readable output for the CLI (rich tables). Counts only; never a subject identifier."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from consentgate.rule.semantics import REASONS

console = Console(width=None if sys.stdout.isatty() else 160)


def _results_table(title: str) -> Table:
    # overflow="fold": a narrow terminal wraps a name or an id, never cuts it (a run id must be pasteable)
    table = Table(title=title, title_justify="left")
    table.add_column("dataset", overflow="fold")
    table.add_column("target", overflow="fold")
    table.add_column("purpose", overflow="fold")
    table.add_column("in", justify="right", overflow="fold")
    table.add_column("out", justify="right", overflow="fold")
    for reason in REASONS:
        table.add_column(reason.replace("_", " "), justify="right", overflow="fold")
    return table


def print_ingests(ingests: Iterable[Mapping[str, Any]]) -> None:
    """The latest ingests of consent sources: counts only (docs/sources.md)."""
    ingests = list(ingests)
    if not ingests:
        return
    table = Table(title="consent sources ingested (newest first)", title_justify="left")
    for name in (
        "source",
        "kind",
        "table",
        "status",
        "started",
        "read",
        "written",
        "not written",
        "watermark",
    ):
        table.add_column(name, overflow="fold", justify="right" if name in ("read", "written") else "left")
    for i in ingests:
        rejected = ", ".join(f"{k}={v:,}" for k, v in sorted((i.get("rejected") or {}).items())) or "none"
        table.add_row(
            escape(str(i["source"])),
            escape(str(i["kind"])),
            escape(str(i["source_table"])),
            escape(str(i["status"])),
            str(i["started_at"]),
            f"{i['observations_read']:,}",
            f"{i['events_written']:,}",
            escape(rejected),
            str(i.get("watermark_to") or "none"),
        )
    console.print(table)


def print_results(
    results: Sequence[Any], *, run_id: str, as_of: datetime, errors: Mapping[str, str] | None = None
) -> None:
    table = _results_table(f"run {run_id}, consent as of {as_of.isoformat()} UTC")
    for r in results:
        table.add_row(
            r.dataset,
            r.target,
            r.purpose,
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            *(f"{r.excluded[k]:,}" for k in REASONS),
        )
    console.print(table)
    if results:
        console.print(
            f"consent fingerprint {results[0].consent_fingerprint} over "
            f"{results[0].consent_events_counted:,} events"
        )
    for name, message in (errors or {}).items():
        console.print(f"[red]failed[/red] {name}: {message}", markup=True, highlight=False)


def print_runs(runs: Iterable[Mapping[str, Any]]) -> None:
    runs = list(runs)
    if not runs:
        console.print("no runs recorded")
        return
    for run in runs:
        status = run.get("effective_status") or run["status"]
        if status != run["status"]:
            status = f"{status}: recorded {run['status']}, never finished"
        head = escape(
            f"run {run['run_id']} [{status}] trigger={run['trigger']} as_of={run['as_of']} "
            f"fingerprint={run['consent_fingerprint']}"
        )
        table = _results_table(head)
        for d in run.get("datasets", []):
            table.add_row(
                d["dataset"],
                d["target"],
                d["purpose"],
                f"{d['rows_in']:,}",
                f"{d['rows_out']:,}",
                *(f"{d['excluded_' + k]:,}" for k in REASONS),
            )
        console.print(table)
        if run.get("error"):
            console.print(f"error: {run['error']}", highlight=False)
