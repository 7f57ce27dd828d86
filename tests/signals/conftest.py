"""The IAB reference implementations, run as ONE Node process per test session (requests batched on stdin)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REFERENCE = Path(__file__).parent / "reference"


class Reference:
    """@iabtechlabtcf/core and @iabgpp/cmpapi behind tests/signals/reference/ref.js."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", str(REFERENCE / "ref.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def call_many(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a batch, read the replies in order: each {"ok": value} or {"error": message}."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("".join(json.dumps(r) + "\n" for r in requests))
        self.proc.stdin.flush()
        return [json.loads(self.proc.stdout.readline()) for _ in requests]

    def call(self, op: str, **request: Any) -> Any:
        (reply,) = self.call_many([{"op": op, **request}])
        if "error" in reply:
            raise RuntimeError(f"reference {op}: {reply['error']}")
        return reply["ok"]

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a process forked by a test (Airflow's) holds the pipe open
            self.proc.terminate()
            self.proc.wait(timeout=10)


def ensure_installed() -> None:
    """Install the pinned reference packages (npm ci from the lockfile) if this checkout lacks them."""
    if (REFERENCE / "node_modules" / "@iabgpp" / "cmpapi").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the reference tests (Node 20); install Node.js"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(REFERENCE)], check=True)


@pytest.fixture(scope="session")
def reference() -> Iterator[Reference]:
    ensure_installed()
    ref = Reference()
    try:
        yield ref
    finally:
        ref.close()
