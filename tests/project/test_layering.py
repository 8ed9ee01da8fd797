"""The house (docs/design.md): each wing imports only the wings below it, lazy imports included.

Auditor, bottom to top: ground (``gfaudit``, ``gfaudit.errors``) < files < bundle < audit < formats
< cli < api. Trainer: ground (presets, progress, executors) < models < generation | library (side by
side: neither imports the other) < commands. The trainer may import the auditor below its CLI
(only ``commands`` may import ``gfaudit.cli``); the auditor never imports the trainer.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

AUDITOR = ["ground", "files", "bundle", "audit", "formats", "cli", "api"]
TRAINER = ["t.ground", "t.models", "t.generation", "t.library", "t.commands"]
# wing -> the wings it may import (itself included)
ALLOWED: dict[str, set[str]] = {w: set(AUDITOR[: i + 1]) for i, w in enumerate(AUDITOR)}
_AUDITOR_BELOW_CLI = set(AUDITOR[:5])
ALLOWED.update(
    {
        "t.ground": {"t.ground"} | _AUDITOR_BELOW_CLI,
        "t.models": {"t.ground", "t.models"} | _AUDITOR_BELOW_CLI,
        "t.generation": {"t.ground", "t.models", "t.generation"} | _AUDITOR_BELOW_CLI,
        "t.library": {"t.ground", "t.models", "t.library"} | _AUDITOR_BELOW_CLI,
        "t.commands": set(TRAINER) | _AUDITOR_BELOW_CLI | {"cli"},
    }
)


def wing(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "gfaudit":
        if len(parts) == 1 or parts[1] in ("errors", "__main__"):
            return "cli" if parts[-1] == "__main__" else "ground"
        return parts[1] if parts[1] in AUDITOR else "api" if parts[1] == "api" else f"unknown:{module}"
    if len(parts) == 1 or parts[1] in ("presets", "progress", "executors"):
        return "t.ground"
    return f"t.{parts[1]}" if f"t.{parts[1]}" in TRAINER else f"unknown:{module}"


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in (("gfaudit", REPO / "gfaudit"), ("gfaudit_trainer", REPO / "trainer")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports, anywhere in the file."""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = (
                ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                if node.level
                else node.module or ""
            )
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def test_every_module_belongs_to_a_wing():
    assert not [m for m in modules() if wing(m).startswith("unknown")]


def test_imports_only_look_down():
    mods = modules()
    known = set(mods)
    wrong = [
        f"{m} ({wing(m)}) imports {n} ({wing(n)})"
        for m, path in sorted(mods.items())
        for n in sorted(imports(m, path, known))
        if wing(n) not in ALLOWED[wing(m)]
    ]
    assert not wrong, "\n".join(wrong)


def test_no_two_modules_share_a_name():
    names: dict[str, list[str]] = {}
    for m in modules():
        leaf = m.rsplit(".", 1)[-1]
        names.setdefault(leaf, []).append(m)
    twice = {k: v for k, v in names.items() if len(v) > 1 and k not in ("__main__",)}
    # Packages and modules alike: ``gfaudit.bundle`` (a wing) and a module ``bundle`` would be two names.
    assert not twice, twice


def test_cli_holds_no_signing_dsse_or_scoring_code():
    """The CLI maps options to library calls: signing, envelopes and scores are the library's."""
    forbidden_modules = {"base64", "cryptography", "gfaudit.bundle.dsse", "safetensors", "numpy"}
    forbidden_calls = {
        "write_signed",
        "verify_statement",
        "parse_payload",
        "tensor_entry",
        "b64decode",
        "ard",
        "label_match",
    }
    found = []
    for m, path in modules().items():
        if wing(m) != "cli" and m != "gfaudit_trainer.commands":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [f"{m} imports {a.name}" for a in node.names if a.name.split(".")[0] in forbidden_modules]
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module in forbidden_modules or node.module.split(".")[0] in forbidden_modules:
                    found.append(f"{m} imports {node.module}")
            elif isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
                if name in forbidden_calls:
                    found.append(f"{m} calls {name}")
    assert not found, found


def test_only_the_files_wing_renames_files():
    """Every file is written through gfaudit/files/atomic.py: nobody else renames temporary files."""
    renames = []
    for folder in ("gfaudit", "trainer", "benchmarks", "fingerprints"):
        for path in (REPO / folder).rglob("*.py"):
            if path.is_relative_to(REPO / "gfaudit" / "files"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    is_os = isinstance(owner, ast.Name) and owner.id in ("os", "shutil")
                    if (is_os and node.func.attr in ("replace", "rename", "move")) or node.func.attr == "rename":
                        renames.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not renames, renames


def test_trainer_commands_arrive_by_entry_point_and_check_never_loads_them():
    """The auditor finds the trainer's commands through the gfaudit.commands entry point, and only
    when the command line is not one of its own (``check`` imports neither the trainer nor the
    metadata machinery)."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.argv = ['gfaudit'] + sys.argv[1:]; import gfaudit.cli.app as a; "
        "names = {c.name or c.callback.__name__ for c in a.app.registered_commands}; "
        "print('trainer' if 'gfaudit_trainer' in sys.modules else 'auditor', 'train' in names)"
    )

    def run(*argv: str) -> list[str]:
        cmd = [sys.executable, "-c", probe, *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO).stdout.split()

    assert run("check", "m.onnx") == ["auditor", "False"]
    assert run("--quiet", "bundle", "create") == ["auditor", "False"]
    assert run("train", "--help") == ["trainer", "True"]
    assert run("--help") == ["trainer", "True"]


def test_no_import_cycles():
    """Imports run one way, lazy ones inside functions included (gfaudit/ and trainer/)."""
    mods = modules()
    edges = {m: imports(m, path, set(mods)) - {m} for m, path in mods.items()}
    cycles = []
    for start in edges:  # depth-first search for a path back to ``start``
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not cycles, cycles
