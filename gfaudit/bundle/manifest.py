"""Bundle format v1: the manifest (the in-toto predicate) and its validation.

A bundle is ``NAME.safetensors`` (tensors ``x``, ``x_prime`` uint8 [K,C,H,W]; ``y``, ``y_prime``
int64 [K], the victim's labels) and ``NAME.safetensors.sig``, a DSSE envelope over an in-toto
Statement whose subject is the safetensors file and whose predicate is the manifest below.
Every number that decides a verdict (threshold) is a decimal string, so that no float parser
can round it differently from the signer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property

from gfaudit.bundle.scoring import METHOD_RULES, RULES
from gfaudit.errors import IntegrityError, UsageError

__all__ = [
    "FORMAT_VERSION",
    "METHODS",
    "PREDICATE_TYPE",
    "REQUIRED_TENSORS",
    "SCORING_RULES",
    "STATEMENT_TYPE",
    "InputSpec",
    "Manifest",
    "AnyNullModel",
    "NullModel",
    "PopulationNullModel",
    "decimal_string",
    "parse",
    "parse_input_spec",
    "parse_null_model",
    "parse_statement",
    "statement",
]

FORMAT_VERSION = 1
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://gfaudit.dev/fingerprint-bundle/v1"
REQUIRED_TENSORS = {"x": "uint8", "x_prime": "uint8", "y": "int64", "y_prime": "int64"}
SCORING_RULES: tuple[str, ...] = tuple(RULES)  # the table is gfaudit.bundle.scoring.RULES
METHODS: tuple[str, ...] = tuple(METHOD_RULES)  # the methods gfaudit.bundle.scoring names a rule for
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def decimal_string(value: float | str | Decimal, places: int = 4) -> str:
    """A threshold as the canonical decimal string stored in the manifest (UsageError if it is not a
    finite number of sensible size: NaN, infinities and 1e30 have no such string)."""
    try:
        d = Decimal(str(value))
        if not d.is_finite() or abs(d) > 10**6:
            raise InvalidOperation
        d = d.quantize(Decimal(1).scaleb(-places))
    except (InvalidOperation, ValueError):
        raise UsageError(f"threshold {value!r} is not a finite decimal number") from None
    return format(d.normalize(), "f") if d != 0 else "0"


@dataclass(frozen=True)
class InputSpec:
    """How the auditor turns stored uint8 pixels into a suspect's input."""

    layout: str
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    class_names: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "layout": self.layout,
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "pixel_dtype": "uint8",
            "value_range": ["0", "1"],
            "scale": "x / 255",
            "mean": list(self.mean),
            "std": list(self.std),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
        }


def _need(obj: dict, key: str, kind, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise IntegrityError(f"manifest: {where}.{key} is missing")
    value = obj[key]
    if kind is int and isinstance(value, bool):
        raise IntegrityError(f"manifest: {where}.{key} has the wrong type")
    if not isinstance(value, kind):
        raise IntegrityError(f"manifest: {where}.{key} has the wrong type")
    return value


def parse_input_spec(raw: dict) -> InputSpec:
    layout = _need(raw, "layout", str, "input")
    if layout != "NCHW":
        raise IntegrityError(f"manifest: input.layout {layout!r} is not supported (NCHW)")
    c, h, w = (_need(raw, k, int, "input") for k in ("channels", "height", "width"))
    mean, std = _need(raw, "mean", list, "input"), _need(raw, "std", list, "input")
    if len(mean) != c or len(std) != c:
        raise IntegrityError("manifest: input.mean/std need one value per channel")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean + std):
        raise IntegrityError("manifest: input.mean/std must be numbers")
    if any(s <= 0 for s in std):
        raise IntegrityError("manifest: input.std must be positive")
    n = _need(raw, "num_classes", int, "input")
    names = raw.get("class_names", [])
    if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
        raise IntegrityError("manifest: input.class_names must be a list of strings")
    if min(c, h, w, n) < 1 or (names and len(names) != n):
        raise IntegrityError("manifest: input sizes or class names are inconsistent")
    return InputSpec(layout, c, h, w, tuple(map(float, mean)), tuple(map(float, std)), n, tuple(names))


@dataclass(frozen=True)
class NullModel:
    """The older signed calibration (gfaudit/bundle/null_model.py): ``hit_rate`` bounds how often an
    independent model hits a pair, the K pairs taken as independent draws; ``false_accusation_rate``
    is the alpha the threshold aims at. Read for bundles signed with it; new bundles sign
    :class:`PopulationNullModel`."""

    hit_rate: Decimal
    false_accusation_rate: Decimal

    kind = "binomial-upper-bound"

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "hit_rate": decimal_string(self.hit_rate, 6),
            "false_accusation_rate": decimal_string(self.false_accusation_rate, 8),
        }

    def p_value(self, score: float, k: int) -> float:
        from gfaudit.bundle.null_model import p_value

        return p_value(score, k, float(self.hit_rate))

    @property
    def supported_p_value(self) -> float:
        return 0.0  # this model claims no population: every p-value is its own

    def describe(self) -> str:
        return (
            f"hit rate <= {self.hit_rate}, pairs taken as independent; the threshold aims at a false-accusation "
            f"rate of {self.false_accusation_rate}"
        )


@dataclass(frozen=True)
class PopulationNullModel:
    """A null model for a population of independent models (gfaudit/bundle/null_model.py): the signed hit
    counts of the calibration models on the K pairs, fitted by a beta-binomial whose parameters carry
    their own uncertainty (a grid posterior under the signed prior); thresholds and p-values come from
    the predictive distribution of a new independent model's hits."""

    calibration_hits: tuple[int, ...]
    pairs: int
    false_accusation_rate: Decimal
    kappa_range: tuple[Decimal, Decimal]
    grid: tuple[int, int]

    kind = "beta-binomial-predictive"

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "calibration_hits": list(self.calibration_hits),
            "pairs": self.pairs,
            "false_accusation_rate": decimal_string(self.false_accusation_rate, 8),
            "prior": {
                "mu": "uniform(0, 1)",
                "log_kappa": "uniform",
                "kappa_range": [decimal_string(v, 4) for v in self.kappa_range],
            },
            "grid": list(self.grid),
            "assumption": "the calibration models are exchangeable with the independent models a suspect could be",
        }

    @cached_property
    def pmf(self) -> list[float]:
        from gfaudit.bundle.null_model import beta_binomial_predictive

        lo, hi = (float(v) for v in self.kappa_range)
        return beta_binomial_predictive(list(self.calibration_hits), self.pairs, (lo, hi), self.grid)

    def p_value(self, score: float, k: int) -> float:
        from gfaudit.bundle.null_model import predictive_tail

        if k != self.pairs:
            raise IntegrityError(f"manifest: null model fitted on {self.pairs} pairs, the bundle has {k}")
        return predictive_tail(self.pmf, math.ceil(score * k - 1e-9))

    @property
    def supported_p_value(self) -> float:
        from gfaudit.bundle.null_model import supported_p_value

        return supported_p_value(len(self.calibration_hits))

    def describe(self) -> str:
        return (
            f"beta-binomial fitted to {len(self.calibration_hits)} calibration models' hits "
            f"{list(self.calibration_hits)} of {self.pairs} pairs, with parameter uncertainty; assumes they are "
            f"exchangeable with any independent model; the threshold aims at a false-accusation rate of "
            f"{self.false_accusation_rate}"
        )


AnyNullModel = NullModel | PopulationNullModel


def _unit_decimal(raw: dict, key: str) -> Decimal:
    text = _need(raw, key, str, "scoring.null_model")
    if not _DECIMAL.match(text) or not Decimal(0) <= Decimal(text) <= Decimal(1):
        raise IntegrityError(f"manifest: scoring.null_model.{key} is not a decimal string in [0, 1]")
    return Decimal(text)


def _population(raw: dict) -> PopulationNullModel:
    where = "scoring.null_model"
    hits = _need(raw, "calibration_hits", list, where)
    pairs = _need(raw, "pairs", int, where)
    if not 1 <= pairs <= 1_000_000 or isinstance(pairs, bool):
        raise IntegrityError(f"manifest: {where}.pairs is not a positive number of pairs")
    if not hits or len(hits) > 10_000 or not all(type(h) is int and 0 <= h <= pairs for h in hits):
        raise IntegrityError(f"manifest: {where}.calibration_hits must be 1 to 10,000 counts in 0..pairs")
    prior = _need(raw, "prior", dict, where)
    rng = prior.get("kappa_range")
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, str) and _DECIMAL.match(v) for v in rng)):
        raise IntegrityError(f"manifest: {where}.prior.kappa_range must be two decimal strings")
    lo, hi = (Decimal(v) for v in rng)
    if not Decimal(0) < lo < hi <= Decimal(10**6):
        raise IntegrityError(f"manifest: {where}.prior.kappa_range must satisfy 0 < low < high <= 1e6")
    grid = _need(raw, "grid", list, where)
    if not (len(grid) == 2 and all(type(g) is int and 2 <= g <= 1000 for g in grid)):
        raise IntegrityError(f"manifest: {where}.grid must be two integers in 2..1000")
    return PopulationNullModel(
        tuple(hits), pairs, _unit_decimal(raw, "false_accusation_rate"), (lo, hi), (grid[0], grid[1])
    )


def parse_null_model(raw: object) -> AnyNullModel | None:
    """The optional null model; bundles signed before it existed have none (no p-value then)."""
    if raw is None:
        return None
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind == NullModel.kind and isinstance(raw, dict):
        return NullModel(_unit_decimal(raw, "hit_rate"), _unit_decimal(raw, "false_accusation_rate"))
    if kind == PopulationNullModel.kind and isinstance(raw, dict):
        return _population(raw)
    raise IntegrityError("manifest: scoring.null_model is not a known calibration")


@dataclass(frozen=True)
class Manifest:
    method: str
    rule: str
    threshold: Decimal
    input: InputSpec
    tensors: dict
    raw: dict
    null_model: AnyNullModel | None = None

    @property
    def threshold_float(self) -> float:
        return float(self.threshold)


def parse(raw: object) -> Manifest:
    """Validate a manifest that has already passed signature verification."""
    if not isinstance(raw, dict):
        raise IntegrityError("manifest is not a JSON object")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise IntegrityError(f"unknown bundle format version {version!r} (this gfaudit reads {FORMAT_VERSION})")
    method = _need(raw, "method", str, "manifest")
    scoring = _need(raw, "scoring", dict, "manifest")
    rule = _need(scoring, "rule", str, "scoring")
    if rule not in SCORING_RULES:
        raise IntegrityError(f"manifest: unknown scoring rule {rule!r}")
    thr = _need(scoring, "threshold", str, "scoring")
    if not _DECIMAL.match(thr):
        raise IntegrityError("manifest: scoring.threshold is not a decimal string")
    try:
        threshold = Decimal(thr)
    except InvalidOperation:
        raise IntegrityError("manifest: scoring.threshold is not a decimal string") from None
    spec = parse_input_spec(_need(raw, "input", dict, "manifest"))
    tensors = _need(raw, "tensors", dict, "manifest")
    for name, dtype in REQUIRED_TENSORS.items():
        entry = _need(tensors, name, dict, "tensors")
        if entry.get("dtype") != dtype or not isinstance(entry.get("sha256"), str):
            raise IntegrityError(f"manifest: tensors.{name} must be {dtype} with a sha256")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
            raise IntegrityError(f"manifest: tensors.{name}.shape is not a list of integers")
    return Manifest(method, rule, threshold, spec, tensors, raw, parse_null_model(scoring.get("null_model")))


def statement(subject_name: str, subject_sha256: str, manifest: dict) -> dict:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": subject_sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": manifest,
    }


def parse_statement(raw: object) -> tuple[str, object]:
    """Return (subject sha256, predicate) of a verified in-toto Statement; the predicate is unchecked
    (``parse`` validates it as a manifest)."""
    if not isinstance(raw, dict) or raw.get("_type") != STATEMENT_TYPE:
        raise IntegrityError("signed payload is not an in-toto Statement v1")
    if raw.get("predicateType") != PREDICATE_TYPE:
        raise IntegrityError(f"signed payload is not a gfaudit bundle ({raw.get('predicateType')!r})")
    subjects = raw.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise IntegrityError("signed statement must name exactly one subject")
    digest = subjects[0].get("digest")
    sha = digest.get("sha256") if isinstance(digest, dict) else None
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise IntegrityError("signed statement has no sha256 subject digest")
    return sha, raw.get("predicate")
