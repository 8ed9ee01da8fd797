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


def _handler(signum, frame):
    if _depth > 0:
        raise KeyboardInterrupt
    try:
        os.write(2, b"gfaudit: interrupted\n")
    finally:
        os._exit(EXIT_INTERRUPTED)


def install() -> None:
    """Route SIGINT through :func:`_handler` (main thread only; a no-op elsewhere)."""
    try:
        signal.signal(signal.SIGINT, _handler)
    except ValueError:  # not the main thread (e.g. an embedding application)
        pass


@contextlib.contextmanager
def command_scope():
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
