"""Progress bars and log lines on stderr (stdout stays free for reports)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

QUIET = False  # set by the CLI's --quiet: no log lines or bars (errors are the CLI's to print)


def log(message: str) -> None:
    if QUIET:
        return
    print(f"[gfaudit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def bar(description: str, total: int):
    """Yield an ``advance(n=1)`` callable; a rich bar on a terminal, silent otherwise (log lines suffice)."""
    if QUIET or not sys.stderr.isatty():
        yield lambda n=1: None
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
