"""The bagging certificate of Jia, Cao & Gong (AAAI 2021, arXiv 2008.04495): N base
models, each trained on k training samples drawn uniformly with replacement
(:func:`certsmooth.subsets.rows.bagging_subsets`), vote; the certified poisoning size r* is
the number of training samples that may be modified, deleted or inserted without changing
the bagged prediction, with probability ≥ 1 − α over the draw of the subsamples.

* Bounds: the vote counts of the N models give one-sided Clopper–Pearson bounds for every
  class, a lower and an upper one, each at the level α′ of
  :func:`certsmooth.certificates.bounds.per_side_alpha` (the ensembles' rule): α′ = α/(2C) for
  C ≥ 3 classes, so that all 2C bounds hold together with probability ≥ 1 − α (a union
  bound). That is what makes the bounds used sound: the predicted class A is chosen from
  the same votes, so "A's lower bound and the other classes' upper bounds hold" is an event
  about a data-chosen class, covered only by every class's bounds holding at once. (Spending
  α/C per tail, as a two-sided interval at level 2α/C per class, fails with probability
  1.10α at C = 3, p = (0.4, 0.4, 0.2), N = 1000, and 1.8α at C = 10, uniform votes: exact
  enumeration, tests/test_count_soundness.py.) For C = 2 the upper bound of one class is the
  lower bound of the other, so there are only 2 events and α′ = α/2. p_A,low for the
  predicted class, p_B,up = the largest upper bound of the other classes, clipped to
  ≤ 1 − p_A,low (the public code's choice; sound given p_A,low ≤ p_A).
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
from scipy.special import betaincinv  # scipy.stats.beta.ppf, bit for bit (certificates/bounds.py)

import certsmooth.certificates.checks as checks
from certsmooth.certificates.bounds import per_side_alpha
from certsmooth.certificates.dpa import NOT_CERTIFIED, top_two


def class_bounds(counts: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper), each (N, C): every class's one-sided Clopper–Pearson bounds at
    α′ = per_side_alpha(α, C), all of which hold together with probability ≥ 1 − α.
    ``counts``: integer votes ≥ 0, every row with the same total (the N models)."""
    counts = checks.counts(counts, "counts")
    a = per_side_alpha(alpha, counts.shape[1])
    total = counts.sum(axis=1)[:, None]
    with np.errstate(invalid="ignore"):
        lower = np.where(counts > 0, betaincinv(np.maximum(counts, 1), total - counts + 1, a), 0.0)
        upper = np.where(counts < total, betaincinv(counts + 1, np.maximum(total - counts, 1), 1 - a), 1.0)
    return lower, upper


def simultaneous_bounds(counts: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(p_A,low, p_B,up) per row of vote counts (N, C) from :func:`class_bounds`: the
    predicted class's lower bound and the largest upper bound of the others, clipped to
    1 − p_A,low."""
    lower, upper = class_bounds(counts, alpha)
    c, _ = top_two(counts)
    rows = np.arange(len(c))
    p_a = lower[rows, c]
    upper[rows, c] = -np.inf
    p_b = np.minimum(upper.max(axis=1), 1.0 - p_a)
    return p_a, p_b


def bound(r: int, p_a_low: float, p_b_up: float, n: int, k: int) -> float:
    """max over n′ ∈ [n, n + r] of Jia, Cao & Gong's expression: r is certified iff this is < 0."""
    _check_bound_args(p_a_low, p_b_up, n, k)
    return _bound(checks.integer(r, "r", 0), p_a_low, p_b_up, n, k)


def _bound(r: int, p_a_low: float, p_b_up: float, n: int, k: int) -> float:
    n_prime = np.arange(n, n + r + 1, dtype=np.float64)
    value = (n_prime / n) ** k - 2.0 * ((n_prime - r) / n) ** k + 1.0 - p_a_low + p_b_up
    return float(value.max())


def poisoning_size(p_a_low: float, p_b_up: float, n: int, k: int, r_max: int) -> int:
    """r*: the largest r ≤ r_max such that every r′ ≤ r satisfies the bound; −1 if r = 0
    does not (p_A,low ≤ p_B,up)."""
    _check_bound_args(p_a_low, p_b_up, n, k)
    checks.integer(r_max, "r_max", 0)
    r = -1
    while r < r_max and _bound(r + 1, p_a_low, p_b_up, n, k) < 0:
        r += 1
    return r


def certify(counts: np.ndarray, alpha: float, n: int, k: int, r_max: int,
            labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(prediction, r*) per test point from the N models' vote counts (N_points, C); with
    ``labels``, r* = −1 where the prediction is wrong."""
    counts = checks.counts(counts, "counts")
    checks.integer(n, "n", 1)
    checks.integer(k, "k", 1)
    checks.integer(r_max, "r_max", 0)
    c, _ = top_two(counts)
    p_a, p_b = simultaneous_bounds(counts, alpha)
    r = np.array([poisoning_size(a, b, n, k, r_max) for a, b in zip(p_a, p_b, strict=True)], dtype=np.int64)
    if labels is not None:
        r = np.where(c == checks.labels(labels, counts.shape[1], "labels"), r, NOT_CERTIFIED)
    return c, r


def _check_bound_args(p_a_low: float, p_b_up: float, n: int, k: int) -> None:
    checks.probabilities(p_a_low, "p_a_low")
    checks.probabilities(p_b_up, "p_b_up")
    checks.integer(n, "n", 1)
    checks.integer(k, "k", 1)
