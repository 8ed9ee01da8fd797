"""Audit many suspects at once: up to ``jobs`` isolated workers (isolation.py) run side by side.

Each suspect still runs in its own worker process under its own time limit; a thread per slot
waits on one worker, so the parent spends no CPU while the workers run onnxruntime. The cores are
divided among the workers (``intra_op_threads``), results come back in input order, and any abort
(a missing device, Ctrl-C) kills every worker still running before it propagates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from gfaudit.errors import UsageError

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | None) -> int:
    """``--jobs``: None means one worker per CPU this process may use."""
    if jobs is None:
        return cpu_count()
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: must be at least 1")
    return jobs


def intra_op_threads(jobs: int, n_items: int) -> int:
    """onnxruntime threads per worker: the cores shared among the workers that run at once."""
    return max(1, cpu_count() // max(1, min(jobs, n_items)))


def map_ordered(
    fn: Callable[[T], R], items: Sequence[T], jobs: int, progress: Callable[[int, int, R], None] | None = None
) -> list[R]:
    """``[fn(item) for item in items]`` with up to ``jobs`` running at once, in input order.
    ``progress(done, total, result)`` runs in this thread as results arrive."""
    from gfaudit.audit import isolation

    if jobs <= 1 or len(items) <= 1:
        out = []
        for i, item in enumerate(items, 1):
            out.append(fn(item))
            if progress:
                progress(i, len(items), out[-1])
        return out
    results: list = [None] * len(items)
    pool = ThreadPoolExecutor(max_workers=min(jobs, len(items)), thread_name_prefix="gfaudit-suspect")
    try:
        pending = {pool.submit(fn, item): i for i, item in enumerate(items)}
        done_count = 0
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                results[i] = future.result()  # re-raises an abort (e.g. DeviceError) here
                done_count += 1
                if progress:
                    progress(done_count, len(items), results[i])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        isolation.stop_all()  # the threads' waits end at once: their workers are gone
        raise
    pool.shutdown(wait=True)
    return results


EXECUTORS = ("local", "ray")  # where suspects run: worker processes here, or one Ray task each


def map_on_ray(
    fn: Callable[[T], R],
    items: Sequence[T],
    address: str | None = None,
    progress: Callable[[int, int, R], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` as one Ray task per item (one CPU each), in input order.
    ``address``: a running cluster (``auto``, ``ray://HOST:10001``), or None / "none" for a local Ray
    on this machine. Each task runs the suspect exactly as ``local`` does (its own isolated worker
    under the time limit), so reports are identical; the suspect files must be readable on every
    node (a shared filesystem on a cluster). Ray is the ``gfaudit[ray]`` extra, imported only here."""
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'gfaudit[ray]'") from None
    if not items:
        return []
    if not ray.is_initialized():
        target = None if address in (None, "", "none") else address
        ray.init(address=target, include_dashboard=False, log_to_driver=False, configure_logging=False)
    task: Any = ray.remote(num_cpus=1, max_retries=0)(_call)
    refs = [task.remote(fn, item) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(items)
    pending, done_count = list(refs), 0
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = index[ref]
                results[i] = ray.get(ref)
                done_count += 1
                if progress:
                    progress(done_count, len(items), results[i])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return results


def _call(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def runner(executor: str, ray_address: str | None = None):
    """The ordered map of ``executor``: ``map_ordered`` (with --jobs) or ``map_on_ray`` (one task each)."""
    if executor not in EXECUTORS:
        raise UsageError(f"executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        return lambda fn, items, jobs, progress=None: map_on_ray(fn, items, ray_address, progress)
    return map_ordered
