"""Report formats behind one small interface, shared by ``check`` and ``evaluate``.

Each format module (``text``, ``json``, ``sarif``, ``markdown``) offers some of:

- ``check(result, pubkey_source) -> str``: the report of a ``check`` run;
- ``evaluation(doc) -> str``: the report of an ``evaluate`` run;
- ``failure(failure) -> str``: the report of a run that stopped (exit 2, 3 or 4), so that a CI step
  that uploads the report with ``if: always()`` always finds one.

``COMMANDS`` says which formats each command offers; the CLI's ``--format`` choices come from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from gfaudit.errors import UsageError

COMMANDS: dict[str, tuple[str, ...]] = {
    "check": ("text", "json", "sarif"),
    "evaluate": ("text", "json", "markdown"),
}


@dataclass(frozen=True)
class Failure:
    """A run that stopped before it could report results: the exit code and the one-line reason."""

    command: str
    code: int
    message: str

    @property
    def kind(self) -> str:
        return {2: "usage", 3: "integrity"}.get(self.code, "interrupted" if self.code >= 128 else "runtime")


def get(name: str) -> ModuleType:
    """The module of one format."""
    from gfaudit.formats import json as json_fmt, markdown, sarif, text

    modules = {"text": text, "json": json_fmt, "sarif": sarif, "markdown": markdown}
    try:
        return modules[name]
    except KeyError:
        raise UsageError(f"unknown report format {name!r}") from None


def supported(command: str, name: str) -> bool:
    return name in COMMANDS.get(command, ())


def render_check(name: str, result, pubkey_source: str | None = None) -> str:
    return get(name).check(result, pubkey_source)


def render_evaluation(name: str, doc: dict) -> str:
    return get(name).evaluation(doc)


def render_failure(name: str, failure: Failure) -> str:
    return get(name).failure(failure)
