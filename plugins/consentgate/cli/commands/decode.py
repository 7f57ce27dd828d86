"""`consentgate decode`: decode consent signals (TC strings, GPP strings and sections, US Privacy, GPC)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import typer

from consentgate.signals import KINDS, SignalError, detect
from consentgate.signals import decode as decode_signal


def register(app: typer.Typer) -> None:
    app.command()(decode)


def decode(
    strings: Annotated[
        list[str],
        typer.Argument(help="Signals to decode; '-' reads one a line from stdin.", show_default=False),
    ],
    kind: Annotated[
        str, typer.Option("--kind", "-k", help=f"What the strings are: {'|'.join(KINDS)}.")
    ] = "auto",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per input, in input order.")
    ] = False,
) -> None:
    """Decode TC strings (TCF v2), GPP strings or single GPP sections, US Privacy strings and GPC values.

    Says for each whether it may count as consent, with named reasons (docs/signals.md).
    Exits 1 if any input does not decode. Never prints a whole input string back.
    """
    if kind not in KINDS:
        typer.echo(f"consentgate: error: unknown --kind {kind!r}; one of: {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    failed = 0
    for number, text in enumerate(_inputs(strings), start=1):
        result = _one(kind, text)
        failed += "error" in result
        if as_json:
            typer.echo(json.dumps(result, separators=(",", ":")))
        elif "error" in result:
            typer.echo(f"consentgate: error: input {number}: {result['error']}", err=True)
        else:
            typer.echo("\n".join(_summary(number, result)))
    if failed:
        raise typer.Exit(1)


def _inputs(strings: Iterable[str]) -> Iterator[str]:
    for text in strings:
        if text == "-":
            yield from (line.rstrip("\r\n") for line in sys.stdin if line.strip())
        else:
            yield text


def _one(kind: str, text: str) -> dict[str, Any]:
    try:
        return decode_signal(kind, text).to_json()
    except SignalError as exc:
        return {"kind": _kind_for_error(kind, text), "error": " ".join(str(exc).split())}


def _kind_for_error(kind: str, text: str) -> str:
    if kind != "auto":
        return kind
    try:
        return detect(text)
    except SignalError:
        return "auto"


def _summary(number: int, result: dict[str, Any]) -> list[str]:
    reasons = result["not_consent"]
    verdict = "usable as consent" if not reasons else "NOT consent: " + ", ".join(reasons)
    lines = [f"#{number} {result['kind']}: {verdict}"]
    lines.extend(f"  {name}: {value}" for name, value in _flatten(result["fields"]))
    return lines


def _flatten(fields: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for name, value in fields.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", _show(value)


def _show(value: Any) -> str:
    if (
        isinstance(value, list)
        and len(value) > 8
        and all(type(v) is int for v in value)
        and _increasing(value)
    ):
        return _ranges(value)
    if isinstance(value, list) and value and all(type(v) is bool for v in value):
        return _ranges([i for i, v in enumerate(value, start=1) if v]) or "none"
    if value is None:
        return "(segment absent)"
    return json.dumps(value) if isinstance(value, list | str) else str(value)


def _increasing(values: list[int]) -> bool:
    return all(a < b for a, b in zip(values, values[1:], strict=False))


def _ranges(ids: list[int]) -> str:
    """Sorted ids as '1-10, 500, 502-504'."""
    out: list[str] = []
    start = prev = None
    for i in [*ids, None]:
        if start is not None and (i is None or i != prev + 1):
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ", ".join(out)
