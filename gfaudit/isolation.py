"""Run one suspect in a worker process under a time limit, so that no suspect can cost the others.

A suspect is untrusted code for onnxruntime: a graph can loop for ever (an ONNX ``Loop`` with a huge
trip count), allocate without bound or crash the runtime. Each suspect is therefore loaded and run
in its own process (``forkserver`` on Linux: forked from a small server that has imported
onnxruntime once, so a worker starts in milliseconds; ``spawn`` elsewhere). The parent waits at
most ``timeout`` seconds for the labels, then kills the worker. Everything the worker prints goes
to stderr; its answer travels over a pipe. The worker ignores SIGINT: the parent owns Ctrl-C and
kills the worker on its way out.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import interrupt
from .errors import GfauditError, SuspectError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TIMEOUT = 120.0
_KILL_GRACE = 5.0
_context = None
_live: set = set()  # workers running now (several at once under --jobs)
_live_lock = threading.Lock()


@dataclass(frozen=True)
class Job:
    """What a worker needs: the suspect, the bundle's images and input spec, the device."""

    path: str
    x: np.ndarray
    x_prime: np.ndarray
    mean: tuple
    std: tuple
    channels: int
    height: int
    width: int
    num_classes: int
    device: str
    threads: int = 0  # onnxruntime intra-op threads; 0: its default (every core)


@dataclass(frozen=True)
class Labels:
    pred_x: np.ndarray
    pred_x_prime: np.ndarray
    provider: str


def run_job(job: Job) -> Labels:
    """Load and run the suspect in this process (what the worker does; raises typed errors)."""
    from .onnx_model import OnnxClassifier

    model = OnnxClassifier(
        job.path,
        device=job.device,
        channels=job.channels,
        height=job.height,
        width=job.width,
        num_classes=job.num_classes,
        threads=job.threads,
    )
    return Labels(model.labels(job.x, job.mean, job.std), model.labels(job.x_prime, job.mean, job.std), model.provider)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _die_with_parent(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _worker(conn, job: Job) -> None:
    from .onnx_model import DeviceError
    from .streams import send_stdout_to_stderr_for_good

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # an auditor killed outright must not leave an endless suspect running
        threading.Thread(target=_die_with_parent, args=(parent.sentinel,), daemon=True).start()
    send_stdout_to_stderr_for_good()
    reply: tuple[str, Labels | str]
    try:
        reply = ("ok", run_job(job))
    except DeviceError as exc:
        reply = ("device", str(exc))
    except GfauditError as exc:
        reply = ("error", str(exc))
    except MemoryError:
        reply = ("error", f"{job.path}: out of memory while running the model")
    except Exception as exc:  # untrusted model: any failure is this suspect's error row
        reply = ("error", f"{job.path}: {type(exc).__name__}: {_first_line(exc)}")
    try:
        conn.send(reply)
    finally:
        conn.close()


def _get_context():
    global _context
    if _context is None:
        if sys.platform.startswith("linux"):
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["gfaudit.isolation", "gfaudit.onnx_model", "onnxruntime"])
        else:
            ctx = multiprocessing.get_context("spawn")
        _context = ctx
    return _context


def _stop(proc) -> None:
    if proc.pid is None:  # interrupted before it started
        return
    if proc.is_alive():
        proc.kill()
    proc.join(_KILL_GRACE)


def _start(proc) -> None:
    """Start ``proc`` with SIGINT blocked: the mask is inherited by the forkserver (started lazily
    here) and by every worker, so Ctrl-C at the terminal reaches only the parent, which then kills
    the worker. A Ctrl-C that arrives meanwhile is delivered when the mask is restored."""
    block = hasattr(signal, "pthread_sigmask")
    with interrupt.deferred():
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if block else None
        try:
            proc.start()
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)


def stop_all() -> None:
    """Kill every worker still running (an abort or Ctrl-C under --jobs): each waiting thread then
    sees its pipe close and returns at once."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if proc.pid is not None and proc.is_alive():
            proc.kill()


def run_isolated(job: Job, timeout: float) -> Labels:
    """Labels from a worker process; SuspectError on timeout, crash or a failure of the model,
    DeviceError when the requested device is missing."""
    from .onnx_model import DeviceError

    ctx = _get_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(sender, job), daemon=True, name="gfaudit-suspect")
    with _live_lock:
        _live.add(proc)
    try:
        _start(proc)
        sender.close()
        if not receiver.poll(timeout):
            raise SuspectError(f"{job.path}: time limit of {timeout:g} s exceeded (see --timeout)")
        try:
            kind, value = receiver.recv()
        except (EOFError, OSError):
            proc.join(_KILL_GRACE)
            code = proc.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise SuspectError(f"{job.path}: the runtime died while running the model ({how})") from None
    finally:
        sender.close()
        _stop(proc)
        receiver.close()
        with _live_lock:
            _live.discard(proc)
    if kind == "ok":
        return value
    if kind == "device":
        raise DeviceError(value)
    raise SuspectError(value)
