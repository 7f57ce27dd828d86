"""`--database sc://...`: an unreachable Spark Connect server fails in seconds, with the token masked."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from consentgate.engine.session import open_database
from consentgate.errors import DatabaseUnavailableError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_one_line_naming_the_masked_url() -> None:
    url = f"sc://127.0.0.1:{_closed_port()}/;token=s3cret-token"
    with pytest.raises(
        DatabaseUnavailableError, match=r"cannot connect to Spark Connect at .*token=\*\*\*"
    ) as err:
        open_database(url)
    assert "s3cret" not in str(err.value)


def test_the_cli_never_prints_the_token() -> None:
    url = f"sc://127.0.0.1:{_closed_port()}/;token=s3cret-token"
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "kill_after.py"), "0", "lineage", "--database", url],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "s3cret" not in done.stdout + done.stderr
    assert "token=***" in done.stderr
