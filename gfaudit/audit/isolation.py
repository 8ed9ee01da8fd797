"""Run one suspect in a worker process under a time limit, so that no suspect can cost the others.

A suspect is untrusted code for onnxruntime: a graph can loop for ever (an ONNX ``Loop`` with a huge
trip count), allocate without bound or crash the runtime. Each suspect is therefore loaded and run
in its own process (``forkserver`` on Linux: forked from a small server that has imported
onnxruntime once, so a worker starts in milliseconds; ``spawn`` elsewhere). The parent waits at
most ``timeout`` seconds for the labels, then kills the worker. Everything the worker prints goes
to stderr; its answer travels over a pipe. The worker ignores SIGINT, SIGTERM and SIGHUP: the
parent owns them and kills the worker on its way out.

Workers never re-run the caller's ``__main__``: multiprocessing would re-import the main script in
every child (the reason its docs ask for an ``if __name__ == "__main__"`` guard, and a crash when
the main "script" is stdin). A worker only needs gfaudit's own modules, so the main module is left
out of what the child is told to prepare (``_Popen``), and the API works from an unguarded script,
from stdin and from a notebook. A daemonic process (a ``multiprocessing.Pool`` worker) may not
start children at all; there :func:`require_available` raises a typed error saying so.

The forkserver can be started ahead of time (:func:`prestart`), so that its start-up (importing
onnxruntime) overlaps the verification of the bundle.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gfaudit.errors import GfauditError, SuspectError, UsageError
from gfaudit.files import interrupt

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TIMEOUT = 120.0
_KILL_GRACE = 5.0
# poll() takes milliseconds as a C int: one wait may last at most ~24.8 days. Longer limits are
# waited out in slices of this many seconds (an --timeout of a year is valid, not an OverflowError).
_MAX_WAIT_SLICE = 86400.0
# Signals the parent owns: blocked in every worker (and the forkserver), so that a Ctrl-C at the
# terminal or a SIGTERM/SIGHUP sent to the process group reaches only the parent, which unwinds.
PARENT_SIGNALS = frozenset(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
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
    num_classes: int | None  # None: any number of classes (a victim that defines them)
    device: str
    threads: int = 0  # onnxruntime intra-op threads; 0: its default (every core)
    logits: bool = False  # also return the logits of x (a victim labelling new pairs, a reference)


@dataclass(frozen=True)
class Labels:
    pred_x: np.ndarray
    pred_x_prime: np.ndarray
    provider: str
    logits_x: np.ndarray | None = None  # only when the job asked for them


def run_job(job: Job) -> Labels:
    """Load and run the model in this process (what the worker does; raises typed errors)."""
    import numpy as np

    from gfaudit.audit.onnx_model import OnnxClassifier

    model = OnnxClassifier(
        job.path,
        device=job.device,
        channels=job.channels,
        height=job.height,
        width=job.width,
        num_classes=job.num_classes,
        threads=job.threads,
    )
    logits = model.logits(job.x, job.mean, job.std) if job.logits else None
    pred_x = logits.argmax(axis=1).astype(np.int64) if logits is not None else model.labels(job.x, job.mean, job.std)
    pred_xp = model.labels(job.x_prime, job.mean, job.std) if len(job.x_prime) else np.zeros(0, np.int64)
    return Labels(pred_x, pred_xp, model.provider, logits)


def check_timeout(timeout: float | None, what: str = "--timeout") -> float | None:
    """``timeout`` if it is None (in-process, no limit) or a positive finite number of seconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise UsageError(f"{what} {timeout!r}: must be a positive number of seconds")
    return float(timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _die_with_parent(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _worker(conn, job: Job) -> None:
    from gfaudit.audit.onnx_model import DeviceError
    from gfaudit.files.streams import send_stdout_to_stderr_for_good

    for signum in PARENT_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
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


_PRELOAD = ["gfaudit.audit.isolation", "gfaudit.audit.onnx_model", "onnxruntime"]
_context_lock = threading.Lock()


def _without_main(prep: dict) -> dict:
    """What a worker prepares before it runs: everything but the caller's main module."""
    return {k: v for k, v in prep.items() if k not in ("init_main_from_path", "init_main_from_name")}


if sys.platform.startswith("linux"):
    from multiprocessing import forkserver as _forkserver, popen_forkserver, reduction, spawn as _spawn, util as _util
    from multiprocessing.context import ForkServerProcess, set_spawning_popen

    class _WorkerPopen(popen_forkserver.Popen):
        """multiprocessing's forkserver Popen, launching without the caller's ``__main__``: the body
        is ``popen_forkserver.Popen._launch`` (unchanged from Python 3.8 to 3.13) with the main
        module dropped from the preparation data."""

        def _launch(self, process_obj):
            prep_data = _without_main(_spawn.get_preparation_data(process_obj._name))
            buf = io.BytesIO()
            set_spawning_popen(self)
            try:
                reduction.dump(prep_data, buf)
                reduction.dump(process_obj, buf)
            finally:
                set_spawning_popen(None)
            self.sentinel, w = _forkserver.connect_to_new_process(self._fds)
            _parent_w = os.dup(w)
            self.finalizer = _util.Finalize(self, _util.close_fds, (_parent_w, self.sentinel))
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = _forkserver.read_signed(self.sentinel)

    class _WorkerProcess(ForkServerProcess):
        """A forkserver process started through :class:`_WorkerPopen` (gfaudit's own class: the
        shared forkserver context is left untouched for other users of multiprocessing)."""

        @staticmethod
        def _Popen(process_obj):
            return _WorkerPopen(process_obj)


def _get_context():
    """(context, Process class) for workers: on Linux the forkserver with :class:`_WorkerProcess`,
    elsewhere spawn."""
    global _context
    with _context_lock:
        if _context is None:
            if sys.platform.startswith("linux"):
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(_PRELOAD)
                _context = (ctx, _WorkerProcess)
            else:
                ctx = multiprocessing.get_context("spawn")
                _context = (ctx, ctx.Process)
        return _context


def _stop(proc) -> None:
    if proc.pid is None:  # interrupted before it started
        return
    if proc.is_alive():
        proc.kill()
    proc.join(_KILL_GRACE)


def _blocked(fn) -> None:
    """Run ``fn`` with the parent's signals blocked in this thread: the mask is inherited by the
    forkserver (started lazily) and by every worker, so Ctrl-C at the terminal reaches only the
    parent, which then kills the worker. A signal that arrives meanwhile is delivered when the
    mask is restored."""
    block = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS) if block else None
    try:
        fn()
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start(proc) -> None:
    with interrupt.deferred():
        _blocked(proc.start)


def require_available() -> None:
    """Raise UsageError (exit 2) when this process may not start workers: a daemonic process (a
    ``multiprocessing.Pool`` worker) cannot have children, so it cannot isolate a model."""
    if multiprocessing.current_process().daemon:
        raise UsageError(
            "models run in isolated worker processes, and this is a daemonic process (a "
            "multiprocessing.Pool worker), which may not start any: call gfaudit from the main "
            "process, a thread or a concurrent.futures.ProcessPoolExecutor worker, or pass "
            "timeout=None to run trusted models in this process"
        )


_prestarted: threading.Thread | None = None


def prestart() -> None:
    """Start the forkserver now, in a background thread, so that its start-up (a Python process
    importing onnxruntime) overlaps whatever the caller does next (verifying the bundle). Harmless
    to call twice, on platforms without a forkserver, or in a daemonic process (then a no-op)."""
    global _prestarted
    if _prestarted is not None or not sys.platform.startswith("linux") or multiprocessing.current_process().daemon:
        return
    from multiprocessing import forkserver

    _get_context()

    def run() -> None:
        try:
            _blocked(forkserver.ensure_running)
        except Exception:  # the first worker start retries and reports any real failure
            pass

    _prestarted = threading.Thread(target=run, name="gfaudit-forkserver", daemon=True)
    _prestarted.start()


def _wait(receiver, timeout: float) -> bool:
    """``receiver.poll(timeout)`` for any finite timeout, however long."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if receiver.poll(max(0.0, min(left, _MAX_WAIT_SLICE))):
            return True
        if left <= _MAX_WAIT_SLICE:
            return False


def stop_all() -> None:
    """Kill every worker still running (an abort or Ctrl-C under --jobs): each waiting thread then
    sees its pipe close and returns at once."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if proc.pid is not None and proc.is_alive():
            proc.kill()


def run(job: Job, timeout: float | None) -> Labels:
    """Labels from a worker process under ``timeout`` seconds, or in this process without a limit
    when ``timeout`` is None (trusted models only): the one choice every caller makes."""
    return run_job(job) if timeout is None else run_isolated(job, timeout)


def run_isolated(job: Job, timeout: float) -> Labels:
    """Labels from a worker process; SuspectError on timeout, crash or a failure of the model,
    DeviceError when the requested device is missing."""
    from gfaudit.audit.onnx_model import DeviceError

    require_available()
    ctx, process_class = _get_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = process_class(target=_worker, args=(sender, job), daemon=True, name="gfaudit-suspect")
    with _live_lock:
        _live.add(proc)
    try:
        _start(proc)
        sender.close()
        if not _wait(receiver, timeout):
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
