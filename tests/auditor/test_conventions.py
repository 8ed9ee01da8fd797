"""What users of pip-audit, trivy or grype expect: --quiet, python -m, shell completion, environment
variables for CI, folders of models, early checks, per-command formats, one normalization default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import onnx_factory as f
from conftest import REPO, needs_torch


@pytest.fixture(scope="module")
def folder(tmp_path_factory, victim_onnx):
    d = tmp_path_factory.mktemp("models")
    (d / "b-copy.onnx").write_bytes(victim_onnx.read_bytes())
    f.build(d / "a-other.onnx", *f.weights(seed=5))
    (d / "notes.txt").write_text("not a model")
    return d


def test_quiet_prints_nothing_on_stderr_unless_the_run_fails(cli, tmp_path, folder, signed_bundle, keypair):
    base = [
        "check",
        folder,
        "--bundle",
        signed_bundle,
        "--pubkey",
        keypair[1],
        "--json-file-output",
        tmp_path / "r.json",
    ]
    loud = cli(*base)
    assert loud.exit_code == 1 and "[1/2]" in loud.stderr and "wrote" in loud.stderr
    for args in (base + ["--quiet"], ["-q"] + base, base + ["-q", "--format", "sarif", "-o", tmp_path / "r.sarif"]):
        r = cli(*args)
        assert r.exit_code == 1 and r.stderr == "", r.stderr  # a finding is not a failure
    failed = cli("check", folder, "--bundle", tmp_path / "missing.safetensors", "--pubkey", keypair[1], "--quiet")
    assert failed.exit_code == 2 and failed.stderr.startswith("gfaudit: error:")  # a mistyped path
    assert cli("--version").exit_code == 0  # the quiet state does not leak into the next invocation
    assert "[1/2]" in cli(*base).stderr


def test_folder_of_models_is_expanded_sorted(cli, folder, signed_bundle, keypair):
    r = cli("check", folder, "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json")
    paths = [Path(s["path"]).name for s in json.loads(r.stdout)["suspects"]]
    assert paths == ["a-other.onnx", "b-copy.onnx"]
    assert r.exit_code == 1


def test_ci_environment_variables(cli, folder, signed_bundle, keypair):
    env = {
        "GFAUDIT_BUNDLE": str(signed_bundle),
        "GFAUDIT_PUBKEY": Path(keypair[1]).read_text(),
        "GFAUDIT_FORMAT": "json",
        "GFAUDIT_DEVICE": "cpu",
    }
    r = cli("check", folder / "b-copy.onnx", env=env)
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["bundle"]["sha256"] and doc["bundle"]["pubkey"] == "$GFAUDIT_PUBKEY"
    assert doc["runtime"]["provider"] == "CPUExecutionProvider"
    assert cli("check", folder / "b-copy.onnx", "--format", "text", env=env).stdout.startswith("bundle ")  # flag wins
    assert cli("check", folder / "b-copy.onnx", env={**env, "GFAUDIT_DEVICE": "tpu"}).exit_code == 2


def test_python_dash_m_and_shell_completion(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gfaudit", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("gfaudit ")
    r = subprocess.run([sys.executable, "-m", "gfaudit", "--help"], capture_output=True, text=True, timeout=120)
    assert "Usage: gfaudit " in r.stdout and "--install-completion" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "gfaudit", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SHELL": "/bin/bash"},
    )
    assert r.returncode == 0 and "_GFAUDIT_COMPLETE" in r.stdout
    # The completion script really completes: ask it for the subcommands that start with "ch".
    r = subprocess.run(
        [sys.executable, "-m", "gfaudit"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "_GFAUDIT_COMPLETE": "complete_bash", "COMP_WORDS": "gfaudit ch", "COMP_CWORD": "1"},
    )
    assert "check" in r.stdout.split()


def test_plot_checks_matplotlib_before_scoring(tmp_path, signed_bundle, keypair, victim_onnx):
    (tmp_path / "v.onnx").write_bytes(victim_onnx.read_bytes())
    (tmp_path / "library.json").write_text(json.dumps({"models": [{"path": "v.onnx", "label": "pirated"}]}))
    block = (
        "import sys\nclass _No:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, _No())\nfrom gfaudit.cli.app import main\nsys.argv = ['gfaudit'] + sys.argv[1:]\nmain()\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            block,
            "evaluate",
            "--library",
            str(tmp_path),
            "--bundle",
            str(signed_bundle),
            "--pubkey",
            str(keypair[1]),
            "--plot",
            str(tmp_path / "c.png"),
            "--json-file-output",
            str(tmp_path / "e.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "pip install 'gfaudit[plot]'" in r.stderr
    assert "score" not in r.stderr and r.stderr.count("\n") == 1  # nothing was scored first
    assert json.loads((tmp_path / "e.json").read_text())["error"]["code"] == 2
    assert not (tmp_path / "c.png").exists()


def _option(fn, name: str):
    """(annotation, default) of a command's option, read from its signature (typer-version independent)."""
    import inspect
    import typing

    param = inspect.signature(fn).parameters[name]
    hints = typing.get_type_hints(inspect.unwrap(fn))
    return hints[name], param.default.default


def test_formats_exist_where_offered():
    from gfaudit import formats
    from gfaudit.cli import app as cli
    from gfaudit_trainer import commands as cli_train

    for fn in (cli.inspect, cli.verify, cli.doctor):
        assert [m.value for m in _option(fn, "fmt")[0]] == ["text", "json"]
    assert [m.value for m in _option(cli.check, "fmt")[0]] == list(formats.COMMANDS["check"])
    assert [m.value for m in _option(cli.evaluate, "fmt")[0]] == list(formats.COMMANDS["evaluate"])
    for command, names in formats.COMMANDS.items():
        for name in names:
            assert callable(getattr(formats.get(name), "check" if command == "check" else "evaluation"))
    assert cli_train  # train and library build are registered from there


def test_one_normalization_default_everywhere():
    from gfaudit.cli import app as cli
    from gfaudit_trainer import commands as cli_train

    defaults = [_option(fn, "normalization")[1] for fn in (cli.bundle_create, cli_train.train, cli_train.library_build)]
    assert {d.value for d in defaults} == {"imagenet"}, defaults


def test_cli_choices_are_the_tables():
    """One table per concept: the CLI's choices are generated from it, in its order."""
    import typing

    from gfaudit import api
    from gfaudit.audit.onnx_model import DEVICES
    from gfaudit.bundle import manifest, scoring
    from gfaudit.bundle.normalization import NORMALIZATIONS
    from gfaudit.cli import common as cli_common

    assert [m.value for m in cli_common.Device] == list(DEVICES)
    assert typing.get_args(api.Device) == DEVICES  # the library API's Literal, for type checkers
    assert [m.value for m in cli_common.Normalization] == list(NORMALIZATIONS)
    assert [m.value for m in cli_common.Rule] == list(scoring.RULES) == list(manifest.SCORING_RULES)
    assert [m.value for m in cli_common.Method] == list(scoring.METHOD_RULES)  # bundle create --method
    assert list(manifest.METHODS) == list(scoring.METHOD_RULES)
    assert set(scoring.METHOD_RULES.values()) <= set(scoring.RULES)
    from gfaudit_trainer import commands
    from gfaudit_trainer.generation import methods

    assert [m.value for m in commands.TrainMethod] == list(methods.names())  # train --method


@needs_torch()
def test_scales_are_the_presets():
    """The trainer's presets, the library's scales and the benchmark's --scale name the same scales."""
    import argparse
    import sys

    from gfaudit_trainer import presets
    from gfaudit_trainer.library import build as library

    sys.path.insert(0, str(REPO / "benchmarks"))
    from common import context_arguments

    scale = next(a for a in context_arguments(argparse.ArgumentParser())._actions if a.dest == "scale")
    assert list(library.SCALES) == list(presets.PRESETS) == list(scale.choices)
