"""Ctrl-C, SIGTERM and SIGHUP at any moment exit with one line, never a traceback.

:func:`install` runs first thing in the console entry point, before heavy imports. Outside a
command (start-up, argument parsing, shutdown) the signal ends the process at once with exit
128 + its number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), after removing the folder
multiprocessing keeps its forkserver's socket in. Inside a command (:func:`command_scope`, used by
the CLI's error decorator) it raises :class:`Interrupted` (a KeyboardInterrupt) instead, so that
failure reports are written, temporary files removed and worker processes killed on the way out;
the decorator then exits with the same code and one line.
"""

from __future__ import annotations

import contextlib
import os
import signal

EXIT_INTERRUPTED = 130
_depth = 0
_deferred = 0
_pending: int | None = None
# The signals that unwind a command; each exits 128 + its number (SIGINT 130, SIGTERM 143, SIGHUP 129).
SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """A signal that stops the command: SIGINT (Ctrl-C), SIGTERM or SIGHUP."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else f"terminated ({signal.Signals(self.signum).name})"


def exit_code(exc: BaseException) -> int:
    """The exit code of a KeyboardInterrupt: 128 + the signal's number (130 for a plain Ctrl-C)."""
    return exc.exit_code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED


def message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, Interrupted) else "interrupted"


def _remove_multiprocessing_folder() -> None:
    """The temporary folder multiprocessing made for the forkserver's socket, which its own exit
    handler would have removed (this path ends the process with os._exit)."""
    try:
        import multiprocessing.process as mp_process
        import shutil

        folder = getattr(mp_process.current_process(), "_config", {}).get("tempdir")
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    except Exception:
        pass


def _act(signum: int) -> None:
    if _depth > 0:
        raise Interrupted(signum)
    try:
        _remove_multiprocessing_folder()
        os.write(2, f"gfaudit: {Interrupted(signum).message}\n".encode())
    finally:
        os._exit(128 + signum)


def _handler(signum, frame):
    global _pending
    if _deferred > 0:
        _pending = signum
        return
    _act(signum)


def install() -> None:
    """Route SIGINT, SIGTERM and SIGHUP through :func:`_handler` (main thread only; a no-op elsewhere)."""
    try:
        for signum in SIGNALS:
            signal.signal(signum, _handler)
    except ValueError:  # not the main thread (e.g. an embedding application)
        pass


@contextlib.contextmanager
def deferred():
    """Hold a signal back until the block ends (e.g. while a worker's job is being handed over,
    so that a half-sent job never makes the worker fail with a traceback)."""
    global _deferred, _pending
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
        if _deferred == 0 and _pending is not None:
            signum, _pending = _pending, None
            _act(signum)


@contextlib.contextmanager
def command_scope():
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
