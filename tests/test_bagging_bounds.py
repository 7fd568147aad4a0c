"""Bagging's confidence bounds hold with probability ≥ 1 − α for any number of classes:
exact failure probabilities over every vote table (C = 3) and over every table grouped by
its extremes (C = 10), not a sample.

Two events per table of N votes drawn from class probabilities p, A the predicted class
(chosen from the same votes):

* the bounds the certificate uses: p_A,low > p_A or p_B,up < max_{j ≠ A} p_j;
* the simultaneous statement the module makes: A's lower bound or any other class's upper
  bound fails.

Both must have probability ≤ α. Spending α/C per tail (a two-sided interval at level 2α/C per
class) fails both at C = 3 (1.10α) and the second at C = 10 (1.8α); α/(2C) per tail holds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import binom

from certsmooth.certificates import bagging


def _all_tables(n: int) -> np.ndarray:
    """Every (x0, x1, x2) with x0 + x1 + x2 = n."""
    x0 = np.repeat(np.arange(n + 1), np.arange(n + 1, 0, -1))
    x1 = np.concatenate([np.arange(n - a + 1) for a in range(n + 1)])
    return np.stack([x0, x1, n - x0 - x1], axis=1)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_three_classes_every_table(alpha):
    n, p = 1000, np.array([0.4, 0.4, 0.2])
    tables = _all_tables(n)  # 501,501 tables
    prob = np.exp(gammaln(n + 1) - gammaln(tables + 1).sum(1) + (tables * np.log(p)).sum(1))
    assert prob.sum() == pytest.approx(1.0, abs=1e-9)
    p_a_low, p_b_up = bagging.simultaneous_bounds(tables, alpha)
    lower, upper = bagging.class_bounds(tables, alpha)
    top = tables.argmax(1)
    rows = np.arange(len(tables))
    others = np.where(np.arange(3)[None] == top[:, None], -np.inf, p[None])
    used = (p_a_low > p[top]) | (p_b_up < others.max(1))
    upper_fails = (upper < p[None]) & (np.arange(3)[None] != top[:, None])
    together = (lower[rows, top] > p[top]) | upper_fails.any(1)
    p_used, p_together = prob[used].sum(), prob[together].sum()
    assert p_used <= alpha, f"the certificate's bounds fail with probability {p_used / alpha:.3f}α"
    assert p_together <= alpha, f"the bounds fail together with probability {p_together / alpha:.3f}α"
    assert prob[used].sum() > 0.3 * alpha  # the test can see a failure: the bounds are not vacuous


def _p_all_inside(n: int, classes: int, lo: int, hi: int) -> float:
    """P(every count in [lo, hi]) for n votes spread uniformly over ``classes`` classes,
    exactly: class j's count given the earlier ones is Binomial(rest, 1/(classes − j))."""
    v = np.zeros(n + 1)
    v[n] = 1.0  # probability of each number of votes still to place
    for j in range(classes - 1):
        new = np.zeros(n + 1)
        q = 1.0 / (classes - j)
        for rest in np.nonzero(v)[0]:
            xs = np.arange(lo, min(hi, rest) + 1)
            np.add.at(new, rest - xs, v[rest] * binom.pmf(xs, rest, q))
        v = new
    return float(v[lo : hi + 1].sum())  # the last class takes the rest


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_ten_classes_uniform_votes_exactly(alpha):
    """C = 10, p uniform, N = 1000. The bounds depend on a count only (N fixed) and are
    monotone in it, so class j's lower bound fails iff x_j ≥ s and its upper bound iff
    x_j ≤ t. The predicted class holds the largest count, and the smallest count is never
    the predicted class's (t < N/C): the bounds fail together iff max ≥ s or min ≤ t, and the
    certificate's bounds iff max ≥ s (p_B,up < 1/C would need every other class below t).
    Both are computed exactly and checked against a direct sample of the event."""
    n, classes = 1000, 10
    x = np.arange(n + 1)
    table = np.zeros((n + 1, classes), dtype=np.int64)
    table[:, 0], table[:, 1] = x, n - x
    lower, upper = bagging.class_bounds(table, alpha)
    p = 1.0 / classes
    s = int(np.argmax(lower[:, 0] > p))  # first count whose lower bound is above p
    t = int(np.nonzero(upper[:, 0] < p)[0].max())  # last count whose upper bound is below p
    assert np.all(lower[s:, 0] > p) and np.all(upper[t + 1 :, 0] >= p) and t < n / classes < s
    together = 1.0 - _p_all_inside(n, classes, t + 1, s - 1)
    used = 1.0 - _p_all_inside(n, classes, 0, s - 1)
    assert together <= alpha, f"the bounds fail together with probability {together / alpha:.3f}α"
    assert used <= alpha, f"the certificate's bounds fail with probability {used / alpha:.3f}α"
    assert together > 0.3 * alpha

    rng = np.random.default_rng(10)  # the reduction, checked on the event itself
    draws = rng.multinomial(n, np.full(classes, p), size=20_000)
    lo, up = bagging.class_bounds(draws, alpha)
    top = draws.argmax(1)
    direct = (lo[np.arange(len(draws)), top] > p) | ((up < p) & (np.arange(classes)[None] != top[:, None])).any(1)
    se = np.sqrt(together * (1 - together) / len(draws))
    assert abs(direct.mean() - together) < 5 * se + 1e-4


def test_two_classes_keep_alpha_over_two():
    """C = 2: one class's upper bound is the other's lower bound, so α/2 per tail covers both
    events (the ensembles' rule); the demo's two-class certificates are unchanged."""
    counts = np.array([[70, 30], [55, 45], [100, 0]])
    lower, upper = bagging.class_bounds(counts, 0.01)
    np.testing.assert_allclose(upper[:, 1], 1 - lower[:, 0], atol=1e-12)
    from certsmooth.certificates.bounds import clopper_pearson

    np.testing.assert_array_equal(lower[:, 0], clopper_pearson(counts[:, 0], 100, 0.005)[0])
