"""CLI commands beyond the core ones.

Each public module here exposes `register(app: typer.Typer) -> None`; `_shared` holds what several share.
"""
