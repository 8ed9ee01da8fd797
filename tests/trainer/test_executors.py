"""Pools and libraries through a real local Ray (2 CPUs): same cache files, bit-identical models
whichever executor trained them, no retraining from a warm cache, and a killed task retried."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA, SHARED_VICTIM, needs_shared, needs_torch, tiny_train_args

pytestmark = [needs_torch(), needs_shared()]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for this module, stopped afterwards."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _train(cli, tmp_path, keypair, cache: Path, out: str, *extra):
    r = cli(*tiny_train_args(tmp_path / out, cache, keypair, "--task-cpus", "1", *extra))
    assert r.exit_code == 0, r.output
    return r


def _pool_files(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.glob("pools/*/*.safetensors"))}


def _mtimes(folder: Path, pattern: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob(pattern)}


def test_tiny_pools_on_ray_equal_local_and_are_reused(local_ray, cli, tmp_path, keypair):
    from gfaudit_trainer import presets
    from gfaudit_trainer.models import pools

    jobs = pools.jobs(presets.get("tiny"), tmp_path / "none", 0)
    trains = [j for j in jobs if not pools.is_cached(j)]  # pruned and filtered copies are never trained
    first = _train(cli, tmp_path, keypair, tmp_path / "ray-cache", "ray.safetensors", "--executor", "ray")
    assert f"training {len(trains)} of {len(jobs)} model(s) on the ray executor" in first.stderr
    _train(cli, tmp_path, keypair, tmp_path / "local-cache", "local.safetensors")
    on_ray, local = _pool_files(tmp_path / "ray-cache"), _pool_files(tmp_path / "local-cache")
    assert len(on_ray) == len(trains) and on_ray.keys() == local.keys()  # same cache names
    assert on_ray == local  # bit-identical weights whichever executor trained them
    # Each executor reuses the other's cache: nothing trains again.
    before = _mtimes(tmp_path / "ray-cache", "pools/*/*.safetensors")
    again = _train(cli, tmp_path, keypair, tmp_path / "ray-cache", "again.safetensors")
    assert "epoch 1/1" not in again.stderr
    again = _train(cli, tmp_path, keypair, tmp_path / "local-cache", "again2.safetensors", "--executor", "ray")
    assert "pools: training" not in again.stderr
    assert _mtimes(tmp_path / "ray-cache", "pools/*/*.safetensors") == before


def _weights(path: Path) -> dict:
    import onnx
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t).tobytes() for t in onnx.load(str(path)).graph.initializer}


def test_tiny_library_on_ray_equals_local_and_resumes(local_ray, cli, tmp_path):
    only = "prune-0.3,unrelated-vgg11:width=0.25-0"

    def build(out: Path, *extra):
        r = cli(
            "library",
            "build",
            "--victim",
            SHARED_VICTIM,
            "--arch",
            "resnet20",
            "--data",
            SHARED_DATA,
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "-o",
            out,
            "--cache",
            tmp_path / "cache",
            "--only",
            only,
            "--task-cpus",
            "1",
            *extra,
        )
        assert r.exit_code == 0, r.output
        return json.loads((out / "library.json").read_text())

    on_ray = build(tmp_path / "ray", "--executor", "ray")
    local = build(tmp_path / "local")
    assert [m["attack"] for m in on_ray["models"]] == ["prune-0.3", "unrelated-vgg11:width=0.25-0"]
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in on_ray["models"]]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in local["models"]]
    for m in on_ray["models"]:
        assert _weights(tmp_path / "ray" / m["path"]) == _weights(tmp_path / "local" / m["path"])
    before = _mtimes(tmp_path / "ray", "*.onnx")
    assert build(tmp_path / "ray")["models"] == on_ray["models"]  # local resumes the Ray build: nothing rebuilt
    assert _mtimes(tmp_path / "ray", "*.onnx") == before


def _crash_once(marker: str, _shared) -> int:
    """Kill this worker process the first time (as an OOM kill or a lost node would), then succeed."""
    path = Path(marker)
    if not path.exists():
        path.write_text("crashed")
        os._exit(1)
    return os.getpid()


def test_a_killed_task_is_retried(local_ray, tmp_path):
    from gfaudit_trainer import executors

    runner = executors.get("ray")
    markers = [str(tmp_path / f"m{i}") for i in range(3)]
    pids = runner.map(_crash_once, markers, executors.Resources(num_cpus=1, max_retries=2))
    assert len(pids) == 3 and all(isinstance(p, int) for p in pids)
    assert all(Path(m).read_text() == "crashed" for m in markers)  # each task died once, then its retry succeeded
    with pytest.raises(executors.TaskFailed, match="died"):
        runner.map(_crash_once, [str(tmp_path / "never")], executors.Resources(num_cpus=1, max_retries=0))


def test_executor_options_are_checked(cli, tmp_path, keypair):
    from gfaudit_trainer import executors

    with pytest.raises(Exception, match="unknown executor"):
        executors.get("dask")
    with pytest.raises(Exception, match="needs --executor ray"):
        executors.get("local", "auto")
    r = cli(
        "train",
        "--victim",
        SHARED_VICTIM,
        "--arch",
        "resnet20",
        "--preset",
        "tiny",
        "--key",
        keypair[0],
        "-o",
        tmp_path / "x.safetensors",
        "--ray-address",
        "auto",
    )
    assert r.exit_code == 2 and "needs --executor ray" in r.output
