"""All-to-one dirty-label backdoor poisoning (RAB / Cert-SSB protocol).

``m = ⌊n·rate⌋`` training points (n = size of the whole training set, as RAB's
``int(len(dataset)*ratio)``) are drawn uniformly without replacement from the
**non-target** points with a seeded generator; each gets the trigger and the target
label. The triggered test set holds every test point with the trigger and its true
label; ``nontarget`` marks the points RAB certifies (its ``test_label_poison=False``
protocol) and ``target`` is the label an attack success would produce.

For every triggered image the effective perturbation ``x' − x`` (after clipping) is
measured in ℓ2; ``stacked_norm = √Σᵢ‖δᵢ‖²`` over the poisons is the quantity a
training-set certificate (``train`` scope) has to cover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from certsmooth.attacks.triggers import Trigger
from certsmooth.data.prepared import PreparedSplit
from certsmooth.errors import ConfigError
from certsmooth.seeding import numpy_rng


def num_poisons(n: int, rate: float) -> int:
    """⌊n·rate⌋, robust to binary rounding (0.29·100 gives 29, not 28)."""
    return int(math.floor(n * rate + 1e-9))


def choose_poisons(y: np.ndarray, target: int, rate: float, seed: int) -> np.ndarray:
    """Sorted indices of the points to poison: non-target points, seeded."""
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"attack.rate = {rate}: must be in (0, 1)")
    n = int(y.size)
    m = num_poisons(n, rate)
    candidates = np.flatnonzero(y != target)
    if m < 1:
        raise ConfigError(
            f"attack.rate = {rate} poisons ⌊{n}·{rate}⌋ = 0 of {n} training points; use a rate of at least {1 / n:.2g}"
        )
    if m > candidates.size:
        raise ConfigError(
            f"attack.rate = {rate} asks for {m} poisons but only {candidates.size} training points "
            "are outside the target class; lower the rate"
        )
    rng = numpy_rng(seed, "poison")
    return np.sort(rng.choice(candidates, size=m, replace=False)).astype(np.int64)


def perturbation_norms(clean: np.ndarray, triggered: np.ndarray) -> np.ndarray:
    """Per-image ℓ2 norm of ``triggered − clean`` in float64."""
    diff = triggered.astype(np.float64) - clean.astype(np.float64)
    return np.sqrt(np.einsum("ni,ni->n", diff.reshape(len(diff), -1), diff.reshape(len(diff), -1)))


@dataclass
class PoisonedTrain:
    x: np.ndarray  # float32 N×C×H×W, [0,1] scale (blending may leave it)
    y: np.ndarray  # int64 labels after relabelling the poisons
    clean_y: np.ndarray
    poison_index: np.ndarray  # sorted rows of the training set that are poisoned
    perturbation_norm: np.ndarray  # ℓ2 of x' − x for each poison (same order)

    @property
    def stacked_norm(self) -> float:
        return float(np.sqrt(np.sum(self.perturbation_norm**2)))


@dataclass
class TriggeredTest:
    x: np.ndarray  # float32 triggered copies of every test point
    y: np.ndarray  # true labels
    nontarget: np.ndarray  # bool: true label differs from the target
    perturbation_norm: np.ndarray
    target: int


def _check_target(target: int, split: PreparedSplit) -> None:
    if not 0 <= target < split.num_classes:
        raise ConfigError(
            f"attack.target = {target}: must be a label of the relabelled task, 0..{split.num_classes - 1} "
            f"({', '.join(f'{i}={n}' for i, n in enumerate(split.class_names))})"
        )


def poison_training_set(train: PreparedSplit, trigger: Trigger, rate: float, target: int, seed: int) -> PoisonedTrain:
    _check_target(target, train)
    x = train.floats()
    idx = choose_poisons(train.y, target, rate, seed)
    triggered = trigger.apply(x[idx])
    norms = perturbation_norms(x[idx], triggered)
    x[idx] = triggered
    y = train.y.copy()
    y[idx] = target
    return PoisonedTrain(x, y, train.y.copy(), idx, norms)


def trigger_test_set(test: PreparedSplit, trigger: Trigger, target: int) -> TriggeredTest:
    _check_target(target, test)
    clean = test.floats()
    x = trigger.apply(clean)
    return TriggeredTest(x, test.y.copy(), test.y != target, perturbation_norms(clean, x), target)
