"""Poisoning: all-to-one dirty-label backdoors (RAB / Cert-SSB protocol), the two
availability attacks of this project's Lorenz et al. reconstruction, and a trigger-only
control.

``m = ⌊n·rate⌋`` training points (n = size of the whole training set, as RAB's
``int(len(dataset)*ratio)``) are drawn uniformly without replacement from the
**non-target** points with a seeded generator; each gets the trigger and the target
label. The triggered test set holds every test point with the trigger and its true
label; ``nontarget`` marks the points RAB certifies (its ``test_label_poison=False``
protocol) and ``target`` is the label an attack success would produce.

Availability attacks (Lorenz et al., arXiv 2108.11299; a **reconstruction** from the paper's
abstract, not the authors' method): ``m = ⌊n·rate⌋`` points drawn uniformly (seeded) from
the **whole** training set get the trigger and a new label: ``avail_uniform`` draws each
label uniformly from all C classes; ``avail_split`` gives a seeded half of them class a
and the rest class b (a gets ⌈m/2⌉). The aim is ambiguity, hence abstention, on
triggered inputs. ``none`` poisons nothing (the control: the same trigger at test time
on a model trained on clean data). These have no target: every triggered test point
counts, with its true label.

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


def draw_rows(n: int, m: int, seed: int) -> np.ndarray:
    """Sorted indices of ``m`` of ``n`` training points, seeded: the poisoned rows of every
    availability attack (the same rows for the same seed, rate and set)."""
    return np.sort(numpy_rng(seed, "poison").choice(n, size=m, replace=False)).astype(np.int64)


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


NO_TARGET = -1
AVAILABILITY = ("avail_uniform", "avail_split")


def poison_availability(
    train: PreparedSplit, trigger: Trigger, kind: str, rate: float, seed: int, split_classes=None
) -> PoisonedTrain:
    """``avail_uniform`` / ``avail_split`` poisons (module docstring), or none for ``none``."""
    x = train.floats()
    y = train.y.copy()
    n, c = int(y.size), train.num_classes
    if kind == "none":
        empty = np.zeros(0, dtype=np.int64)
        return PoisonedTrain(x, y, train.y.copy(), empty, np.zeros(0))
    if kind not in AVAILABILITY:
        raise ConfigError(f"attack.kind = {kind!r}: allowed backdoor, none, {', '.join(AVAILABILITY)}")
    idx, labels = availability_poisons(kind, n, c, rate, seed, split_classes)
    triggered = trigger.apply(x[idx])
    norms = perturbation_norms(x[idx], triggered)
    x[idx] = triggered
    y[idx] = labels
    return PoisonedTrain(x, y, train.y.copy(), idx, norms)


def availability_poisons(kind: str, n: int, c: int, rate: float, seed: int, split_classes=None):
    """(rows, new labels) of the ``avail_uniform`` / ``avail_split`` poisons of a training set of
    ``n`` points in ``c`` classes (module docstring), seeded."""
    m = num_poisons(n, rate)
    if not 1 <= m <= n:
        raise ConfigError(f"attack.rate = {rate} poisons {m} of {n} training points; use a rate in [{1 / n:.2g}, 1)")
    return draw_rows(n, m, seed), _availability_labels(kind, m, c, seed, split_classes)


def _availability_labels(kind: str, m: int, c: int, seed: int, split_classes) -> np.ndarray:
    rng = numpy_rng(seed, "availability-labels")
    if kind == "avail_uniform":
        return rng.integers(0, c, size=m)
    if split_classes is None:
        raise ConfigError("attack.split_classes: avail_split needs its two labels (the kind's default: attacks.kinds)")
    a, b = (int(v) for v in split_classes)
    for v in (a, b):
        if not 0 <= v < c:
            raise ConfigError(f"attack.split_classes = {list(split_classes)}: labels must be in 0..{c - 1}")
    if a == b:
        raise ConfigError(f"attack.split_classes = {list(split_classes)}: the two classes must differ")
    return np.where(rng.permutation(m) < (m + 1) // 2, a, b)


def trigger_test_set(test: PreparedSplit, trigger: Trigger, target: int) -> TriggeredTest:
    """Every test point with the trigger and its true label; ``target`` = NO_TARGET for
    attacks without one (every point then counts as non-target)."""
    if target != NO_TARGET:
        _check_target(target, test)
    clean = test.floats()
    x = trigger.apply(clean)
    return TriggeredTest(x, test.y.copy(), test.y != target, perturbation_norms(clean, x), target)
