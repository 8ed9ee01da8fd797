"""The arbiter's check: does the victim really behave on the fingerprints as the signed bundle says?

A forged bundle (pairs the victim never labelled so) would let an owner accuse anyone; this test
re-runs the victim's ONNX on x and x', and re-measures the perturbation statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

from gfaudit.audit.check import suspect_labels
from gfaudit.audit.isolation import DEFAULT_TIMEOUT, check_timeout
from gfaudit.bundle.container import Bundle
from gfaudit.bundle.perturbation import matches, statistics
from gfaudit.bundle.provenance import file_sha256
from gfaudit.errors import AuthenticityError, SuspectError

__all__ = ["Authenticity", "require", "verify"]


@dataclass(frozen=True)
class Authenticity:
    k: int
    y_agree: int
    y_prime_agree: int
    y_prime_differs: int
    victim_sha256_matches: bool
    perturbation_mismatch: list[str]

    @property
    def ok(self) -> bool:
        return (
            self.y_agree == self.k
            and self.y_prime_agree == self.k
            and self.y_prime_differs == self.k
            and not self.perturbation_mismatch
        )

    def to_json(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def verify(
    bundle: Bundle, victim_onnx: str, device: str = "auto", timeout: float | None = DEFAULT_TIMEOUT
) -> Authenticity:
    """Run the victim on the pairs, isolated like any suspect under ``timeout`` seconds (None: in
    this process), and compare. A victim that cannot be run is a ``SuspectError`` (exit 4)."""
    try:
        labels = suspect_labels(str(victim_onnx), bundle, device, check_timeout(timeout))
    except SuspectError as exc:
        raise SuspectError(f"the victim: {exc}") from None
    pred_x, pred_xp = labels.pred_x, labels.pred_x_prime
    claimed = bundle.manifest.raw.get("perturbation", {})
    result = Authenticity(
        k=bundle.k,
        y_agree=int((pred_x == bundle.y).sum()),
        y_prime_agree=int((pred_xp == bundle.y_prime).sum()),
        y_prime_differs=int((bundle.y_prime != bundle.y).sum()),
        victim_sha256_matches=file_sha256(victim_onnx)
        == bundle.manifest.raw.get("provenance", {}).get("victim_sha256"),
        perturbation_mismatch=matches(
            statistics(bundle.x, bundle.x_prime), claimed if isinstance(claimed, dict) else {}
        ),
    )
    return result


def require(result: Authenticity) -> None:
    if not result.ok:
        raise AuthenticityError(
            f"fingerprints are not authentic: victim gives the stored y on {result.y_agree}/{result.k} x, "
            f"the stored y' on {result.y_prime_agree}/{result.k} x'; y' != y on {result.y_prime_differs}/{result.k}; "
            f"perturbation statistics differing: {', '.join(result.perturbation_mismatch) or 'none'}"
        )
