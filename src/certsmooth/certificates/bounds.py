"""Confidence bounds and the Gaussian certified radius.

The smoothed ensemble's class probabilities p_c are estimated from M independent
models (M Monte-Carlo draws of the smoothing noise):

* ``soft`` aggregation (RAB): the mean of the models' probability vectors, bounded
  with Hoeffding's inequality, half-width h = √(ln(1/α′)/(2M)) per one-sided bound;
* ``votes``: counts of the models' hard predictions, bounded with exact one-sided
  Clopper–Pearson intervals (Beta quantiles) at level α′.

The top class A and the runner-up B are chosen from the same M draws, so each bound
must hold simultaneously for every class that could be chosen. certsmooth therefore
splits α over all the one-sided events (Bonferroni): for C = 2 classes the lower bound
of one class is the upper bound of the other, so there are 2 events and α′ = α/2; for
C > 2 there are 2C and α′ = α/(2C). RAB's code uses α′ = α with a data-chosen class,
whose failure probability can reach 2α (documented divergence; with α′ = α the
Hoeffding R_max at M = 1000, α = 0.001 is 1.565σ, with α/2 it is 1.541σ).

Radius (Cohen et al., general form): R = σ/2·(Φ⁻¹(p_A,low) − Φ⁻¹(p_B,up)); the point
abstains (prediction −1, radius 0) when p_A,low ≤ p_B,up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv, ndtri  # scipy.stats' beta.ppf / norm.ppf bit for bit, ~1 s faster to import

import certsmooth.certificates.checks as checks

ABSTAIN = -1


def hoeffding_halfwidth(n: int, alpha: float) -> float:
    """h with P(mean − E ≥ h) ≤ α for the mean of n independent [0, 1] variables."""
    checks.integer(n, "n", 1)
    checks.alpha(alpha)
    return math.sqrt(math.log(1.0 / alpha) / (2.0 * n))


def clopper_pearson(k: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided exact binomial bounds, each at level α: (lower, upper).

    lower = α-quantile of Beta(k, n − k + 1) (0 if k = 0); upper = (1 − α)-quantile of
    Beta(k + 1, n − k) (1 if k = n). ``k``: integer counts in 0..n.
    """
    checks.alpha(alpha)
    n = checks.integer(n, "n", 1)
    k = np.asarray(k)
    if k.dtype.kind not in "iu" and not (k.dtype.kind == "f" and np.all(k == np.round(k))):
        raise checks.CertificateInputError(f"k = {k.tolist()!r:.60}: success counts must be integers")
    if k.size and (k.min() < 0 or k.max() > n):
        raise checks.CertificateInputError(f"k = {k.tolist()!r:.60}: success counts must be in 0..n = 0..{n}")
    k = k.astype(np.float64)
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, betaincinv(np.maximum(k, 1), n - k + 1, alpha), 0.0)
        upper = np.where(k < n, betaincinv(k + 1, np.maximum(n - k, 1), 1 - alpha), 1.0)
    return lower, upper


def whitened_radius(p_a_low: np.ndarray, p_b_up: np.ndarray) -> np.ndarray:
    """R̃ = ½(Φ⁻¹(p_A,low) − Φ⁻¹(p_B,up)) for unit-variance noise; 0 where p_A,low ≤ p_B,up.

    Both are confidence bounds in [0, 1]; a certified point (p_A,low > p_B,up) needs
    p_A,low < 1 and p_B,up > 0: a bound of exactly 1 or 0 claims certainty that no finite
    sample gives, and would make the radius infinite."""
    p_a_low = checks.probabilities(p_a_low, "p_a_low")
    p_b_up = checks.probabilities(p_b_up, "p_b_up")
    certain = (p_a_low > p_b_up) & ((p_a_low >= 1) | (p_b_up <= 0))
    if certain.any():
        i = np.unravel_index(int(np.argmax(certain)), certain.shape) if certain.ndim else ()
        a, b = float(np.broadcast_to(p_a_low, certain.shape)[i]), float(np.broadcast_to(p_b_up, certain.shape)[i])
        raise checks.CertificateInputError(
            f"p_a_low = {a!r}, p_b_up = {b!r}: a confidence bound of exactly 1 (or 0) gives an infinite radius; "
            "bounds from a finite sample lie strictly inside (0, 1)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 0.5 * (ndtri(np.clip(p_a_low, 0, 1)) - ndtri(np.clip(p_b_up, 0, 1)))
    return np.where(p_a_low > p_b_up, r, 0.0)


def radius(p_a_low: np.ndarray, p_b_up: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """σ/2·(Φ⁻¹(p_A,low) − Φ⁻¹(p_B,up)), and 0 where p_A,low ≤ p_B,up (abstain); σ finite > 0."""
    return checks.scale(sigma) * whitened_radius(p_a_low, p_b_up)


def per_side_alpha(alpha: float, num_classes: int) -> float:
    """α split over the one-sided events that must hold together (see module docstring)."""
    checks.alpha(alpha)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise checks.CertificateInputError(f"num_classes = {num_classes!r}: a classifier needs at least 2 classes")
    return alpha / 2 if num_classes == 2 else alpha / (2 * num_classes)


def min_models_to_certify(aggregation: str, alpha: float, num_classes: int, models: int) -> tuple[int, str]:
    """The fewest models whose best case (every model sure of one class) certifies a point
    at ``alpha`` with the per-side level actually used, and why ``models`` falls short."""
    a = per_side_alpha(alpha, num_classes)
    checks.integer(models, "models", 1)
    if aggregation == "soft":  # p_A,low > p_B,up needs 1 − 2h > 0, h = √(ln(1/α′)/2M)
        need = math.floor(2 * math.log(1 / a)) + 1
        return need, f"its Hoeffding half-width at α′ = {a:g} per side is {hoeffding_halfwidth(models, a):.3f} ≥ 0.5"
    if aggregation == "votes":  # unanimous votes: p_A,low = α′^(1/M) against p_B,up = 1 − α′^(1/M)
        need = math.floor(math.log2(1 / a)) + 1
        return need, f"even unanimous votes give p_A,low = {a ** (1 / models):.3f} ≤ 0.5 at α′ = {a:g} per side"
    raise ValueError(f"unknown aggregation {aggregation!r}")


def max_whitened_radius(aggregation: str, alpha: float, num_classes: int, models: int) -> float:
    """R̃_max: the whitened radius of an ensemble whose every model is sure of one class (soft)
    or votes for it (votes), the largest any point can be certified at (both bounds are
    monotone in the scores); a perturbation of whitened norm ≥ R̃_max is certified nowhere.
    RAB's R_max = σ·R̃_max (1.541σ at M = 1000, α = 0.001, soft)."""
    checks.integer(models, "models", 1)
    best = np.zeros((1, num_classes))
    if aggregation == "soft":
        best[0, 0] = 1.0
        return float(certify_from_scores(best, models, alpha, 1.0).radius[0])
    if aggregation == "votes":
        best[0, 0] = models
        return float(certify_from_votes(best, alpha, 1.0).radius[0])
    raise ValueError(f"unknown aggregation {aggregation!r}")


@dataclass
class Certificates:
    predict: np.ndarray  # class or ABSTAIN
    top: np.ndarray  # argmax class (the smoothed prediction, before abstaining)
    p_a: np.ndarray
    p_b: np.ndarray
    p_a_low: np.ndarray
    p_b_up: np.ndarray
    radius: np.ndarray


def _top_two(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """argmax (ties → lowest index), its value, and the largest value among the rest."""
    top = p.argmax(1)
    p_a = p[np.arange(len(p)), top]
    rest = p.copy()
    rest[np.arange(len(p)), top] = -np.inf
    return top, p_a, rest.max(1)


def _finish(top, p_a, p_b, p_a_low, p_b_up, sigma) -> Certificates:
    r = radius(p_a_low, p_b_up, sigma)
    predict = np.where(p_a_low > p_b_up, top, ABSTAIN)
    return Certificates(predict, top, p_a, p_b, p_a_low, p_b_up, r)


def certify_from_scores(mean_scores: np.ndarray, num_models: int, alpha: float, sigma) -> Certificates:
    """``soft``: mean class probabilities (T, C) of ``num_models`` models → certificates.
    Each row must be a probability vector; σ finite > 0."""
    scores = checks.score_table(mean_scores, "mean_scores")
    checks.scale(sigma)
    h = hoeffding_halfwidth(num_models, per_side_alpha(alpha, scores.shape[1]))
    top, p_a, p_b = _top_two(scores)
    return _finish(top, p_a, p_b, np.clip(p_a - h, 0.0, 1.0), np.clip(p_b + h, 0.0, 1.0), sigma)


def certify_from_votes(counts: np.ndarray, alpha: float, sigma) -> Certificates:
    """``votes``: per-class vote counts (T, C) of n models → certificates. Every row is
    voted on by the same n models: counts are integers ≥ 0 with equal row totals; σ finite > 0."""
    counts = checks.counts(counts, "counts")
    checks.scale(sigma)
    a = per_side_alpha(alpha, counts.shape[1])
    if not len(counts):
        empty = np.zeros(0)
        return _finish(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, sigma)
    n = int(counts[0].sum())
    top, n_a, n_b = _top_two(counts.astype(np.float64))
    p_a_low, _ = clopper_pearson(n_a, n, a)
    _, p_b_up = clopper_pearson(n_b, n, a)
    return _finish(top, n_a / n, n_b / n, p_a_low, p_b_up, sigma)
