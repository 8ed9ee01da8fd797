"""Packaging and the Docker image, checked without a Docker engine: hadolint, the Dockerfile's
structure, requirement files in sync with pyproject, and real installs into fresh virtual envs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
RUNTIME_TARGETS = ("auditor-cpu", "auditor-gpu", "trainer")


def _hadolint() -> str | None:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    return found if Path(found).is_file() else None


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (pip install 'gfaudit[test]')")
def test_hadolint_passes():
    r = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _stages() -> dict[str, list[dict]]:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(DOCKERFILE))
    stages: dict[str, list[dict]] = {}
    current = None
    for ins in parser.structure:
        if ins["instruction"] == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", ins["value"], re.I)
            current = m.group(2) or m.group(1)
            stages[current] = []
        elif current:
            stages[current].append(ins)
    return stages


def _chain(stages, name) -> list[dict]:
    """A stage's instructions, preceded by those of the stages it builds FROM."""
    from dockerfile_parse import DockerfileParser

    parents = {}
    for ins in DockerfileParser(path=str(DOCKERFILE)).structure:
        if ins["instruction"] == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", ins["value"], re.I)
            parents[m.group(2) or m.group(1)] = m.group(1)
    parent = parents.get(name)
    return (_chain(stages, parent) if parent in stages else []) + stages[name]


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_runtime_targets_end_non_root_with_json_entrypoint(target):
    stages = _stages()
    assert target in stages
    ins = _chain(stages, target)
    users = [i["value"] for i in ins if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = [i["value"] for i in ins if i["instruction"] == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["gfaudit"]
    labels = " ".join(i["value"] for i in ins if i["instruction"] == "LABEL")
    for key in ("title", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{key}" in labels


@pytest.mark.parametrize("target", ["auditor-cpu", "auditor-gpu"])
def test_auditor_targets_install_no_torch(target):
    ins = _chain(_stages(), target)
    text = " ".join(i["value"] for i in ins if i["instruction"] in ("RUN", "COPY"))
    assert "torch" not in text and "[train]" not in text and "trainer.txt" not in text
    req = re.search(r"requirements/(auditor-\w+)\.txt", text).group(1)
    assert "torch" not in (REPO / "requirements" / f"{req}.txt").read_text()


def test_cpu_target_installs_no_onnxruntime_gpu():
    text = " ".join(i["value"] for i in _chain(_stages(), "auditor-cpu") if i["instruction"] in ("RUN", "COPY"))
    assert "onnxruntime-gpu" not in text and "auditor-gpu.txt" not in text
    assert "--no-deps" in text  # gfaudit's own metadata names onnxruntime-gpu; the image must not follow it
    reqs = _requirement_names((REPO / "requirements" / "auditor-cpu.txt").read_text().splitlines())
    assert "onnxruntime-gpu" not in reqs and "onnxruntime" in reqs


def test_no_secrets_and_pinned_bases():
    text = DOCKERFILE.read_text()
    assert not re.search(r"(?i)(password|secret|token|\.key\b)\s*=", text)
    assert "owner.key" not in text
    for image in re.findall(r"^ARG \w+_IMAGE=(\S+)", text, re.M):
        assert re.search(r":\d+\.\d+\.\d+", image), image  # an exact version, never latest
    assert "*.key" in (REPO / ".dockerignore").read_text()


def _requirement_names(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-r") or ";" in line:
            continue
        m = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?(.*)", line)
        out[m.group(1).lower()] = m.group(3).strip()
    return out


def test_requirement_files_match_pyproject():
    deps = _requirement_names(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    cpu = _requirement_names((REPO / "requirements" / "auditor-cpu.txt").read_text().splitlines())
    gpu = _requirement_names((REPO / "requirements" / "auditor-gpu.txt").read_text().splitlines())
    assert "torch" not in deps
    assert set(gpu) == set(deps)
    assert set(cpu) == (set(deps) - {"onnxruntime-gpu"}) | {"onnxruntime"}
    for name, spec in deps.items():
        if name != "onnxruntime-gpu":
            assert cpu[name] == spec == gpu[name], name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("gfaudit-*.whl")
    return whl


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


def _pip(bindir: Path, *args: str):
    r = subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q", *args], capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]


def _installed(bindir: Path) -> set[str]:
    r = subprocess.run([str(bindir / "python"), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
    return {p["name"].lower() for p in json.loads(r.stdout)}


def _check_works(bindir: Path, bundle, pub, victim) -> None:
    r = subprocess.run([str(bindir / "gfaudit"), "check", str(victim), "--bundle", str(bundle), "--pubkey", str(pub),
                        "--format", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["suspects"][0]["verdict"] == "derived"
    probe = subprocess.run([str(bindir / "python"), "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0  # torch is not installed there at all


def test_image_style_cpu_install_in_fresh_venv(tmp_path, wheel, signed_bundle, keypair, victim_onnx):
    """What the auditor-cpu image does: requirements/auditor-cpu.txt, then the wheel with --no-deps."""
    bindir = _fresh_venv(tmp_path / "venv")
    _pip(bindir, "-r", str(REPO / "requirements" / "auditor-cpu.txt"))
    _pip(bindir, "--no-deps", str(wheel))
    installed = _installed(bindir)
    assert "onnxruntime" in installed and "onnxruntime-gpu" not in installed and "torch" not in installed
    _check_works(bindir, signed_bundle, keypair[1], victim_onnx)


def test_plain_pip_install_has_no_torch(tmp_path, wheel, signed_bundle, keypair, victim_onnx):
    """`pip install gfaudit` (no extras): onnxruntime-gpu, which also runs on CPU, and never torch."""
    bindir = _fresh_venv(tmp_path / "venv")
    _pip(bindir, str(wheel))
    installed = _installed(bindir)
    assert "torch" not in installed and "onnxruntime-gpu" in installed and "onnxruntime" not in installed
    _check_works(bindir, signed_bundle, keypair[1], victim_onnx)
