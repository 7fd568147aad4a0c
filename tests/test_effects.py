"""The per-family effects and their intervals (certsmooth.effects) on hand-built per-point results."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from certsmooth import effects as fx


def test_clopper_pearson_matches_its_closed_forms():
    n = 40
    for k in (0, 1, 7, 39, 40):
        lo, hi = fx.interval(k, n)
        assert lo == pytest.approx(0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1), abs=1e-9)
        assert hi == pytest.approx(1.0 if k == n else beta.ppf(0.975, k + 1, n - k), abs=1e-9)
    assert fx.interval(0, n)[1] == pytest.approx(1 - 0.025 ** (1 / n))  # k = 0: 1 − (α/2)^(1/n)
    assert all(math.isnan(v) for v in fx.interval(0, 0))


@pytest.mark.parametrize("k, n", [(-1, 5), (6, 5), (1.5, 5), (2, 4.5)])
def test_an_impossible_share_is_refused(k, n):
    with pytest.raises(ValueError, match="0 <= k <= n"):
        fx.interval(k, n)


@pytest.mark.parametrize("n, p0, up, down", [(60, 0.3, 0.25, 0.1), (20, 0.05, 0.1, 0.0), (200, 0.1, 0.02, 0.02)])
def test_a_paired_change_covers_the_true_difference_at_its_nominal_rate(n, p0, up, down):
    """Statistical check of Newcombe's interval: 2,000 draws of n paired points (a share p0 before;
    a point moves up or down with these probabilities); coverage ≥ 0.93 (nominal 0.95, an
    approximate interval; Monte Carlo error 0.005)."""
    rng = np.random.default_rng(0)
    truth = (1 - p0) * up - p0 * down
    covered = 0
    for _ in range(2000):
        before = rng.random(n) < p0
        after = np.where(before, ~(rng.random(n) < down), rng.random(n) < up)
        c = fx.change(before, after)
        covered += c.low <= truth <= c.high
    assert covered / 2000 >= 0.93


def test_a_change_is_clear_only_when_its_interval_excludes_zero():
    assert fx.Change(up=30, down=0, n=100).clear
    assert not fx.Change(up=2, down=1, n=100).clear
    assert fx.Change(up=0, down=30, n=100).clear and fx.Change(0, 30, 100).value == pytest.approx(-0.3)
    with pytest.raises(ValueError, match="pair the same points"):
        fx.change([True, False], [True])
    with pytest.raises(ValueError, match="sum ≤ n"):
        fx.Change(up=3, down=3, n=5)


def _frame(idx, label, top, radius, abstain=None, covered=None):
    f = pd.DataFrame({"idx": idx, "label": label, "top": top, "radius": np.asarray(radius, dtype=float)})
    f["abstain"] = False if abstain is None else abstain
    f["correct"] = (f["top"] == f["label"]) & ~f["abstain"]
    if covered is not None:
        f["certified_vs_attack"] = covered
    return f


def _run(clean, triggered, axis="l2", cmp="gt"):
    return fx.Run(clean, triggered, cmp, axis)


def test_backdoor_success_coverage_and_robustness_lost_on_the_same_points():
    idx = np.arange(10)
    labels = np.ones(10, dtype=int)  # the non-target points (target 0)
    base = _run(_frame(idx, labels, labels, [0.5] * 10), _frame(idx, labels, labels, [0.5] * 10))
    top = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])  # the trigger flips three points to the target
    covered = np.array([False] * 3 + [True] * 5 + [False] * 2)
    poisoned = _run(_frame(idx, labels, labels, [0.5] * 10), _frame(idx[::-1], labels, top[::-1], [0.5] * 10,
                                                                       covered=covered[::-1]))  # fmt: skip
    c = fx.cell("backdoor", poisoned, base, target=0)
    assert (c.attack_success.k, c.attack_success.n) == (3, 10)
    assert (c.certified_vs_attack.k, c.lost.k) == (5, 5)  # certified clean on the baseline, not covered under attack
    assert c.colour == pytest.approx(0.5)


def test_a_test_time_certificate_and_the_undefended_model_have_no_poisoning_bound():
    idx, labels = np.arange(4), np.ones(4, dtype=int)
    trig = _frame(idx, labels, np.array([0, 1, 1, 1]), [1.0] * 4)
    trig["certified_vs_attack"] = np.nan  # Cohen et al.: no bound on training poisoning
    cohen = _run(_frame(idx, labels, labels, [1.0] * 4), trig, cmp="ge")
    c = fx.cell("backdoor", cohen, None, target=0)
    assert c.certified_vs_attack is None and c.lost.k == 1  # the flipped point lost its certified prediction
    und = _run(_frame(idx, labels, labels, [0] * 4), _frame(idx, labels, np.array([0, 0, 1, 1]), [0] * 4,
                                                             covered=False), axis="none", cmp="ge")  # fmt: skip
    u = fx.cell("backdoor", und, None, target=0)
    assert u.certified_vs_attack is None and u.lost.k == 2 and u.attack_success.k == 2


def test_availability_rise_is_net_of_the_trigger_only_control():
    idx, labels = np.arange(20), np.repeat([0, 1], 10)
    control_ab = np.zeros(20, dtype=bool)
    control_ab[:2] = True  # the trigger alone: 2 unavailable
    attacked_ab = np.zeros(20, dtype=bool)
    attacked_ab[:8] = True  # with the poisons: 8
    clean = _frame(idx, labels, labels, [0.3] * 20)
    base = _run(clean, _frame(idx, labels, labels, [0.3] * 20, abstain=control_ab))
    poisoned = _run(clean, _frame(idx, labels, labels, [0.3] * 20, abstain=attacked_ab))
    c = fx.cell("availability", poisoned, base, None)
    assert (c.unavailable.k, c.unavailable_control.k) == (8, 2)
    assert (c.unavailable_rise.up, c.unavailable_rise.down) == (6, 0) and c.unavailable_rise.value == pytest.approx(0.3)
    assert c.unavailable_rise.clear and c.lost.k == 6
    alone = fx.cell("availability", poisoned, None, None)  # no control: the clean copies on the poisoned model
    assert alone.unavailable_rise.value == pytest.approx(0.4)


def test_bilevel_compares_the_target_class_on_the_poisoned_and_the_baseline_model():
    idx, labels = np.arange(8), np.repeat([0, 1], 4)
    base = _run(_frame(idx, labels, labels, [1.0] * 8), _frame(idx[:0], labels[:0], labels[:0], []))
    radius = np.array([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 0.0])  # class 1 loses radius; two points their certificate
    poisoned = _run(_frame(idx, labels, labels, radius), _frame(idx[:0], labels[:0], labels[:0], []))
    c = fx.cell("bilevel", poisoned, base, target=1)
    assert c.points == 4 and c.target_acr_drop == pytest.approx(0.75)
    assert c.target_certified_drop.value == pytest.approx(0.5)  # 2 of 4 no longer certified at r = 0 (R > 0)
    assert c.colour == pytest.approx(0.75)
    with pytest.raises(ValueError, match="baseline"):
        fx.cell("bilevel", poisoned, None, target=1)


def test_points_without_a_result_to_pair_with_are_refused():
    a = _frame(np.arange(3), [1, 1, 1], [1, 1, 1], [1, 1, 1])
    b = _frame(np.array([0, 1, 7]), [1, 1, 1], [1, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="1 of 3 test points have no result"):
        fx.align(a, b)
