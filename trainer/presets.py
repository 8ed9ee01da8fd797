"""Presets: one code path, three scales. A preset is data, not a branch in the pipeline.

tiny   seconds on a CPU; for tests. Models are barely trained: only the plumbing is real.
cpu    strong pools on 2 CPU cores with the fast recipe (trainer/models/recipes.py), cached and resumable.
paper  the paper's scale (20 training + 10 validation models per pool, 5 architectures, 60 epochs)
       for a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class GanConfig:
    """The GAN's training, in the paper's symbols (section 3, eqs. 1-6): ``eps`` is epsilon, the L-inf
    bound of every fingerprint perturbation; ``eta``, ``alpha``, ``beta``, ``gamma`` are the weights
    eta, alpha, beta, gamma of L_ADV, L_GAN, L_hinge and L_conf; ``c`` is the hinge's L2 bound c;
    ``kappa`` the C&W margin kappa. One meaning per name across the project (docs/design.md,
    "Names"): the false-accusation rate is ``false_accusation_rate``, never alpha; K, the number of
    pairs, is ``k``; a ``threshold`` is always the signed decision threshold tau on a score."""

    epochs: int = 30
    batch_size: int = 64
    lr_g: float = 2e-3
    lr_d: float = 2e-4
    eps: float = 0.05  # L-inf bound: delta = eps * tanh(raw)
    c: float = 2.0  # L2 hinge bound (pixel scale [0, 1]); eps*sqrt(3072) = 2.77 is the box's corner
    kappa: float = 2.0  # C&W margin the targeted term asks for
    eta: float = 1.0
    alpha: float = 5.0
    beta: float = 5.0
    gamma: float = 10.0
    diversity: float = 0.0  # lambda_div (losses.diversity_loss; not in the paper): one perturbation per input
    conf_cap: float | None = 1.0  # per-sample cap on the negative KL of L_conf; None = eq. (5) exactly
    conf_detach_victim: bool = True  # f_v(x') is L_conf's reference distribution: only L_ADV moves the victim
    width: int = 32
    train_images: int = 0  # images of D_v the GAN trains on (0: the fingerprint seeds themselves)
    # Input filters the victim and pool terms see x' through, one drawn per batch (NAME@LO:HI specs of
    # trainer/models/input_filters.py; "identity" keeps unfiltered batches in the draw). () : none.
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolConfig:
    """The models of one pool, by role, and how each trains.

    A model entry is an architecture spec (``zoo.parse_spec``), optionally with ``@label`` or
    ``@prob`` for a positive student that queries the victim per augmented batch for labels or
    probabilities (overriding ``query``). Negatives have three disjoint roles: ``train_archs`` (the
    GAN trains against them), ``val_archs`` (selection filters on them) and ``calib_archs``
    (calibration only: the threshold and p-values come from models that neither saw).
    """

    train_archs: tuple[str, ...]
    val_archs: tuple[str, ...]
    epochs: int
    lr: float = 0.05  # classic recipe only; the fast recipe takes its per-family rate (recipes.fast_defaults)
    query: str = (
        ""  # positive pool only: "" labels the data once; "label"/"prob": the victim labels every augmented batch
    )
    calib_archs: tuple[str, ...] = ()
    recipe: str = "classic"  # recipes.RECIPES
    data: str = "own"  # "own": D_p (positives) or D_v (negatives); "d_v+d_p": both (never D_a, the library's)
    temperature: float = 1.0  # "prob" students match the victim's posteriors at this temperature
    epochs_by_family: tuple[
        tuple[str, int], ...
    ] = ()  # ("resnet", 18): architectures whose name starts so train longer
    derived_epochs: int = 3  # weight-derived positives (victim/ftal, victim/fgsm): fine-tuning epochs
    derived_lr: float = 0.005

    def epochs_for(self, arch: str) -> int:
        """The epochs of one entry: the first matching family's, else the pool's."""
        return next((e for prefix, e in self.epochs_by_family if arch.startswith(prefix)), self.epochs)


@dataclass(frozen=True)
class Preset:
    name: str
    train_per_class: int | None  # images per class read from the training split (None: all)
    test_per_class: int | None
    positive: PoolConfig
    negative: PoolConfig
    gan: GanConfig
    seeds: int  # candidate images x the GAN trains on and the selection draws from
    k: int = 100  # K: fingerprint pairs per bundle
    baseline_seeds: int = 400  # the baselines optimise each pair from scratch: they get the first N seeds
    baseline_effort: float = 1.0  # share of each baseline's default iterations (below 1 only for tests)
    pos_agree: float = 0.9  # share of positive validation models that must give the victim's x' label
    x_agreement: bool = True  # every positive model must label x like the victim (keeps pirates' P_ori near 0)
    false_accusation_rate: float = 1e-3  # the threshold keeps an unrelated model's chance of being flagged below this
    max_cosine: float = (
        1.0  # selection skips a pair whose perturbation has a cosine above this with a chosen one of its target
    )
    target_cap: float = 0.0  # the most pairs per target class, as a multiple of K / classes (0: no cap)
    neg_follow: float = (
        1.0  # the largest share of negative models (training and validation) that may give the victim's x' label
    )
    # Selection keeps a pair only if, under each of these filters (NAME@STRENGTH), the victim still gives
    # x' its changed label and at least robust_share of the positive validation models do too.
    robust_checks: tuple[str, ...] = ()
    robust_share: float = 0.5
    batch_size: int = 128
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


_PAPER_ARCHS = ("resnet20", "resnet32", "vgg16", "vgg19", "densenet")
_AIR = "airbench:width=0.5"
# Issue 21. The GAN trains through every kind of input filter of trainer/models/input_filters.py at
# mild strengths (one drawn per batch, the identity among them); selection then keeps only pairs
# that survive the filters a pirate would deploy: the strongest that cost the victim at most 3
# points of test accuracy (python benchmarks/filter_accuracy.py: blur sigma 0.5 -2.5, JPEG 70 -0.4,
# bit depth 4 -0.7, noise 0.02 -0.7).
_ROBUST_TRAINING = (
    "identity",
    "gaussian_blur@0.3:0.6",
    "box_blur@2",
    "median@3",
    "jpeg@60:95",
    "bit_depth@3:6",
    "noise@0.0:0.03",
    "translate@1:2",
    "resize@0.9:0.95",
)
_ROBUST_CHECKS = (
    "gaussian_blur@0.5",
    "jpeg@70",
    "bit_depth@4",
    "noise@0.02",
)  # airbench94 at half width: 84 % on the JPEG test split in ~3 min on 2 CPU cores

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        train_per_class=40,
        test_per_class=20,
        # Weight-derived copies in the selection role only: built and signed, but with pos_agree 0 they
        # never narrow the tiny selection (the GAN and refresh yields of 64 seeds are too small for it).
        positive=PoolConfig(
            ("vgg11:width=0.25",),
            ("vgg11:width=0.25", "victim/ftal", "victim/prune:0.5", "victim/filter:jpeg@60"),
            epochs=1,
            derived_epochs=1,
        ),
        negative=PoolConfig(("vgg11:width=0.25",), ("vgg11:width=0.25",), epochs=1, calib_archs=("vgg11:width=0.25",)),
        # The GAN trains on D_v, not on the 64 seeds: a generator fitted to its own seeds flipped 9 % of
        # unseen test images, too few for `gfaudit refresh` to find fresh pairs.
        gan=GanConfig(
            epochs=2,
            batch_size=32,
            width=8,
            lr_g=5e-3,
            train_images=200,
            filters=("identity", "bit_depth@6:7"),  # the plumbing only: the tiny GAN is too weak for more
        ),
        seeds=64,
        robust_share=0.0,
        k=10,
        pos_agree=0.0,
        x_agreement=False,
        baseline_seeds=24,
        baseline_effort=0.2,
        notes="plumbing only: models are barely trained",
    ),
    "cpu": Preset(
        name="cpu",
        train_per_class=None,
        test_per_class=None,
        # Positives: students (labels per augmented batch, probabilities) and, since issue 21, copies of
        # the victim a pirate makes in minutes (trainer/models/derived.py), at strengths the library's
        # attacks do not use (docs/attacks.md). The students are airbench nets (minutes each); the
        # victim's own ResNet-20 reaches both roles through the weight-derived copies.
        positive=PoolConfig(
            (f"{_AIR}@label", "victim/ftal", "victim/prune:0.7", "victim/filter:jpeg@60"),
            (f"{_AIR}@prob", "victim/fgsm", "victim/filter:gaussian_blur@0.4"),
            epochs=7,
            query="label",
            recipe="fast",
            data="d_v+d_p",
            temperature=2.0,
            derived_epochs=2,
        ),
        # Negatives differ from the victim the way the world's independent models do, not in one
        # systematic way a GAN can learn: seed and data order, architecture (the victim's ResNet-20 in
        # the GAN's and the calibration role), recipe (fast and classic SGD) and data pipeline (the
        # owner's images re-encoded: trainer/models/data_variants.py). Calibration: 7 trained here plus
        # any --reference (>= 8 with one). Measured on 2 CPU cores (2026-12-02), an epoch of the 37,500
        # images costs an airbench net 38-60 s (83 s for a student, which asks the victim about every
        # batch) and a ResNet-20 71-96 s: all 18 pool models took 114 minutes cold, within one session.
        negative=PoolConfig(
            (_AIR, "resnet20~jpeg70"),  # JPEG 50 left this ResNet-20 at 80.0 %, under the victim
            (f"{_AIR}+classic", f"{_AIR}~blur"),
            epochs=7,
            lr=0.1,
            recipe="fast",
            data="d_v+d_p",
            calib_archs=(
                "resnet20",
                _AIR,
                f"{_AIR}~jpeg90",
                f"{_AIR}~jpeg50",
                f"{_AIR}~resize24",
                f"{_AIR}~blur",
                _AIR,
            ),
            epochs_by_family=(("resnet", 8),),
        ),
        gan=GanConfig(epochs=4, batch_size=64, train_images=12000, diversity=1.0, filters=_ROBUST_TRAINING),
        seeds=4000,
        k=100,
        neg_follow=0.0,
        robust_checks=_ROBUST_CHECKS,
        robust_share=0.5,
        # Two of the three positive validation models must follow x' (the FGSM fine-tuned copy, 80.0 %,
        # follows adversarial x' least); pairs all three follow still rank first (conferrability).
        pos_agree=0.6,
        # max_cosine 0.5 left 9 of 392 eligible pairs: L_div at weight 1 did not stop the generator making
        # one pattern per target (cosine 0.92 in its last epoch), so here only the per-target cap spreads them.
        max_cosine=1.0,
        target_cap=2.0,
        notes="strong models in minutes (the fast recipe), one data world with the victim: negatives that differ "
        "in seed, architecture, recipe and data pipeline, the victim's ResNet-20 among them, 7 calibration negatives "
        "unseen by GAN and selection (plus references); sized to what 2 CPU cores build in about two hours",
    ),
    "paper": Preset(
        name="paper",
        train_per_class=None,
        test_per_class=None,
        positive=PoolConfig(_PAPER_ARCHS * 4, _PAPER_ARCHS * 2, epochs=60, query="label"),
        negative=PoolConfig(_PAPER_ARCHS * 4, _PAPER_ARCHS * 2, epochs=60, calib_archs=_PAPER_ARCHS * 2),
        gan=GanConfig(epochs=60, batch_size=128, diversity=1.0),
        seeds=5000,
        k=100,
        neg_follow=0.1,
        max_cosine=0.5,
        target_cap=2.0,
        notes="the paper's scale, for a GPU",
    ),
}


def get(name: str, **overrides) -> Preset:
    """A preset by name, with GAN weights or other fields overridden (for the ablation)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    gan_fields = {k: v for k, v in overrides.items() if k in GanConfig.__dataclass_fields__ and v is not None}
    rest = {k: v for k, v in overrides.items() if k not in gan_fields and v is not None}
    return replace(preset, gan=replace(preset.gan, **gan_fields), **rest)
