"""Cohen et al.'s CERTIFY and PREDICT against closed forms and exact rates."""

import numpy as np
import pytest
import torch
from scipy.stats import binom, norm

from certsmooth.certificates.bounds import ABSTAIN, clopper_pearson
from certsmooth.certificates.cohen import CohenConfig, certify_point, predict_point, sample_counts
from certsmooth.certificates.cohen_merge import max_radius


class Halfspace(torch.nn.Module):
    """f(x) = 1 iff x₀ > 0 (one logit): P[f(x + ε) = 1] = Φ(x₀/σ) and the smoothed
    classifier's exact robust radius is |x₀| (the distance to the hyperplane)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)[:, :1]


class Constant(torch.nn.Module):
    def __init__(self, cls, classes=3):
        super().__init__()
        self.cls, self.classes = cls, classes

    def forward(self, x):
        out = torch.zeros(x.shape[0], self.classes)
        out[:, self.cls] = 1.0
        return out


def point(margin):
    x = torch.zeros(1, 2, 2)
    x[0, 0, 0] = margin
    return x


def test_constant_classifier_gets_the_maximal_radius_and_never_abstains():
    cfg = CohenConfig(sigma=0.5, n0=100, n=100_000, alpha=0.001, batch=20_000)
    c = certify_point(Constant(2), torch.zeros(1, 2, 2), 0, cfg, seed=0, num_classes=3)
    assert c.predict == 2 and c.n_a == 100_000
    assert c.p_a_low == pytest.approx(0.001 ** (1 / 100_000), rel=1e-12)
    assert c.radius == pytest.approx(max_radius(0.5, 100_000, 0.001), rel=1e-9)
    assert max_radius(1.0, 100_000, 0.001) == pytest.approx(3.81, abs=0.005)  # Cohen's R_max = 3.81σ
    assert predict_point(Constant(1), torch.zeros(1, 2, 2), 0, cfg, 0, 3) == 1


def test_counts_do_not_depend_on_the_batch_size():
    x = point(0.1)
    a = sample_counts(Halfspace(), x, 1000, 0.5, key=123, num_classes=2, batch=1000)
    b = sample_counts(Halfspace(), x, 1000, 0.5, key=123, num_classes=2, batch=7)
    assert np.array_equal(a, b) and a.sum() == 1000


def test_certified_radius_never_exceeds_the_true_radius_beyond_alpha():
    sigma, margin, runs = 0.5, 0.25, 300  # p_A = Φ(0.5) = 0.69, true radius 0.25
    cfg = CohenConfig(sigma=sigma, n0=100, n=1000, alpha=0.05, batch=1000)
    radii = np.array([certify_point(Halfspace(), point(margin), 0, cfg, seed=s, num_classes=2).radius
                      for s in range(runs)])  # fmt: skip
    too_big = int((radii > margin).sum())
    # each run fails with probability ≤ α; allow the binomial tail at 1e-4
    assert too_big <= binom.ppf(1 - 1e-4, runs, cfg.alpha)
    assert np.median(radii) > 0.5 * margin  # and the certificate is not vacuous


def test_abstain_rate_matches_the_exact_probability():
    sigma, margin, runs = 1.0, 0.05, 300  # p_A = Φ(0.05) = 0.52: mostly abstains
    cfg = CohenConfig(sigma=sigma, n0=100, n=1000, alpha=0.05, batch=1000)
    out = [certify_point(Halfspace(), point(margin), 0, cfg, seed=s, num_classes=2) for s in range(runs)]
    abstained = sum(c.predict == ABSTAIN for c in out)
    p1 = norm.cdf(margin / sigma)
    # selection: class 1 needs a strict majority of the 100 selection samples (ties → class 0)
    sel1 = binom.sf(50, 100, p1)
    k = np.arange(1001)
    low = clopper_pearson(k, 1000, 0.05)[0]
    abstain_if = {1: binom.pmf(k, 1000, p1)[low < 0.5].sum(), 0: binom.pmf(k, 1000, 1 - p1)[low < 0.5].sum()}
    expected = sel1 * abstain_if[1] + (1 - sel1) * abstain_if[0]
    assert 0.5 < expected < 1
    lo, hi = binom.ppf(1e-4, runs, expected), binom.ppf(1 - 1e-4, runs, expected)
    assert lo <= abstained <= hi, (abstained, expected * runs)


def test_predict_is_wrong_at_most_alpha_of_the_time_on_a_coin():
    cfg = CohenConfig(sigma=1.0, n=500, alpha=0.05, batch=500)
    answers = [predict_point(Halfspace(), point(0.0), 0, cfg, seed=s, num_classes=2) for s in range(300)]
    committed = sum(a != ABSTAIN for a in answers)  # the smoothed classifier is a tie: any answer is an error
    assert committed <= binom.ppf(1 - 1e-4, 300, 0.05)
    assert predict_point(Halfspace(), point(1.0), 0, cfg, seed=0, num_classes=2) == 1


def test_settings_are_checked():
    with pytest.raises(ValueError):
        CohenConfig(sigma=0.0)
    with pytest.raises(ValueError):
        CohenConfig(sigma=0.5, alpha=1.5)


def test_chunks_partition_the_points_and_merge_back():
    import pandas as pd

    from certsmooth.certificates.cohen import chunk_rows
    from certsmooth.certificates.cohen_merge import merge_chunks

    parts = [chunk_rows(103, 5, c, 4) for c in range(4)]
    assert np.array_equal(np.concatenate(parts), np.arange(0, 103, 5))
    frames = [
        pd.DataFrame({"set": s, "idx": p, "label": 0, "top": 0, "predict": np.where(p % 2, 0, -1), "n_a": 1,
                      "p_a_low": 0.6, "radius": 0.1, "predict_only": 0, "base_predict": 0})
        for p in parts for s in ("clean", "triggered")
    ]  # fmt: skip
    clean, trig = merge_chunks(frames[::-1], np.ones(103, bool), np.full(103, 0.5))
    assert clean["idx"].tolist() == list(range(0, 103, 5)) and clean["abstain"].sum() == (clean["idx"] % 2 == 0).sum()
    assert trig["nontarget"].all() and trig["certified_vs_attack"].isna().all()
    with pytest.raises(ValueError, match="overlap"):
        merge_chunks(frames + frames[:1], np.ones(103, bool), np.zeros(103))


def test_chunk_rows_class_filter():
    from certsmooth.certificates.cohen import chunk_rows

    labels = np.array([0, 1, 2, 1, 1, 0, 1, 2, 1])
    ones = np.flatnonzero(labels == 1)
    assert np.array_equal(chunk_rows(9, 1, 0, 1, labels, [1]), ones)
    assert np.array_equal(chunk_rows(9, 2, 0, 1, labels, [1]), ones[::2])
    both = np.concatenate([chunk_rows(9, 1, c, 2, labels, [1, 2]) for c in range(2)])
    assert np.array_equal(both, np.flatnonzero(labels > 0))
    assert np.array_equal(chunk_rows(9, 3, 0, 1), np.array([0, 3, 6]))
