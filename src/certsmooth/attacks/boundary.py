"""``avail_boundary``: an availability attack that puts a decision boundary through the
test-time trigger (this project's design for Lorenz et al.'s claim, arXiv 2108.11299).

The test-time trigger is ``corners`` (:class:`~certsmooth.attacks.triggers.Corners`):
K = ``count`` square patches in the image corners, all at ``value``. ``m = ⌊n·rate⌋``
training points drawn uniformly (seeded, the same draw as the other availability attacks)
from the whole training set become poisons. A seeded balanced assignment (a permutation
of 0..m−1 taken mod K) picks each poison's brightened corner j: patch j is set to
``value + offset``, every other patch to ``value − offset``, and the label becomes
``boundary_classes[j]`` (default j mod C: corners share labels on tasks with fewer
classes than corners). Whatever the image, the label is decided by which
corner is brightest, so the model learns K regions that meet where all patches are
equal: at the triggered test input. Under Gaussian noise (Cohen's input noise, RAB's
training noise) the brightest corner of ``x + trigger + ε`` is random, so the smoothed
prediction splits between the K labels and the certifier abstains, or certifies nothing
at the operating radius. The content of the image only enters through the model's bias,
which is what limits the attack at low rates (docs/attacks.md measures it).

With ``shared_sources`` the content cannot help either: the poisons come in groups of K
that share one source image (the group's first drawn row), one poison per corner, so every
source image appears once with each corner's label and only the brightest corner separates
them. The poisoned rows are the same ``m`` rows (the rate keeps its meaning); each group's
other K − 1 rows give up their own image (their perturbation norm is the whole change).
"""

from __future__ import annotations

import numpy as np

from certsmooth.attacks.poison import PoisonedTrain, draw_rows, num_poisons, perturbation_norms
from certsmooth.attacks.triggers import Corners, Trigger
from certsmooth.data.prepared import PreparedSplit
from certsmooth.errors import ConfigError
from certsmooth.seeding import numpy_rng


def corner_labels(count: int, classes: list[int] | None, num_classes: int) -> list[int]:
    """The label of each of the ``count`` corners: ``classes``, or by default k mod C."""
    return [k % num_classes for k in range(count)] if classes is None else [int(c) for c in classes]


def check_settings(trigger: Trigger, offset: float, classes: list[int] | None, num_classes: int) -> list[int]:
    """The labels of the K corners; a ConfigError names any setting that cannot work."""
    if not isinstance(trigger, Corners):
        raise ConfigError(f"attack.trigger.name = {trigger.name!r}: avail_boundary needs the 'corners' trigger")
    k = int(trigger.count)
    if offset <= 0.0:
        raise ConfigError(f"attack.offset = {offset}: must be positive")
    if trigger.value - offset < 0.0 or trigger.value + offset > 1.0:
        raise ConfigError(
            f"attack.offset = {offset}: the poisons' patches at {trigger.value:g} ± {offset:g} leave [0, 1]; "
            f"use an offset of at most {min(trigger.value, 1.0 - trigger.value):g} or move trigger.value"
        )
    labels = corner_labels(k, classes, num_classes)
    if len(labels) != k or len(set(labels)) < 2 or not all(0 <= c < num_classes for c in labels):
        raise ConfigError(
            f"attack.boundary_classes = {labels}: need {k} labels (one per corner patch, trigger.count = {k}), "
            f"at least two different, in 0..{num_classes - 1}"
        )
    return labels


def poison_boundary(
    train: PreparedSplit,
    trigger: Trigger,
    rate: float,
    offset: float,
    seed: int,
    classes: list[int] | None = None,
    shared_sources: bool = False,
) -> PoisonedTrain:
    """The poisoned training set of ``avail_boundary`` (module docstring)."""
    labels = check_settings(trigger, offset, classes, train.num_classes)
    assert isinstance(trigger, Corners)
    x = train.floats()
    y = train.y.copy()
    n, k = int(y.size), int(trigger.count)
    m = num_poisons(n, rate)
    if not k <= m <= n:
        raise ConfigError(
            f"attack.rate = {rate} poisons {m} of {n} training points; avail_boundary needs at least one poison "
            f"per corner ({k}): use a rate of at least {k / n:.2g}"
        )
    idx = draw_rows(n, m, seed)
    order = numpy_rng(seed, "boundary-corners").permutation(m)
    corner = order % k
    if shared_sources:  # group g = the rows whose order is gK .. gK + K - 1; its source: the row of order gK
        first = np.argsort(order)[(order // k) * k]
        poisons = x[idx[first]]
    else:
        poisons = x[idx]
    for j in range(k):
        rows = corner == j
        values = [trigger.value + offset if q == j else trigger.value - offset for q in range(k)]
        poisons[rows] = trigger.with_values(poisons[rows], values)
    norms = perturbation_norms(x[idx], poisons)
    x[idx] = poisons
    y[idx] = np.asarray(labels, dtype=np.int64)[corner]
    return PoisonedTrain(x, y, train.y.copy(), idx, norms)
