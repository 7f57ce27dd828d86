"""SIGTERM as a recorded failure, like Ctrl-C: what Airflow and most schedulers send on a timeout or stop.

While `sigterm_raises()` is active (main thread only), SIGTERM raises `Terminated` in the running code,
after calling the handler installed before it (Airflow's task runner calls the operator's on_kill),
so the engine rolls back the open transaction and records the run as failed. Ctrl-C (SIGINT) keeps
raising KeyboardInterrupt, and is remembered too: a database driver may turn either into its own
"query interrupted" error, which must not let a run go on with its next dataset (see `check`).
SIGKILL cannot be caught: such a run stays `running` and readers show it as `stale`
(consentgate.engine.lineage.effective_status).

A Python signal handler runs only between bytecodes of the main thread, and a DuckDB statement keeps
the main thread in C: DuckDB 2.0's own check for Ctrl-C misses the signal more often than not, and C
code that does not check at all keeps the handler from running until it returns. So the
outermost block also hands the interpreter a wakeup fd (`signal.set_wakeup_fd`): the C-level handler
writes each signal's number to it at once, whatever the main thread is doing, and a watcher thread
reading it interrupts the running statement of every session registered here (`watch`), from a thread
until it stops. The statement fails, and `check` turns the failure into the signal's own exception. A
wakeup fd set before (asyncio's) gets every byte forwarded, and is restored when the block ends.
"""

from __future__ import annotations

import os
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

MESSAGE = "terminated by SIGTERM"
INTERRUPTED = "interrupted (SIGINT)"
_state: dict[str, int | None] = {"received": None}


class Terminated(BaseException):
    """The process received SIGTERM while consentgate was working (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


def received() -> str | None:
    """What stopped the work (MESSAGE or INTERRUPTED) if a signal arrived in a sigterm_raises() block."""
    sig = _state["received"]
    if sig is None:
        return None
    return MESSAGE if sig == signal.SIGTERM else INTERRUPTED


def check() -> None:
    """Raise Terminated (or KeyboardInterrupt) if a signal arrived, even when something caught it."""
    sig = _state["received"]
    if sig == signal.SIGTERM:
        raise Terminated()
    if sig == signal.SIGINT:
        raise KeyboardInterrupt()


#: Sessions whose running statement a signal interrupts (Session.interrupt_running).
_watched: weakref.WeakSet[Any] = weakref.WeakSet()


def watch(session: Any) -> None:
    """Interrupt `session`'s running statement (its `interrupt_running()`) when a signal arrives."""
    _watched.add(session)


def _interrupt_statements() -> None:
    for session in list(_watched):
        session.interrupt_running()


def _watch_wakeup_fd(read_fd: int, forward_to: int) -> None:
    """The watcher thread: each byte is a signal's number, written by the C-level handler."""
    while data := os.read(read_fd, 64):  # b"" once the write end is closed: the block ended
        if forward_to != -1:
            try:
                os.write(forward_to, data)
            except OSError:  # full or closed: its owner reads signals its own way too
                pass
        for sig in data:
            if sig in (signal.SIGTERM, signal.SIGINT):
                _state["received"] = sig
                _interrupt_statements()


@contextmanager
def _wakeup_watcher() -> Iterator[None]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the C-level handler must never block
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):  # not the main interpreter: the Python handler alone interrupts
        os.close(read_fd)
        os.close(write_fd)
        yield
        return
    watcher = threading.Thread(
        target=_watch_wakeup_fd, args=(read_fd, previous), name="consentgate-signals", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_fd)
        watcher.join(timeout=5)
        if not watcher.is_alive():
            os.close(read_fd)


def _handler(previous: Any, sig: int) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        _state["received"] = sig
        _interrupt_statements()
        if callable(previous):
            previous(signum, frame)  # SIGINT's default raises KeyboardInterrupt here
        if sig == signal.SIGTERM:
            raise Terminated()

    handler.consentgate_raises = True  # type: ignore[attr-defined]
    return handler


@contextmanager
def _installed(sig: int) -> Iterator[None]:
    previous = signal.getsignal(sig)
    if previous in (signal.SIG_IGN, None) or getattr(previous, "consentgate_raises", False):
        yield
        return
    signal.signal(sig, _handler(previous, sig))
    try:
        yield
    finally:
        signal.signal(sig, previous)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` for the block (and remember SIGINT); previous handlers are called
    first, then restored. Outside the main thread signals cannot be handled: the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outermost = not getattr(signal.getsignal(signal.SIGTERM), "consentgate_raises", False)
    if outermost:
        _state["received"] = None
    with ExitStack() as stack:
        stack.enter_context(_installed(signal.SIGTERM))
        stack.enter_context(_installed(signal.SIGINT))
        if outermost:
            stack.enter_context(_wakeup_watcher())
        yield
