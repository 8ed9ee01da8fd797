"""Every command in README.md and docs/*.md works as written: shell snippets parse (bash -n), every
`gfaudit` invocation uses a subcommand and flags the real CLI has, repository paths exist, Docker
targets exist, YAML snippets validate against the GitHub-workflow and GitLab-CI schemas
(check-jsonschema's built-in, offline copies), the README demo runs, and Python examples run."""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gfaudit.cli.app import app

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
# Top-level entries of the repository: a relative path starting with one of them is a repo path.
NOT_REPO = {".git", ".venv", ".venv-ci", "build", "dist", ".pytest_cache"}
TOP = {p.name for p in REPO.iterdir()} - NOT_REPO


def _blocks(*langs: str) -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) in langs:
                out.append((doc.name, text[: m.start()].count("\n") + 1, m.group(2)))
    return out


SHELL = _blocks("bash", "sh", "shell", "console")
YAML = _blocks("yaml", "yml")
PYTHON = _blocks("python")


def _ids(blocks):
    return [f"{name}:{line}" for name, line, _ in blocks]


# ---------------------------------------------------------------- shell commands


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a script: continuation lines joined, comments dropped, split at ; && || |."""
    script = script.replace("\\\n", " ")
    commands = []
    for line in script.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        current: list[str] = []
        for tok in lex:
            if tok in (";", "&&", "||", "|", "&"):
                commands.append(current)
                current = []
            else:
                current.append(tok)
        commands.append(current)
    return [c for c in commands if c]


def gfaudit_args(cmd: list[str]) -> list[str] | None:
    """The arguments given to gfaudit by one simple command, or None if it does not run gfaudit."""
    while cmd and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", cmd[0]):
        cmd = cmd[1:]  # VAR=value prefixes
    if not cmd:
        return None
    if Path(cmd[0]).name == "gfaudit":
        return cmd[1:]
    if Path(cmd[0]).name.startswith("python") and cmd[1:3] == ["-m", "gfaudit"]:
        return cmd[3:]
    if cmd[0] == "docker" and cmd[1:2] == ["run"]:
        for i, tok in enumerate(cmd):
            if re.search(r"(^|/)gfaudit:[\w.-]+$", tok):
                return cmd[i + 1 :]
    return None


@cache
def help_text(*path: str) -> str:
    r = CliRunner().invoke(app, [*path, "--help"])
    assert r.exit_code == 0, f"gfaudit {' '.join(path)} --help: {r.output}"
    return r.stdout


def _commands(help_out: str) -> set[str]:
    section = help_out.split("Commands:", 1)[1] if "Commands:" in help_out else ""
    return {m.group(1) for m in re.finditer(r"^\s{2}([a-z][\w-]*)\s", section, re.M)}


def check_gfaudit_invocation(args: list[str], where: str) -> None:
    """Subcommand path exists; every --flag (and -x) it uses appears in that subcommand's --help."""
    args = [a.strip("[]") for a in args]
    path: list[str] = []
    flags: list[str] = []
    rest = list(args)
    while rest:
        tok = rest.pop(0)
        if tok.startswith("-"):
            flags.append((tuple(path), tok.split("=", 1)[0]))
            continue
        cmds = _commands(help_text(*path))
        if cmds:
            assert tok in cmds, f"{where}: `gfaudit {' '.join(args)}`: no subcommand {' '.join(path + [tok])!r}"
            path.append(tok)
            continue
        break  # the leaf command's positional arguments and option values follow
    assert path or flags, f"{where}: `gfaudit` without a subcommand"
    flags += [(tuple(path), t.split("=", 1)[0]) for t in rest if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", t)]
    for owner, flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text(*owner)), (
            f"{where}: `gfaudit {' '.join(owner)}` has no option {flag}"
        )


def check_repo_paths(cmd: list[str], where: str) -> None:
    for tok in cmd:
        if tok.startswith(("-", "/", "$", "~")) or "://" in tok or "@" in tok:
            continue
        first = tok.split("/", 1)[0]
        if first in TOP and ("/" in tok or (REPO / tok).exists() or "." in first):
            assert glob.glob(str(REPO / tok)), f"{where}: {tok} does not exist in the repository"


def docker_targets() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M | re.I))


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_snippet(block):
    name, line, script = block
    where = f"{name}:{line}"
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, f"{where}: bash -n: {r.stderr}"
    for cmd in simple_commands(script):
        check_repo_paths(cmd, where)
        if cmd[:2] == ["docker", "build"] and "--target" in cmd:
            assert cmd[cmd.index("--target") + 1] in docker_targets(), f"{where}: no Docker target"
        args = gfaudit_args(cmd)
        if args is not None:
            check_gfaudit_invocation(args, where)


def test_inline_gfaudit_commands_use_real_flags():
    """`gfaudit ...` in inline code (README's table, docs' prose) names real subcommands and flags."""
    seen = 0
    for doc in DOCS:
        for m in re.finditer(r"`((?:\.venv/bin/)?gfaudit [^`]+)`", doc.read_text()):
            text = m.group(1).replace("\\|", "|")
            if "..." in text:
                text = text.split("...")[0]
            for cmd in simple_commands(text):
                args = gfaudit_args(cmd)
                if args:
                    check_gfaudit_invocation(args, f"{doc.name}: `{m.group(1)}`")
                    seen += 1
    assert seen >= 10


def test_no_install_from_a_package_index_that_has_no_gfaudit():
    for doc in DOCS:
        text = doc.read_text()
        assert not re.search(r"pip install (-\S+ )*['\"]?gfaudit(\[[^\]]*\])?(?!\s*@)['\"]?(\s|$|`)", text), doc.name


def test_links_stay_inside_the_repository():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if "://" in target or target.startswith("#"):
                continue
            resolved = (doc.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(REPO) and resolved.exists(), f"{doc.name}: link {target}"


def test_readme_demo_runs_as_written():
    """The demo's gfaudit command, as written (globs expanded by the shell), from the repository root."""
    ((_, _, script),) = [b for b in SHELL if b[0] == "README.md" and "gfaudit check" in b[2]]
    (cmd,) = [c for c in simple_commands(script) if gfaudit_args(c)]
    args = [p for a in gfaudit_args(cmd) for p in (sorted(glob.glob(str(REPO / a))) if "*" in a else [a])]
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        r = CliRunner().invoke(app, args)
    finally:
        os.chdir(cwd)
    assert r.exit_code == 1, r.output
    assert r.stdout.count("not-derived") == 1 and "2 of 3 suspect(s) derived" in r.stdout


# ---------------------------------------------------------------- YAML: CI configuration


def _yaml(text: str):
    from ruamel.yaml import YAML as Loader

    return Loader(typ="safe", pure=True).load(text)  # YAML 1.2: `on:` stays the string "on"


def _classify(doc) -> tuple[str, dict]:
    if isinstance(doc, list):  # steps of a GitHub job, shown alone
        return "vendor.github-workflows", {"on": "push", "jobs": {"job": {"runs-on": "ubuntu-latest", "steps": doc}}}
    if isinstance(doc, dict) and "jobs" in doc:
        return "vendor.github-workflows", doc
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) and "script" in v for v in doc.values()):
        return "vendor.gitlab-ci", doc
    raise AssertionError(f"YAML snippet of unknown kind: {str(doc)[:80]}")


def _shell_of(doc) -> list[str]:
    """The shell that a GitHub workflow's steps or a GitLab job's script runs."""
    out = []
    if isinstance(doc, dict) and "jobs" in doc:
        for job in doc["jobs"].values():
            out += [s["run"] for s in job.get("steps", []) if "run" in s]
    elif isinstance(doc, dict):
        for job in doc.values():
            for key in ("before_script", "script", "after_script"):
                out += list(job.get(key, []))
    return out


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(found).is_file():
        pytest.skip("check-jsonschema is not installed (pip install 'gfaudit[test]')")
    return found


def test_yaml_snippets_exist():
    kinds = {_classify(_yaml(text))[0] for _, _, text in YAML}
    assert kinds == {"vendor.github-workflows", "vendor.gitlab-ci"}


@pytest.mark.parametrize("block", YAML, ids=_ids(YAML))
def test_yaml_snippet_validates_against_its_ci_schema(block, tmp_path):
    name, line, text = block
    schema, doc = _classify(_yaml(text))
    target = tmp_path / "snippet.json"
    target.write_text(json.dumps(doc))
    r = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", schema, str(target)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, f"{name}:{line} against {schema}:\n{r.stdout}{r.stderr}"
    for script in _shell_of(doc):
        syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert syntax.returncode == 0, f"{name}:{line}: bash -n: {syntax.stderr}"
        for cmd in simple_commands(script):
            args = gfaudit_args(cmd)
            if args is not None:
                check_gfaudit_invocation(args, f"{name}:{line}")


def test_schema_check_rejects_the_old_gitlab_entrypoint(tmp_path):
    """The check has teeth: `entrypoint` beside `image:` (as docs/ci.md once had) fails the GitLab schema."""
    bad = {"job": {"image": "ghcr.io/owner/gfaudit:cpu", "entrypoint": [""], "script": ["gfaudit --version"]}}
    target = tmp_path / "bad.json"
    target.write_text(json.dumps(bad))
    r = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.gitlab-ci", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0


# ---------------------------------------------------------------- Python examples


@pytest.mark.parametrize("how", ["-c", "file", "stdin"])
@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_example_runs(block, how, tmp_path):
    """As people run an example: ``python -c``, saved as a script (no ``__main__`` guard) and piped
    to ``python -``; each isolated worker must not re-run the caller's main module."""
    name, line, code = block
    if how == "-c":
        cmd, stdin = [sys.executable, "-c", code], None
    elif how == "file":
        (tmp_path / "example.py").write_text(code)
        cmd, stdin = [sys.executable, str(tmp_path / "example.py")], None
    else:
        cmd, stdin = [sys.executable, "-"], code
    r = subprocess.run(cmd, input=stdin, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{name}:{line} ({how}):\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, f"{name}:{line} ({how}):\n{r.stderr}"
