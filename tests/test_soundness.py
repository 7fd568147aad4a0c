"""Statistical soundness of the ensemble certificate on a toy learner with a closed form.

Learner: a fixed unit direction w; f(D, x) = 1 iff w·x > t(D), t(D) = (w·μ₀(D) + w·μ₁(D))/2
(midpoint of the projected class means). Under training-set smoothing (one N(0, σ²I) draw
per training point, as RAB), t̃ ~ N(t(D), σ²s²) with s² = (1/n₀ + 1/n₁)/4, so the smoothed
classifier is P(f = 1) = Φ((w·x − t(D))/(σs)) and its exact robust radius against any
training-set perturbation of stacked ℓ2 norm ρ is R* = |w·x − t(D)|/s = σΦ⁻¹(p_A) (the
worst perturbation moves t by ρs). The certificate, estimated from M real noisy
retrainings, must never exceed R* except with probability ≤ α, and retraining on a
training set perturbed by less than the certified radius must not change the
prediction.
"""

import numpy as np
import pytest
from scipy.stats import binom, norm

from certsmooth.certificates.bounds import ABSTAIN, certify_from_scores, certify_from_votes

D, N0, N1, SIGMA = 5, 12, 8, 0.8
S = np.sqrt((1 / N0 + 1 / N1) / 4)


def thresholds(x_train, y_train, w, rng, m):
    """t(D̃) of m independently noised copies of the training set (m real 'retrainings')."""
    noisy = x_train[None] + SIGMA * rng.standard_normal((m, *x_train.shape))
    proj = noisy @ w  # (m, n)
    return (proj[:, y_train == 0].mean(1) + proj[:, y_train == 1].mean(1)) / 2


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(2026)
    w = rng.standard_normal(D)
    w /= np.linalg.norm(w)
    y = np.r_[np.zeros(N0, int), np.ones(N1, int)]
    x = rng.standard_normal((N0 + N1, D)) + np.where(y[:, None] == 1, 0.5, -0.5) * w
    t = (x[y == 0] @ w).mean() / 2 + (x[y == 1] @ w).mean() / 2
    # test points at margins from tiny to large
    tests = t * w + np.linspace(-1.2, 1.2, 41)[:, None] * w + 0.3 * rng.standard_normal((41, D))
    return rng, w, x, y, t, tests


@pytest.mark.parametrize("aggregation", ["votes", "soft"])
def test_certified_radius_never_exceeds_the_true_radius(problem, aggregation):
    rng, w, x, y, t, tests = problem
    alpha, m, reps = 0.01, 200, 60
    margin = tests @ w - t
    true_class = (margin > 0).astype(int)
    true_radius = np.abs(margin) / S
    failures = trials = certified = 0
    for _ in range(reps):
        th = thresholds(x, y, w, rng, m)
        votes = (tests @ w)[None, :] > th[:, None]  # (m, T) model outputs
        if aggregation == "votes":
            counts = np.stack([(~votes).sum(0), votes.sum(0)], axis=1)
            c = certify_from_votes(counts, alpha, SIGMA)
        else:  # hard outputs as [0, 1] scores: the mean is the vote fraction
            scores = np.stack([1 - votes.mean(0), votes.mean(0)], axis=1)
            c = certify_from_scores(scores, m, alpha, SIGMA)
        ok = c.predict != ABSTAIN
        trials += len(tests)
        certified += ok.sum()
        bad = ok & ((c.predict != true_class) | (c.radius > true_radius + 1e-12))
        failures += bad.sum()
    assert certified > 0.5 * trials  # the test exercises real certificates
    # each certificate fails w.p. ≤ α: the count is stochastically below Binomial(trials, α)
    assert failures <= binom.ppf(1 - 1e-6, trials, alpha), (failures, trials)


def test_retraining_within_the_radius_keeps_the_prediction(problem):
    rng, w, x, y, t, tests = problem
    th = thresholds(x, y, w, rng, 400)
    votes = (tests @ w)[None, :] > th[:, None]
    c = certify_from_votes(np.stack([(~votes).sum(0), votes.sum(0)], axis=1), 0.001, SIGMA)
    checked = 0
    for j in np.flatnonzero(c.predict != ABSTAIN):
        rho = 0.99 * c.radius[j]
        # worst case: move every training point along w so that t moves towards w·x
        lam = rho / np.sqrt(1 / N0 + 1 / N1)
        direction = np.sign(tests[j] @ w - t)
        delta = direction * lam * np.where(y[:, None] == 0, 1 / N0, 1 / N1) * w
        assert np.sqrt((delta**2).sum()) == pytest.approx(rho)
        x2 = x + delta
        t2 = (x2[y == 0] @ w).mean() / 2 + (x2[y == 1] @ w).mean() / 2
        p_pred = norm.cdf(direction * (tests[j] @ w - t2) / (SIGMA * S))  # exact smoothed prob.
        assert p_pred > 0.5, (j, c.radius[j], p_pred)
        if p_pred > 0.53:  # retrain the ensemble on the perturbed set: the majority holds
            th2 = thresholds(x2, y, w, rng, 20_000)
            frac = (((tests[j] @ w) > th2).astype(int) == c.predict[j]).mean()
            assert frac > 0.5
            checked += 1
    assert checked >= 10


def test_the_check_has_power(problem):
    """The same check flags a radius computed from the raw estimate (no confidence bound)."""
    rng, w, x, y, t, tests = problem
    margin = tests @ w - t
    true_radius = np.abs(margin) / S
    failures = trials = 0
    for _ in range(30):
        th = thresholds(x, y, w, rng, 200)
        frac1 = ((tests @ w)[None, :] > th[:, None]).mean(0)
        p_a = np.maximum(frac1, 1 - frac1)
        naive = SIGMA * norm.ppf(np.clip(p_a, 0, 1 - 1e-9))
        trials += len(tests)
        failures += (naive > true_radius).sum()
    assert failures > binom.ppf(1 - 1e-6, trials, 0.01)
