"""Ctrl-C at any moment exits 130 with one line, never a traceback.

:func:`install` runs first thing in the console entry point, before heavy imports. Outside a
command (start-up, argument parsing, shutdown) SIGINT ends the process at once with exit 130.
Inside a command (:func:`command_scope`, used by the CLI's error decorator) it raises
KeyboardInterrupt instead, so that temporary files are removed and worker processes killed on the
way out; the decorator then exits 130 with one line.
"""

from __future__ import annotations

import contextlib
import os
import signal

EXIT_INTERRUPTED = 130
_depth = 0
_deferred = 0
_pending = False


def _act() -> None:
    if _depth > 0:
        raise KeyboardInterrupt
    try:
        os.write(2, b"gfaudit: interrupted\n")
    finally:
        os._exit(EXIT_INTERRUPTED)


def _handler(signum, frame):
    global _pending
    if _deferred > 0:
        _pending = True
        return
    _act()


def install() -> None:
    """Route SIGINT through :func:`_handler` (main thread only; a no-op elsewhere)."""
    try:
        signal.signal(signal.SIGINT, _handler)
    except ValueError:  # not the main thread (e.g. an embedding application)
        pass


@contextlib.contextmanager
def deferred():
    """Hold a Ctrl-C back until the block ends (e.g. while a worker's job is being handed over,
    so that a half-sent job never makes the worker fail with a traceback)."""
    global _deferred, _pending
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
        if _deferred == 0 and _pending:
            _pending = False
            _act()


@contextlib.contextmanager
def command_scope():
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
