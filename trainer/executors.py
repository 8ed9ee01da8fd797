"""Where independent model jobs run: in this process (``local``) or as Ray tasks (``ray``).

Pool models and library models are independent jobs that read shared data and write one cache file
each. An executor maps a module-level function over such jobs and returns the results in input
order; the caller skips the jobs whose cache files exist, so a killed driver resumes from the cache
whichever executor trained the finished models. The local executor needs nothing new; Ray is
imported only when the ``ray`` executor is asked for (``pip install 'gfaudit[ray]'``).

Every job sets its torch thread count to ``Resources.num_cpus`` before it trains, in both
executors: on CPU the same job gives bit-identical weights whichever executor ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gfaudit.errors import GfauditError, UsageError
from gfaudit_trainer import progress


class ExecutorMissing(GfauditError):
    """The ray executor was asked for but Ray is not installed (exit 4)."""

    exit_code = 4


class TaskFailed(GfauditError):
    """A job failed on every attempt its executor allowed (exit 4)."""

    exit_code = 4


@dataclass(frozen=True)
class Resources:
    """What one job declares: CPU threads (also its torch thread count), a GPU share (Ray packs
    e.g. four 0.25-GPU jobs on one GPU), and how often a job whose worker died is retried."""

    num_cpus: int = 1
    num_gpus: float = 0.0
    max_retries: int = 3

    def __post_init__(self):
        if self.num_cpus < 1:
            raise UsageError(f"--task-cpus {self.num_cpus}: must be at least 1")
        if not 0 <= self.num_gpus <= 64:
            raise UsageError(f"--task-gpus {self.num_gpus}: must be between 0 and 64")


def default_resources(device, num_cpus: int | None = None, num_gpus: float | None = None) -> Resources:
    """Each job uses the driver's torch thread count unless told otherwise (so local and Ray runs
    train alike by default), and a quarter of a GPU when the device is CUDA."""
    import torch

    cuda = str(device).startswith("cuda")
    return Resources(
        num_cpus=num_cpus or torch.get_num_threads(), num_gpus=(0.25 if cuda else 0.0) if num_gpus is None else num_gpus
    )


def run_task(fn: Callable[[Any, Any], Any], item: Any, shared: Any, threads: int, quiet: bool) -> Any:
    """One job as every executor runs it: a fixed torch thread count, the driver's --quiet."""
    import torch

    previous = torch.get_num_threads()
    progress.QUIET = quiet
    torch.set_num_threads(threads)
    try:
        return fn(item, shared)
    finally:
        torch.set_num_threads(previous)


class LocalExecutor:
    """Jobs one after another in this process (the default: nothing to install or start)."""

    name = "local"

    def __init__(self, address: str | None = None):
        if address:
            raise UsageError("--ray-address needs --executor ray")

    def map(self, fn, items: Sequence, resources: Resources, shared: Any = None) -> list:
        return [run_task(fn, item, shared, resources.num_cpus, progress.QUIET) for item in items]


class RayExecutor:
    """Each job is one Ray task with declared CPUs/GPUs and ``max_retries`` (a task whose worker
    dies is run again). ``shared`` goes to the object store once, not once per task. ``address``:
    ``auto`` (a running cluster), ``ray://host:10001`` (Ray Client) or None (a local Ray, or the one
    this process already started)."""

    name = "ray"

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise ExecutorMissing("--executor ray needs Ray: pip install 'gfaudit[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=not progress.QUIET,
                    runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
                )
            except ConnectionError as exc:
                raise UsageError(
                    f"--ray-address {address}: no Ray cluster there ({str(exc).splitlines()[0][:200]})"
                ) from None

    def map(self, fn, items: Sequence, resources: Resources, shared: Any = None) -> list:
        ray = self.ray
        if not items:
            return []
        remote = ray.remote(
            num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, max_retries=resources.max_retries
        )(run_task)
        try:
            shared_ref = ray.put(shared)
        except Exception as exc:  # e.g. a TorchScript victim: Ray cannot send it to workers
            raise UsageError(
                f"--executor ray cannot send the job data to its workers ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); give the victim as a "
                "state_dict with --arch"
            ) from None
        refs = [remote.remote(fn, item, shared_ref, resources.num_cpus, progress.QUIET) for item in items]
        try:
            return ray.get(refs)
        except BaseException as exc:
            for ref in refs:  # Ctrl-C or a failed job: stop the tasks still queued or running
                ray.cancel(ref, force=True)
            if isinstance(exc, ray.exceptions.RayTaskError):  # the job itself raised: its own error
                cause = exc.as_instanceof_cause()
                if isinstance(cause, GfauditError):
                    raise cause from None
                raise TaskFailed(f"a Ray task failed: {str(exc).strip().splitlines()[-1][:300]}") from None
            if isinstance(exc, ray.exceptions.WorkerCrashedError):
                raise TaskFailed(f"a Ray task's worker died {resources.max_retries + 1} times") from None
            raise


EXECUTORS: dict[str, type] = {"local": LocalExecutor, "ray": RayExecutor}


def get(name: str = "local", address: str | None = None):
    """The executor called ``name`` (``local`` or ``ray``), connected to ``address`` for Ray."""
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](address)
