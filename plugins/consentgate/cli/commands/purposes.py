"""`consentgate purposes`: what each purpose means, which data feeds it and what uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from consentgate.cli.common import Json, emit_json, fail
from consentgate.engine.policy import load
from consentgate.evidence import transparency


def register(app: typer.Typer) -> None:
    app.command()(purposes)


def purposes(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy file (YAML).")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="dbt manifest.json: list the models with meta consentgate: {ad_targeting: true, purpose: ...}.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """For every purpose: its plain-language description, the datasets that feed it and what uses it.

    The text a company shows next to an opt-in box.
    """
    try:
        overview = transparency.purposes_overview(
            load(policy), transparency.load_manifest(manifest) if manifest else None
        )
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_json:
        emit_json(overview)
    else:
        typer.echo(render_text(overview), nl=False)


def render_text(overview: dict[str, Any]) -> str:
    lines: list[str] = []
    for p in overview["purposes"]:
        lines += [p["name"], "=" * len(p["name"]), p["description"], ""]
        if p["datasets"]:
            lines.append(
                "Data used: " + ", ".join(f"{d['name']} ({d['source']})" for d in p["datasets"]) + "."
            )
        else:
            lines.append("Data used: none yet.")
        if overview["used_by_source"] == "dbt_manifest":
            models = [
                m["name"] + (f" ({m['description']})" if m["description"] else "") for m in p["used_by"]
            ]
            lines.append("Ad-targeting models using it: " + (", ".join(models) or "none") + ".")
        else:
            lines.append(
                "Consented tables it produces: "
                + (", ".join(u["name"] for u in p["used_by"]) or "none")
                + "."
            )
        lines.append("")
    for m in overview["undeclared_models"]:
        lines.append(
            f"warning: ad-targeting model {m['name']} names purpose {m['purpose']!r}, not declared in the policy"
        )
    return "\n".join(lines) + ("\n" if overview["undeclared_models"] else "")
