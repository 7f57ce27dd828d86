"""The `consentgate` command line."""

from consentgate.cli.app import app, main

__all__ = ["app", "main"]
