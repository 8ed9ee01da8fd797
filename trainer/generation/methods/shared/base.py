"""The interface every fingerprint method implements, and the types that cross it.

A method makes candidate pairs (x, x') from the context's seed images and the pools' training
models (``candidates``), then keeps K of them (``select``). What follows is the same for every
method and lives in ``pipeline.select_and_calibrate``: calibrate the threshold on the calibration
negatives (trainer/generation/calibration.py), then sign the bundle with the method's scoring rule
(``Method.rule``), which the auditor reads from the bundle.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from gfaudit_trainer.generation import selection
from gfaudit_trainer.models.context import Context
from gfaudit_trainer.models.pools import Pools
from gfaudit_trainer.presets import Preset

__all__ = ["Candidates", "Fingerprint", "Method", "Timings"]


@dataclass(frozen=True)
class Candidates:
    """Candidate pairs of one method: the seeds x, their x' (uint8, same shape) and the seeds' true labels."""

    x: torch.Tensor  # uint8 [N, C, H, W]
    x_prime: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # true labels of x
    seconds: float  # making them (for GanFinger: training the GAN too)
    rank: torch.Tensor | None = None  # the method's own score, higher is better; None: the pools rank them
    gan_seconds: float | None = None  # GanFinger: the share of ``seconds`` spent training the GAN
    provenance: dict = field(default_factory=dict)  # the method's own signed record (GanFinger: the GAN's history)
    # The owner's private by-products, never signed into the bundle: GanFinger's trained ``generator``
    # and the test-split ``seed_indices`` of the candidates (``pipeline.run`` keeps them beside the bundle).
    private: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Timings:
    """Seconds a method spent, signed into the provenance's ``timings_s`` (pool building is apart)."""

    fingerprint_generation: float  # candidates and selection
    gan_training: float | None = None  # GanFinger only

    def to_json(self) -> dict:
        out = {"fingerprint_generation": round(self.fingerprint_generation, 1)}
        if self.gan_training is not None:
            out["gan_training"] = round(self.gan_training, 1)
        return out


@dataclass(frozen=True)
class Fingerprint:
    """A method's selected pairs before calibration, with what it spent and records."""

    selection: selection.Selection
    timings: Timings
    provenance: dict  # the method's own part (e.g. gan_history); the shared path adds scores and calibration
    private: dict = field(default_factory=dict)  # Candidates.private, passed on


class Method(ABC):
    """One fingerprint method. Subclasses set ``name`` (their module's name), ``rule`` if not label matching, and
    implement ``candidates`` and ``select``; ``fingerprint`` runs the two and times them."""

    name: str

    rule: str = "label_match"  # the scoring rule its bundles are signed with (gfaudit.bundle.scoring.RULES)

    @abstractmethod
    def candidates(self, ctx: Context, pools: Pools, preset: Preset) -> Candidates:
        """Make candidate pairs from the seed images (``context.seed_images``)."""

    @abstractmethod
    def select(self, ctx: Context, pools: Pools, preset: Preset, cand: Candidates) -> selection.Selection:
        """Keep up to ``preset.k`` of the candidates, best first."""

    def fingerprint(self, ctx: Context, pools: Pools, preset: Preset) -> Fingerprint:
        """Candidates then selection; the generation time covers both, not pool building."""
        cand = self.candidates(ctx, pools, preset)
        t = time.perf_counter()
        sel = self.select(ctx, pools, preset, cand)
        timings = Timings(cand.seconds + time.perf_counter() - t, cand.gan_seconds)
        return Fingerprint(sel, timings, cand.provenance, cand.private)

    def __repr__(self) -> str:
        return f"<method {self.name} ({self.rule})>"
