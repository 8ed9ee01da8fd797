"""The fingerprint methods a bundle can name, and the scoring rule each one is judged by.

The one table of methods. It lives in the auditor because the auditor, ``gfaudit bundle create`` and
the CLI's choices need it without torch; the trainer's registry (``gfaudit_trainer.generation.methods``)
implements the methods marked ``trainer=True`` and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from gfaudit.bundle.scoring import RULES

__all__ = ["METHODS", "MethodSpec", "TRAINER_METHODS", "rule_for"]


@dataclass(frozen=True)
class MethodSpec:
    """What the auditor knows of a method: its scoring rule (``gfaudit.bundle.scoring.RULES``) and whether
    ``gfaudit train --method`` can make it (one module in trainer/generation/methods/)."""

    rule: str
    trainer: bool


METHODS: dict[str, MethodSpec] = {
    "ganfinger": MethodSpec("ard", trainer=True),  # GanFinger (paper eqs. 7-9)
    "ipguard": MethodSpec("label_match", trainer=True),
    "conferae": MethodSpec("label_match", trainer=True),
    "metafinger": MethodSpec("label_match", trainer=True),
    "deepfool": MethodSpec("label_match", trainer=True),
    "fgsm": MethodSpec("label_match", trainer=False),  # pairs made elsewhere, packed by `gfaudit bundle create`
    "custom": MethodSpec("label_match", trainer=False),
}
TRAINER_METHODS: tuple[str, ...] = tuple(name for name, spec in METHODS.items() if spec.trainer)
DEFAULT_RULE = "label_match"  # a method this table does not know is scored by label matching rate

assert all(spec.rule in RULES for spec in METHODS.values()), "every method's rule is a scoring rule"


def rule_for(method: str) -> str:
    """The scoring rule a bundle of ``method`` is signed with unless the signer names another."""
    spec = METHODS.get(method)
    return spec.rule if spec else DEFAULT_RULE
