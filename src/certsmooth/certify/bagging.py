"""The bagging certificate of Jia, Cao & Gong (AAAI 2021; spec ``baselines.md`` §2): N base
models, each trained on k training samples drawn uniformly with replacement
(:func:`certsmooth.data.partition.bagging_subsets`), vote; the certified poisoning size r* is
the number of training samples that may be modified, deleted or inserted without changing
the bagged prediction, with probability ≥ 1 − α over the draw of the subsamples.

* Bounds: the vote counts of the N models give simultaneous Clopper–Pearson intervals over
  the C classes, each two-sided at level 2α/C (so the C one-sided events used, p_A's lower
  bound and the other classes' upper bounds, fail with probability ≤ α together); p_A,low
  for the predicted class, p_B,up = the largest upper bound of the other classes, clipped to
  ≤ 1 − p_A,low (the public code's choice).
* r*: the largest r (0..r_max) with
      max over n′ ∈ [n, n + r] of (n′/n)^k − 2·((n′ − r)/n)^k + 1 − p_A,low + p_B,up < 0,
  n the size of the (poisoned) training set. A point with p_A,low ≤ p_B,up is not certified
  (r* = −1). The public code finds r* by binary search over [0, 1500]; certsmooth evaluates
  the condition for every r up to r_max (the condition is not assumed monotone in r) and
  reports the largest r below which every r′ satisfies it, so r* is sound whatever the
  shape.
* α: the public code divides α by the number of test points before bounding (a
  simultaneous guarantee for the whole test set); :func:`certify` takes the per-point α and
  the caller chooses (``alpha_over_points`` in the certifier's settings, documented).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv  # scipy.stats.beta.ppf, bit for bit (certify/bounds.py)

from certsmooth.certify.dpa import NOT_CERTIFIED, top_two


def simultaneous_bounds(counts: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(p_A,low, p_B,up) per row of vote counts (N, C): Clopper–Pearson at level 2α/C per
    class (two-sided), p_B,up clipped to 1 − p_A,low."""
    counts = np.asarray(counts, dtype=np.int64)
    total = counts.sum(axis=1)
    num_classes = counts.shape[1]
    a = alpha / num_classes  # each one-sided tail of a two-sided interval at level 2α/C
    c, _ = top_two(counts)
    rows = np.arange(len(c))
    with np.errstate(invalid="ignore"):
        lower = np.where(counts > 0, betaincinv(np.maximum(counts, 1), total[:, None] - counts + 1, a), 0.0)
        upper = np.where(counts < total[:, None], betaincinv(counts + 1, np.maximum(total[:, None] - counts, 1), 1 - a),
                         1.0)  # fmt: skip
    p_a = lower[rows, c]
    upper[rows, c] = -np.inf
    p_b = np.minimum(upper.max(axis=1), 1.0 - p_a)
    return p_a, p_b


def bound(r: int, p_a_low: float, p_b_up: float, n: int, k: int) -> float:
    """max over n′ ∈ [n, n + r] of the spec's expression: r is certified iff this is < 0."""
    n_prime = np.arange(n, n + r + 1, dtype=np.float64)
    value = (n_prime / n) ** k - 2.0 * ((n_prime - r) / n) ** k + 1.0 - p_a_low + p_b_up
    return float(value.max())


def poisoning_size(p_a_low: float, p_b_up: float, n: int, k: int, r_max: int) -> int:
    """r*: the largest r ≤ r_max such that every r′ ≤ r satisfies the bound; −1 if r = 0
    does not (p_A,low ≤ p_B,up)."""
    r = -1
    while r < r_max and bound(r + 1, p_a_low, p_b_up, n, k) < 0:
        r += 1
    return r


def certify(counts: np.ndarray, alpha: float, n: int, k: int, r_max: int,
            labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(prediction, r*) per test point from the N models' vote counts (N_points, C); with
    ``labels``, r* = −1 where the prediction is wrong."""
    c, _ = top_two(counts)
    p_a, p_b = simultaneous_bounds(counts, alpha)
    r = np.array([poisoning_size(a, b, n, k, r_max) for a, b in zip(p_a, p_b, strict=True)], dtype=np.int64)
    if labels is not None:
        r = np.where(c == np.asarray(labels), r, NOT_CERTIFIED)
    return c, r
