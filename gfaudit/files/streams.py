"""Stream hygiene: stdout carries the report and nothing else.

onnxruntime and its CUDA preloading print to the process's stdout while providers load (C++ code on
file descriptor 1, Python ``print`` on ``sys.stdout``). :func:`stdout_to_stderr` points both at
stderr for the duration of a block, then restores them, so a ``--format json`` report stays
parseable whatever a provider library prints.
"""

from __future__ import annotations

import contextlib
import os
import sys


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


@contextlib.contextmanager
def stdout_to_stderr():
    """Send fd 1 and ``sys.stdout`` to stderr inside the block; restore both afterwards."""
    _flush()
    saved = None
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no fd 1 or 2 (daemonised): nothing to protect
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def send_stdout_to_stderr_for_good() -> None:
    """For worker processes: everything they print goes to stderr; their results travel by pipe."""
    _flush()
    try:
        os.dup2(2, 1)
    except OSError:
        pass
    sys.stdout = sys.stderr
