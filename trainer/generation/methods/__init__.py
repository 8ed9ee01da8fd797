"""The fingerprint methods the trainer can make: one module each, one registry.

``METHODS`` is the single list that ``gfaudit train --method``, benchmarks/run.py and
benchmarks/separability.py read. Each entry's name and scoring rule come from the auditor's
torch-free table ``gfaudit.bundle.methods``, which marks the same names ``trainer=True`` (a test checks it).

Adding a method: one module here with a ``Method`` subclass (``RankedMethod`` for a baseline that
scores its own candidates), one line below, and its name and rule in ``gfaudit.bundle.methods.METHODS``.
"""

from __future__ import annotations

from gfaudit.errors import UsageError
from gfaudit_trainer.generation.methods.common.base import Candidates, Fingerprint, Method, Timings
from gfaudit_trainer.generation.methods.common.ranked import RankedMethod
from gfaudit_trainer.generation.methods.conferae import ConferAE
from gfaudit_trainer.generation.methods.deepfool import DeepFool
from gfaudit_trainer.generation.methods.ganfinger import GanFinger
from gfaudit_trainer.generation.methods.ipguard import IPGuard
from gfaudit_trainer.generation.methods.metafinger import MetaFinger

__all__ = ["METHODS", "Candidates", "Fingerprint", "Method", "RankedMethod", "Timings", "get"]

METHODS: dict[str, Method] = {m.name: m for m in (GanFinger(), IPGuard(), ConferAE(), MetaFinger(), DeepFool())}


def get(name: str) -> Method:
    """A method by name (UsageError, exit 2, naming the choices, for any other name)."""
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None
