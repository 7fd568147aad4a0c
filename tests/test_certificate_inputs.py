"""Every certificate function refuses input that no sample, model or attack can produce
(α outside (0, 1), negative or fractional counts, rows with unequal totals, votes outside
the classes, probabilities or bounds outside [0, 1], a bound of exactly 1 or 0 on a
certified point, non-finite or non-positive σ) with one ValueError line that names the
argument: random invalid inputs (hypothesis) and the cases an audit found, which used to
return a certificate (bagging r* = 17 at α = 1, DPA ρ = 3 from a negative count, an
infinite radius, inflated radii from unequal vote totals)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmooth.certificates import anisotropic, bagging, bounds, cohen_merge, dpa, fa, memory
from certsmooth.certificates.checks import CertificateInputError

BAD_ALPHA = st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), st.just(math.nan))
BAD_SIGMA = st.one_of(st.floats(max_value=0.0), st.just(math.inf), st.just(-math.inf), st.just(math.nan))
BAD_PROB = st.one_of(st.floats(max_value=-1e-12, allow_infinity=True), st.floats(min_value=1 + 1e-12),
                     st.just(math.nan))  # fmt: skip
VOTES = np.array([[7, 3], [4, 6], [10, 0]])  # 10 models, 3 points
SCORES = np.array([[0.7, 0.3], [0.45, 0.55]])
SETTINGS = settings(max_examples=40, deadline=None)


def _refused(call, *words: str) -> str:
    """The one-line refusal of ``call``, which must name every one of ``words``."""
    with pytest.raises(CertificateInputError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    return msg


# -- α ----------------------------------------------------------------------------------------------------------

ALPHA_CALLS = {
    "clopper_pearson": lambda a: bounds.clopper_pearson(np.array([3]), 10, a),
    "hoeffding_halfwidth": lambda a: bounds.hoeffding_halfwidth(10, a),
    "per_side_alpha": lambda a: bounds.per_side_alpha(a, 3),
    "certify_from_votes": lambda a: bounds.certify_from_votes(VOTES, a, 1.0),
    "certify_from_scores": lambda a: bounds.certify_from_scores(SCORES, 50, a, 1.0),
    "max_whitened_radius": lambda a: bounds.max_whitened_radius("votes", a, 2, 20),
    "bagging.class_bounds": lambda a: bagging.class_bounds(VOTES, a),
    "bagging.simultaneous_bounds": lambda a: bagging.simultaneous_bounds(VOTES, a),
    "bagging.certify": lambda a: bagging.certify(VOTES, a, 1000, 20, 50),
    "cohen max_radius": lambda a: cohen_merge.max_radius(0.5, 1000, a),
    "released_code_radius": lambda a: anisotropic.released_code_radius(SCORES, np.ones(2), a),
}


@pytest.mark.parametrize("name", ALPHA_CALLS)
@SETTINGS
@given(alpha=BAD_ALPHA)
def test_alpha_outside_the_unit_interval(name, alpha):
    assert _refused(lambda: ALPHA_CALLS[name](alpha), "alpha", "(0, 1)")


# -- vote counts ------------------------------------------------------------------------------------------------

COUNT_CALLS = {
    "certify_from_votes": lambda c: bounds.certify_from_votes(c, 0.01, 1.0),
    "dpa.certify": lambda c: dpa.certify(c),
    "bagging.simultaneous_bounds": lambda c: bagging.simultaneous_bounds(c, 0.01),
    "bagging.certify": lambda c: bagging.certify(c, 0.01, 1000, 20, 50),
}


@pytest.mark.parametrize("name", COUNT_CALLS)
@SETTINGS
@given(data=st.data())
def test_negative_fractional_or_unequal_counts(name, data):
    kind = data.draw(st.sampled_from(["negative", "fractional", "unequal", "no vote"]))
    rows = data.draw(st.integers(2, 6))
    classes = data.draw(st.integers(2, 5))
    total = data.draw(st.integers(2, 40))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    counts = rng.multinomial(total, np.full(classes, 1 / classes), size=rows)
    i, j = data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, classes - 1))
    if kind == "negative":
        counts[i, j] = -data.draw(st.integers(1, 100))
        words = ("must be ≥ 0",)
    elif kind == "fractional":
        counts = counts.astype(float)
        counts[i, j] += data.draw(st.floats(0.01, 0.99))
        words = ("must be integers",)
    elif kind == "unequal":
        counts[i, j] += data.draw(st.integers(1, 50))
        words = ("votes but row", "same total")
    else:
        counts[i] = 0
        words = ("no vote",)
    assert _refused(lambda: COUNT_CALLS[name](counts), "counts", *words)


@SETTINGS
@given(vote=st.one_of(st.integers(-(2**62), -1), st.integers(3, 2**62)))
def test_votes_outside_the_classes(vote):
    preds = np.array([[0, 1, 2, 1], [2, 2, 1, 0]])
    preds[1, 2] = vote
    assert _refused(lambda: dpa.vote_counts(preds, 3), "predictions", "0..2")
    shifts = np.array([0, 1])  # k = 2, d = 2: 4 classifiers
    assert _refused(lambda: fa.certify(preds, 3, 2, 2, shifts), "predictions", "0..2")


def test_fa_refuses_shifts_that_are_not_d_distinct_subsets():
    preds = np.zeros((2, 6), dtype=np.int64)
    for shifts in ([0, 0], [0, 6], [-1, 2], [0, 1, 2]):
        assert _refused(lambda s=shifts: fa.certify(preds, 2, 3, 2, np.array(s)), "shifts", "distinct")


# -- probabilities, bounds and scores -----------------------------------------------------------------------------


@SETTINGS
@given(bad=BAD_PROB, good=st.floats(0.0, 1.0), first=st.booleans())
def test_bounds_outside_zero_one(bad, good, first):
    pa, pb = (bad, good) if first else (good, bad)
    name = "p_a_low" if first else "p_b_up"
    assert _refused(lambda: bounds.whitened_radius(pa, pb), name, "[0, 1]")
    assert _refused(lambda: bounds.radius(pa, pb, 1.0), name, "[0, 1]")
    assert _refused(lambda: bagging.bound(3, pa, pb, 1000, 10), name, "[0, 1]")
    assert _refused(lambda: bagging.poisoning_size(pa, pb, 1000, 10, 20), name, "[0, 1]")


@SETTINGS
@given(p=st.floats(0.0, 1.0, exclude_max=True))
def test_a_bound_of_exactly_one_or_zero_never_certifies(p):
    assert _refused(lambda: bounds.whitened_radius(1.0, p), "infinite radius")
    if p > 0:
        assert _refused(lambda: bounds.radius(p, 0.0, 0.5), "infinite radius")
    assert bounds.whitened_radius(p, 1.0) == 0.0  # abstaining is always fine


@SETTINGS
@given(bad=BAD_PROB, i=st.integers(0, 1), j=st.integers(0, 1))
def test_scores_outside_zero_one(bad, i, j):
    scores = SCORES.copy()
    scores[i, j] = bad
    assert _refused(lambda: bounds.certify_from_scores(scores, 50, 0.01, 1.0), "mean_scores", "[0, 1]")
    assert _refused(lambda: anisotropic.released_code_radius(scores, np.ones(2), 0.01), "mean_scores", "[0, 1]")


def test_scores_that_are_not_probability_vectors():
    assert _refused(lambda: bounds.certify_from_scores(np.array([[0.9, 0.9]]), 50, 0.01, 1.0), "sums to 1.8")


# -- σ, sizes ---------------------------------------------------------------------------------------------------

SIGMA_CALLS = {
    "radius": lambda s: bounds.radius(0.8, 0.2, s),
    "certify_from_votes": lambda s: bounds.certify_from_votes(VOTES, 0.1, s),
    "certify_from_scores": lambda s: bounds.certify_from_scores(SCORES, 50, 0.1, s),
    "cohen max_radius": lambda s: cohen_merge.max_radius(s, 1000, 0.001),
    "implied_l2_radius": lambda s: anisotropic.implied_l2_radius(1.0, s),
    "whitened_norm": lambda s: anisotropic.whitened_norm([0.1, 0.2], [0.5, s]),
    "released_code_radius": lambda s: anisotropic.released_code_radius(SCORES, np.array([0.5, s]), 0.01),
}


@pytest.mark.parametrize("name", SIGMA_CALLS)
@SETTINGS
@given(sigma=BAD_SIGMA)
def test_sigma_not_finite_and_positive(name, sigma):
    assert _refused(lambda: SIGMA_CALLS[name](sigma), "finite and > 0")


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda: bounds.clopper_pearson(np.array([11]), 10, 0.01), ("k = [11]", "0..n = 0..10")),
        (lambda: bounds.clopper_pearson(np.array([-1]), 10, 0.01), ("k = [-1]",)),
        (lambda: bounds.clopper_pearson(np.array([2.5]), 10, 0.01), ("integers",)),
        (lambda: bounds.clopper_pearson(np.array([0]), 0, 0.01), ("n = 0",)),
        (lambda: bounds.hoeffding_halfwidth(0, 0.01), ("n = 0",)),
        (lambda: bounds.per_side_alpha(0.01, 1), ("num_classes = 1", "at least 2")),
        (lambda: bounds.certify_from_scores(SCORES, 0, 0.01, 1.0), ("n = 0",)),
        (lambda: bounds.max_whitened_radius("soft", 0.01, 2, 0), ("models = 0",)),
        (lambda: bagging.poisoning_size(0.9, 0.1, 0, 10, 5), ("n = 0",)),
        (lambda: bagging.poisoning_size(0.9, 0.1, 100, 0, 5), ("k = 0",)),
        (lambda: bagging.poisoning_size(0.9, 0.1, 100, 10, -1), ("r_max = -1",)),
        (lambda: bagging.poisoning_size(0.9, 0.1, 100.5, 10, 5), ("n = 100.5", "integer")),
        (lambda: bagging.bound(-2, 0.9, 0.1, 100, 10), ("r = -2",)),
        (lambda: bagging.certify(VOTES, 0.01, 1000, 20, 50, labels=[0, 1, 5]), ("labels", "0..1")),
        (lambda: dpa.certify(VOTES, labels=[0, -1, 1]), ("labels", "0..1")),
        (lambda: dpa.vote_counts(np.array([[0, 1]]), 1), ("num_classes = 1",)),
        (lambda: fa.greedy_prefix(np.array([[1, 2]]), np.array([-1])), ("gap",)),
        (lambda: anisotropic.whitened_norm([-0.1], [1.0]), ("train_norms", "≥ 0")),
        (lambda: anisotropic.whitened_norm([0.1, 0.2], [1.0]), ("one scale per perturbation",)),
        (lambda: anisotropic.implied_l2_radius(math.inf, 1.0), ("r_tilde",)),
        (lambda: memory.storage_update(np.zeros((2, 3)), np.array([0, 1]), np.array([0.5, math.inf])), ("radii",)),
        (lambda: memory.storage_update(np.zeros((2, 3)), np.array([0, 1]), np.array([0.5, math.nan])), ("radii",)),
        (lambda: memory.storage_update(np.full((2, 3), math.nan), np.array([0, 1]), np.ones(2)), ("finite",)),
        (lambda: memory.storage_update(np.zeros((2, 3)), np.array([0, -2]), np.ones(2)), ("labels",)),
    ],
)  # fmt: skip
def test_impossible_sizes_and_values(call, words):
    assert _refused(call, *words)


# -- the audit's cases, which used to return a certificate ---------------------------------------------------------


def test_the_audits_cases_are_refused():
    counts = np.array([[80, 20], [75, 25]])
    for alpha in (1.0, 1.5):  # used to give r* = 17 and 18
        assert _refused(lambda a=alpha: bagging.certify(counts, a, 1000, 20, 100), "alpha")
    assert _refused(lambda: bagging.poisoning_size(1.2, -0.1, 1000, 20, 100), "p_a_low")  # used to give 22
    assert _refused(lambda: dpa.certify(np.array([[-3, 5]])), "counts", "≥ 0")  # used to give 3
    assert _refused(lambda: dpa.vote_counts(np.array([[0, 1, -1]]), 3), "predictions")  # counted as the last class
    assert _refused(lambda: bounds.certify_from_votes(np.array([[10, 0], [30, 0]]), 0.1, 1.0), "same total")  # inflated
    assert _refused(lambda: bounds.radius(1.0, 0.0, 1.0), "infinite radius")
    assert _refused(lambda: bounds.certify_from_votes(counts, 0.1, math.inf), "finite and > 0")
    assert _refused(lambda: bounds.certify_from_scores(np.array([[1.3, -0.3]]), 100, 0.1, 1.0), "[0, 1]")


def test_valid_input_still_certifies():
    """The checks refuse nothing a run produces: the same numbers as before on valid input."""
    c = bounds.certify_from_votes(VOTES * 10, 0.1, 0.5)
    assert c.predict.tolist() == [0, 1, 0] and c.radius[2] > c.radius[0] > c.radius[1] > 0
    assert bagging.certify(VOTES, 0.01, 1000, 5, 50)[1].tolist()[2] > 0
    assert dpa.certify(VOTES)[1].tolist() == [2, 0, 5]
    empty = bounds.certify_from_votes(np.zeros((0, 3), dtype=np.int64), 0.1, 1.0)
    assert empty.radius.shape == (0,)
