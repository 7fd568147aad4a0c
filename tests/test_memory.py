"""Storage-update certification: invariants under any input and order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmooth.certificates.memory import ALIGNED, KEPT, PASSED, TRIMMED, storage_update


@st.composite
def cases(draw):
    t = draw(st.integers(1, 25))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(t, d))
    labels = rng.integers(-1, 3, size=t)
    radii = np.where(labels >= 0, rng.uniform(0, 2, size=t), 0.0)
    order = rng.permutation(t)
    return x, labels, radii, order


@settings(max_examples=300, deadline=None)
@given(cases())
def test_invariants(case):
    x, labels, radii, order = case
    res = storage_update(x, labels, radii, order)
    # radii never grow; abstained points pass through unchanged and are not stored
    assert np.all(res.radius <= radii + 1e-12)
    ab = (labels < 0) | (radii <= 0)
    assert np.all(res.action[ab] == PASSED) and not res.stored[ab].any()
    np.testing.assert_array_equal(res.label[ab], labels[ab])
    # stored regions with different labels never overlap
    idx = np.flatnonzero(res.stored)
    for a in idx:
        for b in idx:
            if res.label[a] != res.label[b]:
                assert np.linalg.norm(x[a] - x[b]) >= res.radius[a] + res.radius[b] - 1e-9
    # the same order gives the same result; the order is part of the result
    again = storage_update(x, labels, radii, order)
    np.testing.assert_array_equal(again.radius, res.radius)
    np.testing.assert_array_equal(again.label, res.label)
    assert again.order_sha256 == res.order_sha256
    assert np.array_equal(np.argsort(res.position), order)
    if len(order) > 1:
        assert storage_update(x, labels, radii, order[::-1]).order_sha256 != res.order_sha256


def test_hand_worked_cases():
    x = np.array([[0.0], [3.0], [1.5], [0.5], [10.0]])
    labels = np.array([0, 1, 1, 1, 1])
    radii = np.array([1.0, 1.0, 2.0, 0.3, 1.0])
    res = storage_update(x, labels, radii)
    # point 1: 3 ≥ 1 + 1, no overlap with point 0 → kept
    # point 2: conflicts with point 0 (1.5 < 1 + 2) → trimmed to 1.5 − 1 = 0.5
    # point 3: inside point 0's ball (0.5 < 1) → aligned to label 0, radius min(0.3, 0.5)
    # point 4: far away → kept
    assert res.action.tolist() == [KEPT, KEPT, TRIMMED, ALIGNED, KEPT]
    np.testing.assert_allclose(res.radius, [1.0, 1.0, 0.5, 0.3, 1.0])
    assert res.label.tolist() == [0, 1, 1, 0, 1]


def test_same_labels_or_disjoint_regions_change_nothing():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    res = storage_update(x, np.zeros(30, int), np.full(30, 5.0))
    np.testing.assert_array_equal(res.radius, 5.0)
    x = np.arange(10.0)[:, None] * 10
    res = storage_update(x, np.arange(10) % 2, np.full(10, 1.0))
    assert set(res.action) == {KEPT}


def test_order_must_be_a_permutation():
    with pytest.raises(ValueError, match="permutation"):
        storage_update(np.zeros((3, 1)), np.zeros(3, int), np.ones(3), np.array([0, 0, 1]))
