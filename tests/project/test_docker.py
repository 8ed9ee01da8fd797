"""The auditor-cpu image for real: built from a local base image (.ci/docker-base: no image
registry), then run offline (--network none) on the demo's suspects, as a CI runner would run it.

Skipped, with the reason, where no Docker daemon answers or no base image can be built (not root,
no debootstrap, no Debian mirror). `.ci/run` starts a daemon where it runs as root. The first build
on a machine takes about 3 minutes for the base image (then cached outside the clone, in
/var/cache/gfaudit-ci) and about 1 minute for the image; later runs reuse Docker's layer cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from conftest import REPO

BASE = os.environ.get("GFAUDIT_DOCKER_BASE", "gfaudit-base:bookworm")
IMAGE = "gfaudit:test-auditor-cpu"
DEMO = REPO / "fingerprints" / "resnet20-cifar10"
RUNNER_UID = 1001  # the uid that owns the workspace on GitHub's hosted runners (user `runner`)
SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())
ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder: BuildKit could pull a frontend image


def _docker(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    if check:
        assert r.returncode == 0, f"docker {' '.join(args[:3])}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
    return r


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None:
        pytest.skip("no docker command (apt-get install docker.io)")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip(f"no Docker daemon answers ({_last_line(info.stderr)}); .ci/run starts one where it runs as root")
    if _docker("image", "inspect", BASE).returncode != 0:
        if os.geteuid() != 0:
            pytest.skip(f"no base image {BASE} and not root: .ci/docker-base needs root for debootstrap")
        r = subprocess.run(
            ["bash", str(REPO / ".ci" / "docker-base"), BASE], capture_output=True, text=True, timeout=1200
        )
        if r.returncode != 0:
            pytest.skip(f"no base image could be built: {_last_line(r.stderr)}")
    _docker(
        "build",
        "--build-arg",
        f"PYTHON_IMAGE={BASE}",
        "--target",
        "auditor-cpu",
        "-t",
        IMAGE,
        str(REPO),
        timeout=1800,
        check=True,
    )
    return IMAGE


def _workspace(tmp_path: Path, uid: int, mode: int = 0o755) -> Path:
    """The demo's bundle, key and suspects in a folder owned by ``uid``, as a CI checkout is."""
    ws = tmp_path / "workspace"
    ws.mkdir(parents=True)
    for name in ("resnet20-cifar10.safetensors", "resnet20-cifar10.safetensors.sig", "owner.pub"):
        shutil.copy(DEMO / name, ws / name)
    shutil.copytree(DEMO / "suspects", ws / "suspects")
    for p in [ws, *ws.rglob("*")]:
        if os.geteuid() == 0:
            os.chown(p, uid, uid)
        p.chmod(mode if p.is_dir() else 0o644)
    return ws


CHECK = [
    "check",
    "suspects",
    "--bundle",
    "resnet20-cifar10.safetensors",
    "--pubkey",
    "owner.pub",
    "--json-file-output",
    "r.json",
    "--sarif-file-output",
    "r.sarif",
]


def _run(image: str, ws: Path, *user: str) -> subprocess.CompletedProcess:
    return _docker("run", "--rm", "--network", "none", *user, "-v", f"{ws}:/workspace", image, *CHECK)


def test_image_holds_no_torch_and_no_pip(image):
    r = _docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python3",
        image,
        "-c",
        "import importlib.util as u, gfaudit, onnxruntime; "
        "print([m for m in ('torch', 'torchvision', 'pip') if u.find_spec(m)], onnxruntime.get_device())",
        check=True,
    )
    assert r.stdout.split() == ["[]", "CPU"], r.stdout
    size = int(_docker("image", "inspect", "--format", "{{.Size}}", image, check=True).stdout)
    assert size < 400e6, f"auditor-cpu is {size / 1e6:.0f} MB"  # 304 MB when measured (docs/ci.md)
    user = _docker("image", "inspect", "--format", "{{.Config.User}}", image, check=True).stdout.strip()
    assert user == "10001:10001"


def test_image_checks_the_demo_offline_like_the_host(image, tmp_path, cli, monkeypatch):
    """GitHub Actions: the workspace belongs to the runner's uid; `--user "$(id -u):$(id -g)"`
    makes the container write its reports as that uid. The image gives the host's verdicts."""
    uid = RUNNER_UID if os.geteuid() == 0 else os.geteuid()
    ws = _workspace(tmp_path, uid)
    r = _run(image, ws, "--user", f"{uid}:{uid}")
    assert r.returncode == 1, r.stderr  # the demo finds derived models
    assert r.stdout and "Traceback" not in r.stderr
    for name in ("r.json", "r.sarif"):
        assert (ws / name).stat().st_uid == uid
    doc = json.loads((ws / "r.json").read_text())
    assert doc["exit_code"] == 1 and doc["error"] is None
    assert doc["runtime"]["provider"] == "CPUExecutionProvider"

    monkeypatch.chdir(ws)  # the same check on the host, same relative paths
    host = cli(*CHECK[:-4], "--format", "json")
    assert host.exit_code == r.returncode
    want = json.loads(host.stdout)
    assert doc["bundle"]["sha256"] == want["bundle"]["sha256"]
    fields = ("path", "verdict", "score", "p_ori", "p_conf", "p_value")
    assert [{k: s[k] for k in fields} for s in doc["suspects"]] == [{k: s[k] for k in fields} for s in want["suspects"]]
    assert {s["verdict"] for s in doc["suspects"]} == {"derived", "not-derived"}

    sarif = json.loads((ws / "r.sarif").read_text())
    errors = list(jsonschema.Draft4Validator(SCHEMA).iter_errors(sarif))
    assert not errors, [e.message for e in errors[:3]]
    run = sarif["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is True and run["invocations"][0]["exitCode"] == 1
    flagged = {
        x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for x in run["results"]
        if x["level"] == "error"
    }
    assert flagged == {s["path"] for s in doc["suspects"] if s["verdict"] == "derived"}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a workspace owned by another uid")
def test_default_uid_needs_a_workspace_it_can_write(image, tmp_path):
    """Without --user the image runs as uid 10001: a runner-owned 0755 checkout refuses its reports
    (exit 2, one line, nothing written); a world-writable one (GitLab's Docker executor checks out
    with umask 0000) takes them."""
    ws = _workspace(tmp_path, RUNNER_UID)
    r = _run(image, ws)
    assert r.returncode == 2 and "read-only" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (ws / "r.json").exists() and not (ws / "r.sarif").exists()
    gitlab = _workspace(tmp_path / "gitlab", 0, mode=0o777)
    r = _run(image, gitlab)
    assert r.returncode == 1, r.stderr
    assert (gitlab / "r.sarif").stat().st_uid == 10001
