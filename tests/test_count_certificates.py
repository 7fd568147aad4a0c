"""Count certificates (DPA, Finite Aggregation, bagging) against exhaustive adversaries on
small vote tables, closed forms and direct evaluations; content-based partitioning."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binomtest

from certsmooth.certificates import bagging, dpa, fa
from certsmooth.errors import ConfigError
from certsmooth.subsets import rows

C = 3  # classes of the small tables


def _winner(votes: np.ndarray) -> int:
    return int(np.argmax(np.bincount(votes, minlength=C)))  # ties → lowest index, as the certificates


def _robustness(votes: np.ndarray, reach: list[set[int]], full: bool) -> int:
    """The exact robustness of the aggregate of ``votes`` (one per classifier) when one
    inserted or deleted training sample of hash h may change the classifiers reach[h]
    arbitrarily: the largest r such that no r samples change the prediction. ``full``:
    enumerate every new vote of every reached classifier; else set them all to one class
    (the worst case for each rival class; the two agree, see the test below)."""
    c = _winner(votes)
    for r in range(1, len(reach) + 1):
        for hashes in itertools.combinations(range(len(reach)), r):
            hit = sorted(set().union(*(reach[h] for h in hashes)))
            choices = itertools.product(range(C), repeat=len(hit)) if full else ([o] * len(hit) for o in range(C))
            for new in choices:
                v = votes.copy()
                v[hit] = new
                if _winner(v) != c:
                    return r - 1
    return len(reach)


def _dpa_reach(k):
    return [{h} for h in range(k)]


def _fa_reach(k, d, shifts):
    return [set(row.tolist()) for row in rows.fa_classifiers_of_hash(k, d, shifts)]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_dpa_equals_the_exhaustive_adversary_on_every_table(k):
    tables = np.array(list(itertools.product(range(C), repeat=k)), dtype=np.int64)
    pred, rho = dpa.certify(dpa.vote_counts(tables, C))
    for votes, p, r in zip(tables, pred, rho, strict=True):
        assert p == _winner(votes)
        assert r == _robustness(votes, _dpa_reach(k), full=True), votes


def test_one_class_per_reached_classifier_is_the_worst_case():
    rng = np.random.default_rng(0)
    shifts = np.array([0, 2])
    for _ in range(40):
        votes = rng.integers(0, C, size=6)
        reach = _fa_reach(3, 2, shifts)
        assert _robustness(votes, reach, full=True) == _robustness(votes, reach, full=False)


@pytest.mark.parametrize(("k", "d"), [(3, 2), (2, 3), (4, 2), (3, 3), (6, 2), (4, 3)])
def test_fa_never_above_the_exhaustive_adversary(k, d):
    rng = np.random.default_rng(k * 10 + d)
    n = k * d
    tables = rng.integers(0, C, size=(150, n))
    tables[:50] = np.where(rng.random((50, n)) < 0.7, 0, tables[:50])  # confident tables certify more
    tight = 0
    for seed in range(3):
        shifts = rows.fa_shifts(k, d, seed)
        pred, rho = fa.certify(tables, C, k, d, shifts)
        reach = _fa_reach(k, d, shifts)
        for votes, p, r in zip(tables, pred, rho, strict=True):
            true = _robustness(votes, reach, full=False)
            assert p == _winner(votes) and 0 <= r <= true, (votes.tolist(), shifts.tolist(), r, true)
            tight += r == true
    assert tight > 0.5 * 3 * len(tables)  # and mostly tight on these tables


def test_fa_with_one_shift_is_dpa():
    rng = np.random.default_rng(1)
    for k in (1, 5, 12, 40):
        tables = rng.integers(0, 4, size=(300, k))
        want = dpa.certify(dpa.vote_counts(tables, 4), labels=tables[:, 0])
        got = fa.certify(tables, 4, k, 1, np.array([0]), labels=tables[:, 0])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_dpa_tie_breaks_and_closed_form():
    counts = np.array([[5, 5, 0], [4, 5, 1], [0, 5, 5], [10, 0, 0], [4, 3, 3], [3, 3, 4], [1, 1, 8]])
    pred, rho = dpa.certify(counts, labels=[0, 1, 1, 0, 2, 2, 2])
    np.testing.assert_array_equal(pred, [0, 1, 1, 0, 0, 2, 2])
    # [5,5,0]: c = 0 wins the tie, gap 5−5−0 = 0 → 0; [4,5,1]: (5−4−1)//2 = 0; [0,5,5]: gap 0 → 0;
    # [10,0,0]: 10//2 = 5; [4,3,3]: predicted 0, label 2 → not certified; [3,3,4]: (4−3−1)//2 = 0;
    # [1,1,8]: (8−1−1)//2 = 3
    np.testing.assert_array_equal(rho, [0, 0, 0, 5, -1, 0, 3])


def test_greedy_prefix_matches_sorting():
    rng = np.random.default_rng(2)
    for _ in range(200):
        d = int(rng.integers(1, 5))
        values = rng.integers(0, 2 * d + 1, size=int(rng.integers(1, 30)))
        gap = int(rng.integers(0, 40))
        prefix = np.cumsum(np.sort(values)[::-1])
        want = int((prefix <= gap).sum())  # prefix sums only grow: the first r that fit
        hist = np.bincount(values, minlength=2 * d + 1)[None]
        assert fa.greedy_prefix(hist, np.array([gap]))[0] == want


def test_fa_does_not_depend_on_chunking():
    rng = np.random.default_rng(3)
    tables = rng.integers(0, 5, size=(101, 24))
    shifts = rows.fa_shifts(6, 4, 0)
    a = fa.certify(tables, 5, 6, 4, shifts)
    b = fa.certify(tables, 5, 6, 4, shifts, chunk_elems=24 * 4 * 7)
    np.testing.assert_array_equal(a[1], b[1])


# --------------------------------------------------------------------------- bagging


def test_simultaneous_bounds_are_clopper_pearson_at_alpha_over_c():
    """C ≥ 3: a two-sided exact interval at level α/C per class (α/(2C) per tail), so that all
    2C one-sided bounds hold together with probability ≥ 1 − α."""
    counts = np.array([[700, 200, 100], [340, 330, 330], [1000, 0, 0]])
    alpha = 0.01
    p_a, p_b = bagging.simultaneous_bounds(counts, alpha)
    for row, a, b in zip(counts, p_a, p_b, strict=True):
        ci = [binomtest(int(v), int(row.sum())).proportion_ci(1 - alpha / 3, method="exact") for v in row]
        top = int(np.argmax(row))
        assert a == pytest.approx(ci[top].low, abs=1e-12)
        want_b = max(ci[j].high for j in range(3) if j != top)
        assert b == pytest.approx(min(want_b, 1 - a), abs=1e-12)


def test_simultaneous_bounds_cover_with_probability_one_minus_alpha():
    """Statistical check: over 4,000 draws of N = 200 votes from known class probabilities,
    the event 'p_A,low ≤ p_A and p_B,up ≥ every other p' fails at most at rate α (+3 s.e.)."""
    rng = np.random.default_rng(4)
    p = np.array([0.6, 0.25, 0.15])
    alpha, trials = 0.05, 4000
    counts = rng.multinomial(200, p, size=trials)
    p_a, p_b = bagging.simultaneous_bounds(counts, alpha)
    top = np.argmax(counts, axis=1)
    other = np.array([np.max(np.delete(p, t)) for t in top])
    fail = (p_a > p[top]) | (p_b < np.minimum(other, 1 - p_a))
    assert fail.mean() <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / trials)


@pytest.mark.parametrize(("p_a", "p_b", "n", "k"), [(0.9, 0.1, 60000, 30), (0.99, 0.01, 60000, 100),
                                                     (0.7, 0.3, 1000, 50), (0.55, 0.45, 800, 10)])  # fmt: skip
def test_poisoning_size_is_the_last_r_that_satisfies_the_bound(p_a, p_b, n, k):
    r = bagging.poisoning_size(p_a, p_b, n, k, r_max=5000)
    assert 0 <= r < 5000
    assert all(bagging.bound(q, p_a, p_b, n, k) < 0 for q in range(r + 1))
    assert bagging.bound(r + 1, p_a, p_b, n, k) >= 0


def test_poisoning_size_closed_form_at_r0_and_not_certified():
    # r = 0: the expression is p_B,up − p_A,low
    assert bagging.bound(0, 0.6, 0.4, 1000, 10) == pytest.approx(-0.2)
    assert bagging.poisoning_size(0.4, 0.4, 1000, 10, 100) == -1
    assert bagging.poisoning_size(0.99, 0.01, 1000, 10, 3) == 3  # capped at r_max


def test_bagging_certify_marks_wrong_predictions():
    counts = np.array([[90, 10], [10, 90], [50, 50]])
    pred, r = bagging.certify(counts, alpha=0.001, n=1000, k=20, r_max=200, labels=[0, 0, 0])
    np.testing.assert_array_equal(pred, [0, 1, 0])
    assert r[0] > 0 and r[1] == -1 and r[2] == -1


# --------------------------------------------------------------------------- partitions


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 1, 4, 4), dtype=np.uint8), rng.integers(0, 3, size=n)


def test_dpa_hash_locality_and_order_independence():
    x, y = _images(300)
    parts = rows.dpa_partitions(x, y, 7)
    assert sorted(np.concatenate(parts).tolist()) == list(range(300))
    extra = np.full((1, 1, 4, 4), 9, dtype=np.uint8)  # hash 144 → partition 144 mod 7 = 4
    x2, y2 = np.concatenate([x, extra]), np.concatenate([y, [1]])
    parts2 = rows.dpa_partitions(x2, y2, 7)
    changed = [p for p in range(7) if not np.array_equal(x2[parts2[p]], x[parts[p]])]
    assert changed == [144 % 7]
    perm = np.random.default_rng(1).permutation(300)  # another order of the same data
    parts3 = rows.dpa_partitions(x[perm], y[perm], 7)
    for a, b in zip(parts, parts3, strict=True):
        np.testing.assert_array_equal(x[a], x[perm][b])
        np.testing.assert_array_equal(y[a], y[perm][b])


def test_fa_subsets_hold_every_sample_d_times():
    x, y = _images(200)
    shifts = rows.fa_shifts(5, 3, seed=0)
    assert len(set(shifts.tolist())) == 3 and shifts.max() < 15
    np.testing.assert_array_equal(shifts, rows.fa_shifts(5, 3, seed=0))
    subsets = rows.fa_subsets(x, y, 5, 3, shifts)
    assert len(subsets) == 15
    np.testing.assert_array_equal(np.bincount(np.concatenate(subsets), minlength=200), np.full(200, 3))
    h = rows.content_hash(x) % 15
    reach = rows.fa_classifiers_of_hash(5, 3, shifts)
    for i in (0, 17, 199):
        assert {b for b in range(15) if i in subsets[b]} == set(reach[h[i]].tolist())
    one = rows.fa_subsets(x, y, 7, 1, np.array([0]))
    for a, b in zip(one, rows.dpa_partitions(x, y, 7), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bagging_subsets_seeded_per_model():
    a = rows.bagging_subsets(500, 10, 30, seed=3)
    b = rows.bagging_subsets(500, 4, 30, seed=3)
    assert a.shape == (10, 30) and a.min() >= 0 and a.max() < 500
    np.testing.assert_array_equal(a[:4], b)  # model m's draw does not depend on N
    assert len(np.unique(a[0])) < 30 or True  # with replacement: duplicates allowed


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x, y: rows.dpa_partitions(x, y, 11), "dpa.k = 11: more partitions than the 10 training"),
        (lambda x, y: rows.dpa_partitions(x, y, 0), "dpa.k = 0"),
        (lambda x, y: rows.fa_shifts(4, 0, 0), "fa.d = 0: need d ≥ 1"),
        (lambda x, y: rows.fa_subsets(x, y, 4, 3, np.array([0, 1, 2])), "fa.k·d = 12: more subsets"),
        (lambda x, y: rows.fa_subsets(x, y, 2, 2, np.array([0, 0])), "need 2 distinct values"),
        (lambda x, y: rows.bagging_subsets(10, 0, 5, 0), "need k ≥ 1 and N ≥ 1"),
    ],
)
def test_bad_partition_settings_one_line(call, message):
    x, y = _images(10)
    with pytest.raises(ConfigError) as info:
        call(x, y)
    assert "\n" not in str(info.value) and message in str(info.value)


def test_parse_check_refuses_jobs_beyond_memory_with_one_line():
    from certsmooth.certifiers import count
    from certsmooth.models.inputs import model_numbers

    settings = {"k": 40, "d": 2, "models": 100, "lane_width": 20, "jobs": 1}
    numbers = model_numbers("mnist_cnn", 2)
    need, rows = count.job_memory(settings, 100, 100, numbers, 40)
    assert need == 4 * numbers * (100 + 4 * 20) + 24 * 100 * 40 and rows == 24 * 100 * 40
    count.check_sizes("bagging", settings, 100, 800, numbers, limit=need)  # exactly fits
    with pytest.raises(ConfigError, match=r"count.jobs = 1: a training job would hold 100 models .* raise "
                                          r"count.jobs"):  # fmt: skip
        count.check_sizes("bagging", settings, 100, 800, numbers, limit=need - 1)
    count.check_sizes("bagging", {**settings, "jobs": 5}, 100, 800, numbers, limit=need * 3 // 5)  # 20 a job
    huge = {**settings, "k": 10**9}  # N·k: 10¹¹ draws, the training set's size unknown (None)
    with pytest.raises(ConfigError, match=r"count.k = 1000000000: .*N·k = 100,000,000,000 draws.*lower count.k or "
                                          r"count.models"):  # fmt: skip
        count.check_sizes("bagging", huge, 100, None, numbers, limit=2**40)


def test_parameter_table_matches_built_models():
    from certsmooth.models import build_model
    from certsmooth.models.inputs import ARCH_SIZES, model_numbers

    for arch, shape in (("mnist_cnn", (1, 28, 28)), ("preact_resnet32", (3, 32, 32)), ("nin", (3, 32, 32)),
                        ("resnet18", (3, 32, 32))):  # fmt: skip
        for classes in (2, 10, 43):
            m = build_model(arch, shape, classes, seed=0)
            actual = sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers())
            assert abs(model_numbers(arch, classes) - actual) <= 0.01 * actual, (arch, classes)
    assert set(ARCH_SIZES) == set(__import__("certsmooth.models.archs", fromlist=["ARCHS"]).ARCHS)


def test_training_sizes_known_before_reading_match_the_data():
    from certsmooth.data.prepared import prepare
    from certsmooth.data.sources import TRAIN_CLASS_COUNTS, train_size

    for classes, split in (([1, 0], {"test_fraction": 0.2, "seed": 0}), ([3, 8, 5], {"test_fraction": 0.1, "seed": 2}),
                           ([1, 0], {"test_fraction": 0.5, "seed": 3})):  # fmt: skip
        assert len(prepare("mnist5k", classes, split, "unused")["train"].y) == train_size("mnist5k", classes, split)
    assert sum(TRAIN_CLASS_COUNTS["mnist"]) == 60_000 and train_size("mnist", [0, 1], "official") == 12_665
    assert train_size("cifar10", list(range(10)), "official") == 50_000 and train_size("gtsrb", [0], "official") is None
