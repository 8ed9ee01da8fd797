"""Console entry point (``gfaudit``): installs the signal policy before importing anything heavy,
and for the commands that run models starts the isolation workers' forkserver at once, so that its
start-up (a Python process importing onnxruntime) overlaps typer's import and the verification of
the bundle instead of following them (docs/design.md, "Hardening, round 2")."""

from __future__ import annotations

import sys

# Commands that run a model in an isolated worker (``verify`` only with --victim, ``bundle create``).
_RUNS_MODELS = {"check", "evaluate"}


def _runs_models(argv: list[str]) -> bool:
    words = [a for a in argv[1:] if not a.startswith("-")]
    if "--help" in argv or "--version" in argv or not words:
        return False
    return (
        words[0] in _RUNS_MODELS or (words[0] == "verify" and "--victim" in argv) or words[:2] == ["bundle", "create"]
    )


def main() -> None:
    from gfaudit.files import interrupt

    interrupt.install()
    if _runs_models(sys.argv):
        from gfaudit.audit import isolation

        isolation.prestart()
    from gfaudit.cli.app import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
