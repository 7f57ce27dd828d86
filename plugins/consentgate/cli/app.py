"""The `consentgate` command line: thin over the engine, lineage and reports."""

from __future__ import annotations

import logging
import pkgutil
from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer

from consentgate.cli import commands, output
from consentgate.cli.common import AsOf, Database, Json, database_session, emit_json, fail, setup_logging
from consentgate.engine import lineage
from consentgate.engine.enforcement import enforce as run_enforce
from consentgate.engine.enforcement import new_run_id, package_version, record_failure, run_policy, utcnow
from consentgate.engine.policy import load
from consentgate.engine.session import open_database, url_scheme
from consentgate.engine.termination import Terminated, sigterm_raises
from consentgate.errors import RunNotFoundError, one_line
from consentgate.evidence.openlineage import emit_failed_run, emit_run
from consentgate.sources.log import read_ingests

app = typer.Typer(
    name="consentgate",
    help="Consent enforcement: only rows of people who opted in reach ad targeting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"consentgate {package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Consent enforcement: only rows of people who opted in reach ad targeting."""


Partitions = Annotated[
    str | None,
    typer.Option(
        help="DuckDB: decide and write in N slices of the subject key space (same results, bounded "
        "memory), or 'auto' from DuckDB's memory limit (docs/performance.md)."
    ),
]


@app.command()
def enforce(
    database: Database,
    source: Annotated[str, typer.Option(help="Source table (table or schema.table).")],
    target: Annotated[str, typer.Option(help="Target table, replaced atomically by the consented rows.")],
    subject_column: Annotated[str, typer.Option(help="Source column holding the subject key.")],
    purpose: Annotated[str, typer.Option(help="Purpose the subject must have granted.")],
    consent_table: Annotated[str, typer.Option(help="Consent log table.")] = "consent_events",
    as_of: AsOf = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: a new one).")] = None,
    normalize: Annotated[str | None, typer.Option(help="Key normalisation: lower.")] = None,
    partitions: Partitions = None,
    as_json: Json = False,
) -> None:
    """Enforce one dataset: replace TARGET by the consented rows of SOURCE and record lineage."""
    setup_logging(quiet=as_json)
    try:
        result = run_enforce(
            database,
            source=source,
            target=target,
            subject_column=subject_column,
            purpose=purpose,
            consent_table=consent_table,
            as_of=as_of,
            run_id=run_id,
            normalize=normalize,
            partitions=partitions,
        )
    except Exception as exc:  # noqa: BLE001 - one line, exit non-zero
        fail(exc)
    if as_json:
        emit_json(result.summary())
    else:
        output.print_results([result], run_id=result.run_id, as_of=result.as_of)


@app.command()
def run(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy file (YAML).")],
    database: Database = "consentgate.duckdb",
    as_of: AsOf = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: a new one).")] = None,
    partitions: Partitions = None,
    as_json: Json = False,
) -> None:
    """Enforce every dataset of a policy file under one run id (the nightly job without Airflow)."""
    setup_logging(quiet=as_json)
    rid, started, loaded = run_id or new_run_id(), utcnow(), None
    try:
        try:
            loaded = load(policy)
        except Exception as exc:
            record_unloadable_policy(database, rid, exc)
            raise
        result = run_policy(loaded, database, as_of=as_of, run_id=rid, partitions=partitions)
    except Exception as exc:  # noqa: BLE001
        emit_failed_run(rid, exc, policy=loaded, database=database)
        fail(exc)
    emit_run(result, policy=loaded, database=database, started_at=started)
    if as_json:
        emit_json(result.summary())
    else:
        output.print_results(result.datasets, run_id=result.run_id, as_of=result.as_of, errors=result.errors)
    if not result.ok:
        raise typer.Exit(1)


def record_unloadable_policy(database: str, run_id: str, exc: BaseException) -> None:
    """Record a run whose policy file could not be loaded as failed, when the database exists and
    opens (a missing or unopenable database is the user's next error, not this one's)."""
    log = logging.getLogger("consentgate")
    if url_scheme(database) is None and not Path(database).exists():
        return
    try:
        session = open_database(database)
    except Exception as inner:  # noqa: BLE001 - nothing to record into
        log.warning("the failed run %s is not recorded: %s", run_id, one_line(inner))
        return
    try:
        record = lineage.RunRecord(run_id=run_id, started_at=utcnow(), package_version=package_version())
        record_failure(session, record, exc)
    finally:
        session.close()


@app.command("lineage")
def lineage_cmd(
    database: Database,
    run_id: Annotated[str | None, typer.Option(help="Show one run (default: the latest runs).")] = None,
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    as_json: Json = False,
) -> None:
    """Show recorded runs and their per-dataset counts, and the latest ingests of consent sources. A run
    recorded as running whose process is gone (or that started over a day ago) is shown as stale: it was
    killed and never finished."""
    try:
        with database_session(database, read_only=True) as session:
            ingests = [] if run_id else read_ingests(session, limit=limit)
            if not lineage.has_tables(session):
                runs = []
            else:
                runs = lineage.read_runs(session, run_id, limit)
                for r in runs:
                    r["effective_status"] = lineage.effective_status(r, utcnow())
                    r["datasets"] = lineage.read_lineage(session, r["run_id"])
        if run_id and not runs:
            raise RunNotFoundError(f"no run with run_id {run_id!r} in {str(database)!r}")
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_json:
        emit_json({"runs": runs, "ingests": ingests})
    else:
        output.print_runs(runs)
        output.print_ingests(ingests)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue  # shared helpers, not commands
        import_module(f"consentgate.cli.commands.{info.name}").register(app)


_register_commands()


def main() -> None:
    try:
        with sigterm_raises():  # SIGTERM (a scheduler's timeout or stop) fails like Ctrl-C, and is recorded
            app()
    except Terminated as exc:
        typer.echo(f"consentgate: error: {exc}", err=True)
        raise SystemExit(143) from None
    except Exception as exc:  # noqa: BLE001 - raised outside a command's own handler: one line, no traceback
        try:
            fail(exc)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
