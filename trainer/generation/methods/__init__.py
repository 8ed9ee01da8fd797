"""The fingerprint methods the trainer can make: one module each, found by name.

Every public module of this package is a method: it defines ``METHOD``, an instance of a ``Method``
subclass (``RankedMethod`` for a baseline that scores its own candidates) whose ``name`` is the
module's name and whose ``rule`` is the scoring rule its bundles are signed with. Adding a method is
adding one module here; ``gfaudit train --method``, benchmarks/run.py and benchmarks/separability.py
read this registry. ``names()`` lists the methods without importing them (so ``--help`` needs no
torch); ``get`` and ``METHODS`` import them. The helpers the methods share live in ``shared/``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from gfaudit.errors import UsageError

if TYPE_CHECKING:
    from gfaudit_trainer.generation.methods.shared.base import Method

__all__ = ["METHODS", "get", "names"]

FIRST = "ganfinger"  # the paper's method leads every list; the baselines follow by name


def names() -> tuple[str, ...]:
    """Every method's name (its module's), GanFinger first, without importing any of them."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg and not m.name.startswith("_"))
    return tuple(sorted(found, key=lambda n: n != FIRST))


def get(name: str) -> Method:
    """A method by name (UsageError, exit 2, naming the choices, for any other name)."""
    registry = __getattr__("METHODS")
    try:
        return registry[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r}; choose one of {', '.join(registry)}") from None


_METHODS: dict[str, Method] = {}


def __getattr__(attr: str) -> Any:
    """``METHODS``: name -> method, every module imported on first use (a plain dict: a test may add one)."""
    if attr == "METHODS":
        if not _METHODS:
            _METHODS.update((n, importlib.import_module(f"{__name__}.{n}").METHOD) for n in names())
        return _METHODS
    raise AttributeError(attr)
