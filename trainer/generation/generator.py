"""The owner's private generator: kept after ``train``, reused by ``refresh`` for fresh pairs.

``gfaudit train`` writes three private files beside the bundle ``NAME.safetensors`` (mode 0600,
never inside the bundle, which a suspect's operator may see):

- ``NAME.generator.safetensors``: the generator's weights;
- ``NAME.generator.json``: what rebuilds it (architecture, eps, width, classes, image shape), the
  victim, normalisation, preset, seed and pools it was trained for, and the seeded draw of the
  test split every candidate x comes from;
- ``NAME.generator.ledger.json``: every bundle made from this generator, with the test-split
  indices it drew as candidates and the ones it kept as pairs.

The sha256 of the weights and of the config are signed into each bundle's provenance
(``generator``), beside the seeds that bundle drew (``seed_draw``). A refresh draws candidates
that no earlier bundle of the same generator drew while such seeds remain, then seeds that were
drawn but never kept; a seed some bundle kept is never drawn again, so two bundles of one
generator never share a pair.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load, save as st_save

from gfaudit.bundle.provenance import now_utc
from gfaudit.errors import IntegrityError, UsageError
from gfaudit.files.atomic import write_bytes_atomic
from gfaudit.files.private_files import GeneratorFiles, generator_files
from gfaudit_trainer.generation.gan import Generator

__all__ = [
    "ARCHITECTURE",
    "Draw",
    "GeneratorFiles",
    "Ledger",
    "LoadedGenerator",
    "draw",
    "files_for",
    "load",
    "save",
]

ARCHITECTURE = "ganfinger-conditional-v1"  # trainer/generation/gan.py Generator: G(x, t) with one-hot target planes
CONFIG_FORMAT = "gfaudit-generator-v1"
LEDGER_FORMAT = "gfaudit-generator-ledger-v1"
PRIVATE = 0o600
MAX_JSON_BYTES = 64 * 1024 * 1024


def files_for(path: str | os.PathLike) -> GeneratorFiles:
    """The generator files of a bundle ``NAME.safetensors``, or of any one of the generator's own files."""
    return generator_files(path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > MAX_JSON_BYTES and path.suffix == ".json":
            raise UsageError(f"{path}: {what} larger than {MAX_JSON_BYTES} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: {what} is a folder") from None
    except PermissionError:
        raise UsageError(f"{path}: {what} is not readable") from None


def _json(path: Path, what: str) -> dict:
    try:
        doc = json.loads(_read(path, what))
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{path}: {what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: {what} is not a JSON object")
    return doc


class Ledger:
    """Which test-split seeds each bundle of one generator drew and kept (private, owner-held)."""

    def __init__(self, path: Path, weights_sha256: str, bundles: list[dict] | None = None):
        self.path = path
        self.weights_sha256 = weights_sha256
        self.bundles = list(bundles or [])

    @classmethod
    def read(cls, path: Path, weights_sha256: str) -> Ledger:
        if not path.exists():
            raise UsageError(
                f"{path}: the generator's seed ledger is missing; without it no refresh can prove its seeds fresh"
            )
        doc = _json(path, "seed ledger")
        if doc.get("format") != LEDGER_FORMAT or not isinstance(doc.get("bundles"), list):
            raise UsageError(f"{path}: not a {LEDGER_FORMAT} file")
        if doc.get("generator_weights_sha256") != weights_sha256:
            raise IntegrityError(f"{path}: the seed ledger belongs to another generator")
        return cls(path, weights_sha256, doc["bundles"])

    def drawn(self) -> set[int]:
        return {int(i) for b in self.bundles for i in b["drawn"]}

    def kept(self) -> set[int]:
        return {int(i) for b in self.bundles for i in b["kept"]}

    def record(self, bundle: Path, bundle_sha256: str, drawn: list[int], kept: list[int]) -> None:
        """Append one bundle and rewrite the ledger atomically (mode 0600)."""
        overlap = self.kept() & set(kept)
        if overlap:  # the draw excludes them; this is the last line of defence
            raise IntegrityError(f"{bundle}: reuses {len(overlap)} seed(s) an earlier bundle kept")
        self.bundles.append(
            {
                "bundle": bundle.name,
                "bundle_sha256": bundle_sha256,
                "created": now_utc(),
                "drawn": [int(i) for i in drawn],
                "kept": [int(i) for i in kept],
            }
        )
        doc = {"format": LEDGER_FORMAT, "generator_weights_sha256": self.weights_sha256, "bundles": self.bundles}
        write_bytes_atomic(self.path, (json.dumps(doc, indent=1) + "\n").encode(), mode=PRIVATE)


@contextmanager
def ledger_lock(ledger: Path, timeout: float = 600.0) -> Iterator[None]:
    """Hold the exclusive lock of a generator's ledger (``NAME.generator.ledger.lock``, an empty file
    beside it, mode 0600) for a whole refresh; wait up to ``timeout`` seconds for another refresh
    to finish, then UsageError naming the lock."""
    lock = ledger.with_name(ledger.name.removesuffix(".json") + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UsageError(
                        f"{lock}: another refresh of this generator holds the ledger; try again when it ends"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@dataclass(frozen=True)
class LoadedGenerator:
    generator: Generator
    config: dict
    files: GeneratorFiles
    weights_sha256: str
    config_sha256: str

    def provenance(self, role: str) -> dict:
        """What a bundle signs about the generator that made its pairs (``role``: trained or reused)."""
        return {
            "role": role,
            "architecture": self.config["architecture"],
            "weights_file": self.files.weights.name,
            "weights_sha256": self.weights_sha256,
            "config_file": self.files.config.name,
            "config_sha256": self.config_sha256,
            "parent_bundle": self.config.get("parent_bundle"),
        }


def save(G: Generator, bundle_out: Path, meta: dict) -> LoadedGenerator:
    """Write the generator's weights and config beside ``bundle_out`` (mode 0600) and start its
    ledger; returns the hashes a bundle signs. ``meta`` is the context the config records."""
    files = files_for(bundle_out)
    weights = st_save({k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()})
    config = {
        "format": CONFIG_FORMAT,
        "architecture": ARCHITECTURE,
        "eps": G.eps,
        "width": G.width,
        "num_classes": G.num_classes,
        "weights_file": files.weights.name,
        "weights_sha256": _sha256(weights),
        "parent_bundle": bundle_out.name,
        "created": now_utc(),
        **meta,
    }
    config_bytes = (json.dumps(config, indent=1, sort_keys=True) + "\n").encode()
    write_bytes_atomic(files.weights, weights, mode=PRIVATE)
    write_bytes_atomic(files.config, config_bytes, mode=PRIVATE)
    if files.ledger.exists():  # a retrained generator starts a new ledger: the old one named other weights
        files.ledger.unlink()
    return LoadedGenerator(G, config, files, config["weights_sha256"], _sha256(config_bytes))


def load(path: str | os.PathLike, device=None) -> LoadedGenerator:
    """Rebuild a saved generator from its config and weights; the weights must hash as the config says."""
    files = files_for(path)
    config_bytes = _read(files.config, "generator config")
    try:
        config = json.loads(config_bytes)
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{files.config}: generator config is not valid JSON") from None
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise UsageError(f"{files.config}: not a {CONFIG_FORMAT} file")
    if config.get("architecture") != ARCHITECTURE:
        raise UsageError(f"{files.config}: unknown generator architecture {config.get('architecture')!r}")
    weights = _read(files.weights, "generator weights")
    if _sha256(weights) != config.get("weights_sha256"):
        raise IntegrityError(f"{files.weights}: sha256 differs from {files.config.name}; the weights were changed")
    G = Generator(float(config["eps"]), int(config["width"]), int(config["num_classes"]))
    try:
        G.load_state_dict(st_load(weights))
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"{files.weights}: does not fit the generator in {files.config.name} ({exc})") from None
    G = G.to(device or "cpu").eval()
    for p in G.parameters():
        p.requires_grad_(False)
    return LoadedGenerator(G, config, files, config["weights_sha256"], _sha256(config_bytes))


@dataclass(frozen=True)
class Draw:
    """The candidate seeds of one bundle: test-split indices, in draw order."""

    indices: torch.Tensor
    fresh: int  # drawn by no earlier bundle
    reused: int  # drawn before but never kept (only once the fresh seeds ran out)
    excluded_kept: int  # seeds earlier bundles kept: never drawn again

    def to_json(self, kept: list[int], permutation_seed: int, n_test: int) -> dict:
        return {
            "split": "test",
            "permutation_seed": permutation_seed,
            "n_test": n_test,
            "drawn": [int(i) for i in self.indices],
            "fresh": self.fresh,
            "reused_unkept": self.reused,
            "excluded_kept_by_earlier_bundles": self.excluded_kept,
            "kept": [int(i) for i in kept],
        }


def draw(order: torch.Tensor, n: int, ledger: Ledger) -> Draw:
    """``n`` candidates from the seeded ``order`` of the test split: first seeds no earlier bundle
    drew, then seeds drawn but never kept; never a seed an earlier bundle kept."""
    drawn, kept = ledger.drawn(), ledger.kept()
    fresh = [i for i in order.tolist() if i not in drawn]
    unkept = [i for i in order.tolist() if i in drawn and i not in kept]
    chosen = fresh[:n] + unkept[: max(0, n - len(fresh))]
    if not chosen:
        raise UsageError(
            f"every test image has been kept by an earlier bundle of this generator ({len(kept)} kept): "
            "no fresh seed left"
        )
    n_fresh = min(n, len(fresh))
    return Draw(torch.tensor(chosen, dtype=torch.long), n_fresh, len(chosen) - n_fresh, len(kept))
