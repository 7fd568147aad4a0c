"""Bounds and radii against closed forms."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta, binomtest, norm

from certsmooth.certificates.bounds import (
    ABSTAIN,
    certify_from_scores,
    certify_from_votes,
    clopper_pearson,
    hoeffding_halfwidth,
    per_side_alpha,
    radius,
)


def test_hoeffding_closed_form_and_rab_numbers():
    assert hoeffding_halfwidth(1000, 0.001) == pytest.approx(math.sqrt(math.log(1000) / 2000))
    assert hoeffding_halfwidth(1000, 0.001) == pytest.approx(0.05877, abs=1e-5)  # RAB, arXiv 2003.08904
    assert hoeffding_halfwidth(200, 0.001) == pytest.approx(0.1314, abs=1e-4)


def test_r_max_hoeffding_matches_spec():
    # RAB's one-sided bound at α: R_max = σ·Φ⁻¹(1 − h) = 1.565σ (M=1000), 1.12σ (M=200)
    for m, expected in ((1000, 1.565), (200, 1.12)):
        h = hoeffding_halfwidth(m, 0.001)
        assert radius(1 - h, h, 1.0) == pytest.approx(expected, abs=2e-3)
        assert radius(1 - h, h, 0.5) == pytest.approx(expected / 2, abs=1e-3)
    # certsmooth splits α over the two one-sided events of a binary task: 1.541σ
    c = certify_from_scores(np.array([[0.0, 1.0]]), 1000, 0.001, sigma=1.0)
    h2 = hoeffding_halfwidth(1000, 0.0005)
    assert c.radius[0] == pytest.approx(norm.ppf(1 - h2), rel=1e-9)
    assert c.radius[0] == pytest.approx(1.541, abs=2e-3)


def test_per_side_alpha():
    assert per_side_alpha(0.001, 2) == 0.0005
    assert per_side_alpha(0.001, 10) == pytest.approx(0.00005)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 500), frac=st.floats(0, 1), alpha=st.sampled_from([1e-3, 0.01, 0.05]))
def test_clopper_pearson_is_the_beta_quantile(n, frac, alpha):
    k = int(round(frac * n))
    lo, up = clopper_pearson(np.array([k]), n, alpha)
    assert lo[0] == (0.0 if k == 0 else pytest.approx(beta.ppf(alpha, k, n - k + 1), abs=1e-12))
    assert up[0] == (1.0 if k == n else pytest.approx(beta.ppf(1 - alpha, k + 1, n - k), abs=1e-12))
    # equals the lower/upper end of the two-sided 'beta' interval at level 2α
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    assert lo[0] == pytest.approx(ci.low, abs=1e-9) and up[0] == pytest.approx(ci.high, abs=1e-9)


def test_clopper_pearson_all_successes():
    lo, _ = clopper_pearson(np.array([100_000]), 100_000, 0.001)
    assert lo[0] == pytest.approx(0.001 ** (1 / 100_000))  # α^(1/n), Cohen et al., arXiv 1902.02918
    assert norm.ppf(lo[0]) == pytest.approx(3.81, abs=0.01)  # Cohen's R_max = 3.81σ


@settings(max_examples=60, deadline=None)
@given(pa=st.floats(0.5, 1.0, exclude_max=True), pa2=st.floats(0.5, 1.0, exclude_max=True), sigma=st.floats(0.01, 5))
def test_radius_monotone_in_pa_and_linear_in_sigma(pa, pa2, sigma):
    lo, hi = sorted([pa, pa2])
    r_lo, r_hi = radius(lo, 1 - lo, sigma), radius(hi, 1 - hi, sigma)
    assert r_lo <= r_hi + 1e-12
    assert radius(hi, 1 - hi, 2 * sigma) == pytest.approx(2 * r_hi, rel=1e-9, abs=1e-12)
    if hi > 0.5:
        assert r_hi == pytest.approx(sigma * norm.ppf(hi), rel=1e-9)  # binary: σ·Φ⁻¹(pA)


def test_abstain_cases():
    # tie, and a lead smaller than the Hoeffding width
    c = certify_from_scores(np.array([[0.5, 0.5], [0.55, 0.45], [0.0, 1.0]]), 100, 0.001, 1.0)
    assert c.predict.tolist() == [ABSTAIN, ABSTAIN, 1]
    assert c.radius[0] == 0 and c.radius[1] == 0 and c.radius[2] > 0
    assert c.top.tolist() == [0, 0, 1]  # ties go to the lowest class
    v = certify_from_votes(np.array([[50, 50], [100, 0]]), 0.001, 1.0)
    assert v.predict.tolist() == [ABSTAIN, 0]
    assert radius(0.3, 0.3, 1.0) == 0.0 and radius(0.2, 0.4, 1.0) == 0.0


def test_votes_multiclass_bonferroni():
    counts = np.array([[80, 15, 5]])
    c = certify_from_votes(counts, 0.01, 0.5)
    a = 0.01 / 6
    lo = beta.ppf(a, 80, 21)
    up = beta.ppf(1 - a, 16, 85)
    assert c.p_a_low[0] == pytest.approx(lo) and c.p_b_up[0] == pytest.approx(up)
    assert c.radius[0] == pytest.approx(0.25 * (norm.ppf(lo) - norm.ppf(up)))


def test_soft_multiclass_uses_runner_up():
    c = certify_from_scores(np.array([[0.7, 0.2, 0.1]]), 400, 0.01, 1.0)
    h = hoeffding_halfwidth(400, 0.01 / 6)
    assert c.p_a_low[0] == pytest.approx(0.7 - h) and c.p_b_up[0] == pytest.approx(0.2 + h)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0, -0.1, float("nan")])
def test_bounds_refuse_alpha_outside_the_unit_interval(alpha):
    for call in (
        lambda: clopper_pearson(np.array([3]), 10, alpha),
        lambda: hoeffding_halfwidth(10, alpha),
        lambda: per_side_alpha(alpha, 2),
        lambda: certify_from_votes(np.array([[10, 0]]), alpha, 1.0),
        lambda: certify_from_scores(np.array([[1.0, 0.0]]), 50, alpha, 1.0),
    ):
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize("aggregation", ["soft", "votes"])
@pytest.mark.parametrize("alpha,classes", [(0.001, 2), (0.01, 2), (0.1, 2), (0.2, 2), (0.001, 10), (0.05, 3)])
def test_min_models_is_exactly_where_a_unanimous_ensemble_starts_to_certify(aggregation, alpha, classes):
    """The configuration check's closed form against the certifier itself: with one model
    fewer the best case (every model sure of class 0) abstains, with that many it certifies."""
    from certsmooth.certificates.bounds import min_models_to_certify

    need, _ = min_models_to_certify(aggregation, alpha, classes, 1)

    def best_case(m):
        if aggregation == "soft":
            scores = np.zeros((1, classes))
            scores[0, 0] = 1.0
            return certify_from_scores(scores, m, alpha, 1.0).predict[0]
        counts = np.zeros((1, classes), dtype=int)
        counts[0, 0] = m
        return certify_from_votes(counts, alpha, 1.0).predict[0]

    assert best_case(need) == 0
    assert need == 1 or best_case(need - 1) == -1


@pytest.mark.parametrize("aggregation", ["soft", "votes"])
@pytest.mark.parametrize("models,classes", [(20, 2), (50, 2), (1000, 2), (200, 10)])
def test_max_radius_bounds_every_certificate(aggregation, models, classes):
    """R̃_max is the radius of a unanimous ensemble and no score table gets more; RAB's
    R_max at M = 1000, α = 0.001 (soft, α/2 per side) is 1.541σ; the demo's M = 20 with
    votes: 0.48σ."""
    from certsmooth.certificates.bounds import certify_from_scores, certify_from_votes, max_whitened_radius

    top = max_whitened_radius(aggregation, 0.001, classes, models)
    rng = np.random.default_rng(models + classes)
    if aggregation == "soft":
        scores = rng.dirichlet(np.full(classes, 0.05), size=2000)
        radii = certify_from_scores(scores, models, 0.001, 1.0).radius
    else:
        counts = np.stack([rng.multinomial(models, p) for p in rng.dirichlet(np.full(classes, 0.05), size=2000)])
        counts[0] = 0
        counts[0, 1] = models  # unanimous for another class: the same radius
        radii = certify_from_votes(counts, 0.001, 1.0).radius
        assert radii[0] == pytest.approx(top, rel=1e-12)
    assert radii.max() <= top + 1e-12
    if (aggregation, models, classes) == ("soft", 1000, 2):
        assert top == pytest.approx(1.541, abs=2e-3)
    if (aggregation, models, classes) == ("votes", 20, 2):
        assert top == pytest.approx(0.48, abs=5e-3)


def test_quantiles_equal_scipy_stats_bit_for_bit():
    """bounds/bagging/cohen call scipy.special (betaincinv, ndtri) so that a certification job
    does not import scipy.stats; the numbers must be scipy.stats' beta.ppf / norm.ppf exactly
    (the demo's certificates stayed byte-identical across the change)."""
    from certsmooth.certificates.bagging import simultaneous_bounds
    from certsmooth.certificates.bounds import whitened_radius
    from certsmooth.certificates.cohen_merge import max_radius

    for n in (1, 2, 7, 20, 100, 1000):
        k = np.arange(n + 1)
        for alpha in (1e-3, 5e-4, 1e-4, 0.05, 0.3):
            lo, up = clopper_pearson(k, n, alpha)
            ref_lo = np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)
            ref_up = np.where(k < n, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)), 1.0)
            assert np.array_equal(lo, ref_lo) and np.array_equal(up, ref_up)
    rng = np.random.default_rng(0)
    pa, pb = rng.random(2000), rng.random(2000) / 2
    ref = np.where(pa > pb, 0.5 * (norm.ppf(pa) - norm.ppf(pb)), 0.0)
    assert np.array_equal(whitened_radius(pa, pb), ref)
    assert max_radius(0.5, 1000, 1e-3) == float(0.5 * norm.ppf(1e-3 ** (1 / 1000)))
    counts = rng.multinomial(30, rng.dirichlet(np.ones(3), size=50))
    p_a, _ = simultaneous_bounds(counts, 1e-3)
    top = counts.argmax(1)
    c, t = counts[np.arange(50), top], counts.sum(1)
    assert np.array_equal(p_a, np.where(c > 0, beta.ppf(1e-3 / 6, np.maximum(c, 1), t - c + 1), 0.0))


def test_certification_modules_do_not_import_scipy_stats():
    """scipy.stats' import (about 1 s more than scipy.special here) would be paid by every certification job."""
    import subprocess
    import sys

    code = ("import sys, certsmooth.steps.certify, certsmooth.steps.certify_count, certsmooth.steps.merge_cohen; "
            "print('scipy.stats' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
