"""A real HTTP server process for the tests: started on a free port, awaited, stopped with its children."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET, without raising on an HTTP error status."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def serving(
    command: Callable[[int], list[str]],
    env: Mapping[str, str],
    ready_path: str,
    log: Path,
    timeout: float = 120,
) -> Iterator[str]:
    """Run `command(port)` until the block ends; yields the base URL once `ready_path` answers 200.

    Output goes to `log` (named in the error if the server never comes up).
    """
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command(port), env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while http_get_status(base + ready_path) != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command(port)[0]} did not start; see {log}")
                time.sleep(0.2)
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def http_get_status(url: str) -> int | None:
    try:
        return http_get(url)[0]
    except OSError:
        return None
