"""CLI commands beyond the core ones. Each module here exposes `register(app: typer.Typer) -> None`."""
