"""`consentgate coverage`: every ad-targeting dbt model reaches personal data only through consented()."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consentgate.cli.common import Json
from consentgate.dbt.coverage import coverage_command


def register(app: typer.Typer) -> None:
    app.command()(coverage)


def coverage(
    manifest: Annotated[Path, typer.Option("--manifest", "-m", help="dbt target/manifest.json.")],
    as_json: Json = False,
) -> None:
    """Check that no ad-targeting model bypasses consent; print each offending path, exit 1 if any."""
    code = coverage_command(manifest, as_json)
    if code:
        raise typer.Exit(code)
