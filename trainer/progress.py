"""Progress bars and log lines on stderr (stdout stays free for reports)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

QUIET = False  # set by the CLI's --quiet: no log lines or bars (errors are the CLI's to print)
EVERY_S = 30.0  # without a terminal, a bar logs one line at most this often (and none for a quick task)


def log(message: str) -> None:
    if QUIET:
        return
    print(f"[gfaudit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def bar(description: str, total: int):
    """Yield an ``advance(n=1)`` callable: a rich bar on a terminal; otherwise (a log file, CI) a log
    line every ``EVERY_S`` seconds with the steps done and the time left, so a long epoch is never silent."""
    if QUIET:
        yield lambda n=1: None
        return
    if not sys.stderr.isatty():
        started = last = time.monotonic()
        done = 0

        def advance(n: int = 1) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last >= EVERY_S and done < total:
                last = now
                left = (now - started) / done * (total - done)
                log(f"{description}: {done}/{total} steps ({done / total:.0%}), about {_duration(left)} left")

        yield advance
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
