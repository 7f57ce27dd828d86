"""`consentgate demo`: build the synthetic warehouse and enforce it with the shipped example policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consentgate import demo as demo_data
from consentgate.cli import output
from consentgate.cli.common import fail, setup_logging
from consentgate.engine.enforcement import run_policy
from consentgate.engine.policy import load
from consentgate.engine.session import open_duckdb
from consentgate.evidence import transparency
from consentgate.sources.ingest import ingest

if TYPE_CHECKING:
    from consentgate.engine.policy import Policy
    from consentgate.engine.session import Session
    from consentgate.sources.log import IngestRecord


def ingest_policy_sources(session: Session, policy: Policy) -> list[IngestRecord]:
    """Ingest every consent source of the policy into its consent log."""
    return ingest(session, policy.sources, consent_table=policy.consent_table, columns=policy.columns)


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    database: Annotated[
        Path, typer.Option("--database", "-d", help="DuckDB file to create or refresh.")
    ] = Path(".consentgate/warehouse.duckdb"),
    subjects: Annotated[int, typer.Option(help="Number of customers (subjects).", min=10)] = 20_000,
    enforce: Annotated[
        bool, typer.Option("--enforce/--no-enforce", help="Enforce the policy after building.")
    ] = True,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Consent cut-off (default: now). Ingested events are recorded at ingest time, so a "
            "cut-off before this build sees none of them.",
        ),
    ] = None,
) -> None:
    """Build a synthetic marketing warehouse (DuckDB) and enforce it with the example policy.

    The warehouse holds raw consent sources (a CMP export with TC and GPP strings, web logs with the
    Sec-GPC header, Segment events, Fides' preference history, the account page's log). Their history
    is ingested into the consent log; the last day's observations are left for the next ingest. With
    --enforce (the default) they are ingested and then every dataset is enforced; with --no-enforce
    the nightly DAG does both.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    setup_logging(quiet=True)
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        policy = load(demo_data.demo_policy_path())
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task("building the demo warehouse", total=None)
            session = open_duckdb(database, must_exist=False)
            try:
                demo_data.build(
                    session,
                    subjects,
                    ingest=ingest_policy_sources,
                    progress=lambda label: bar.update(task, description=f"building {label}"),
                )
                # The report of one person (`consentgate subject`) needs this index to stay under a second.
                transparency.create_subject_index(session, transparency.consent_source(session, policy))
                counts = {
                    t: session.one(f"SELECT count(*) FROM {t}")[0]
                    for t in (*demo_data.MARKETING_TABLES, *demo_data.SOURCE_TABLES, "main.consent_events")
                }
                records: list[IngestRecord] = []
                if enforce:
                    bar.update(task, description="ingesting the last day's consent observations")
                    records = ingest_policy_sources(session, policy)
            finally:
                session.close()
            bar.update(task, description="built the demo warehouse")
            result = None
            if enforce:
                bar.update(task, description="enforcing consent for every dataset of the policy")
                result = run_policy(policy, database, as_of=as_of)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    console.print(f"warehouse: {database} ({', '.join(f'{t} {c:,}' for t, c in counts.items())})")
    for r in records:
        console.print(
            f"ingested {r.source} ({r.kind}, {r.source_table}): {r.observations_read:,} observations read, "
            f"{r.events_written:,} events written"
        )
    if result is not None:
        output.print_results(result.datasets, run_id=result.run_id, as_of=result.as_of, errors=result.errors)
        console.print(
            f"consented tables are in schema 'consented' of {database}; evidence in consentgate_runs and "
            f"consentgate_lineage (try: consentgate lineage --database {database})"
        )
        if not result.ok:
            raise typer.Exit(1)
