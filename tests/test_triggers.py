"""Triggers match RAB's definitions exactly (positions, scaling, clipping, pattern)."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from certsmooth.attacks.triggers import (
    FOURPIXEL_POSITIONS,
    ONEPIXEL_POSITIONS,
    make_trigger,
)
from certsmooth.errors import ConfigError


def zeros(shape, n=2):
    return np.zeros((n, *shape), dtype=np.float32)


def changed(before, after):
    return sorted(zip(*np.nonzero(after[0] != before[0]), strict=True))


def test_onepixel_mnist_position_and_norm():
    x = zeros((1, 28, 28))
    out = make_trigger({"name": "onepixel", "delta": 0.7}).apply(x)
    assert changed(x, out) == [(0, 23, 23)]
    assert out[0, 0, 23, 23] == np.float32(0.7)
    assert np.linalg.norm(out[1] - x[1]) == pytest.approx(0.7, rel=1e-6)


def test_onepixel_cifar_all_channels_scaled():
    x = zeros((3, 32, 32))
    out = make_trigger({"name": "onepixel", "delta": 1.0}).apply(x)
    assert changed(x, out) == [(0, 15, 15), (1, 15, 15), (2, 15, 15)]
    np.testing.assert_allclose(out[0, :, 15, 15], 1 / math.sqrt(3), rtol=1e-6)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, rel=1e-6)


def test_onepixel_imagenet_position():
    x = zeros((3, 224, 224), n=1)
    out = make_trigger({"name": "onepixel", "delta": 0.5}).apply(x)
    assert changed(x, out) == [(c, 112, 112) for c in range(3)]


@pytest.mark.parametrize(
    "shape,amount",
    [((1, 28, 28), 0.5), ((3, 32, 32), 1 / math.sqrt(12)), ((3, 224, 224), 1 / math.sqrt(12))],
)
def test_fourpixel_positions_and_scaling(shape, amount):
    x = zeros(shape, n=1)
    out = make_trigger({"name": "fourpixel", "delta": 1.0}).apply(x)
    expected = sorted((c, r, col) for r, col in FOURPIXEL_POSITIONS[shape[1:]] for c in range(shape[0]))
    assert changed(x, out) == expected
    for c, r, col in expected:
        assert out[0, c, r, col] == pytest.approx(amount, rel=1e-6)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, rel=1e-6)


def test_rab_mnist_positions_literal():
    # The literal positions of RAB's attack_lib.py (row, col).
    assert ONEPIXEL_POSITIONS[(28, 28)] == [(23, 23)]
    assert FOURPIXEL_POSITIONS[(28, 28)] == [(18, 20), (19, 19), (20, 18), (20, 20)]
    assert FOURPIXEL_POSITIONS[(32, 32)] == [(14, 16), (15, 15), (16, 14), (16, 16)]
    assert FOURPIXEL_POSITIONS[(224, 224)] == [(112, 112), (111, 113), (113, 111), (113, 113)]


def test_pixel_trigger_clips_at_one():
    x = zeros((1, 28, 28), n=1)
    x[0, 0, 23, 23] = 0.8
    out = make_trigger({"name": "onepixel", "delta": 1.0}).apply(x)
    assert out[0, 0, 23, 23] == np.float32(1.0)
    assert np.linalg.norm(out - x) == pytest.approx(0.2, abs=1e-6)  # effective norm < δ


def test_fourpixel_partial_clipping():
    x = zeros((1, 28, 28), n=1)
    x[0, 0, 19, 19] = 1.0  # already saturated: this pixel contributes nothing
    out = make_trigger({"name": "fourpixel", "delta": 1.0}).apply(x)
    assert out[0, 0, 19, 19] == 1.0
    assert np.linalg.norm(out - x) == pytest.approx(math.sqrt(3) / 2, rel=1e-6)


def test_blending_is_rab_pattern_with_norm_delta_and_not_clipped():
    x = np.full((3, 1, 28, 28), 0.99, dtype=np.float32)
    trig = make_trigger({"name": "blending", "delta": 2.0, "pattern_seed": 0})
    out = trig.apply(x)
    ref = np.random.RandomState(0).randn(1, 28, 28)  # RAB: np.random.seed(0); np.random.randn
    ref = ref / np.linalg.norm(ref) * 2.0
    np.testing.assert_allclose(out[0] - x[0], ref, atol=1e-6)
    assert np.linalg.norm((out - x)[1]) == pytest.approx(2.0, rel=1e-5)
    assert out.max() > 1.0 and out.min() < 1.0  # no clipping to [0, 1]
    np.testing.assert_array_equal(out[0], out[2])  # the same pattern for every image


def test_blending_seed_changes_pattern():
    x = zeros((1, 28, 28), n=1)
    a = make_trigger({"name": "blending", "delta": 1.0, "pattern_seed": 0}).apply(x)
    b = make_trigger({"name": "blending", "delta": 1.0, "pattern_seed": 1}).apply(x)
    assert not np.allclose(a, b)


def test_badnets_default_bottom_right_solid():
    x = zeros((3, 32, 32), n=1)
    out = make_trigger({"name": "badnets", "size": 4}).apply(x)
    assert np.all(out[0, :, 28:, 28:] == 1.0)
    assert out.sum() == 3 * 16


def test_badnets_checkerboard_at_position():
    x = np.full((1, 1, 28, 28), 0.5, dtype=np.float32)
    out = make_trigger({"name": "badnets", "size": 3, "position": [2, 5], "style": "checkerboard"}).apply(x)
    patch = out[0, 0, 2:5, 5:8]
    np.testing.assert_array_equal(patch, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    assert np.all(np.delete(out[0, 0].ravel(), [r * 28 + c for r in range(2, 5) for c in range(5, 8)]) == 0.5)


def test_badnets_out_of_bounds_is_config_error():
    with pytest.raises(ConfigError, match="does not fit"):
        make_trigger({"name": "badnets", "size": 5, "position": [25, 0]}).apply(zeros((1, 28, 28)))


def test_blend_formula():
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    out = make_trigger({"name": "blend", "alpha": 0.25, "pattern_seed": 7}).apply(x)
    key = np.random.RandomState(7).uniform(0, 1, (3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(out, 0.75 * x + 0.25 * key, atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    "spec", [{"name": "onepixel"}, {"name": "fourpixel"}, {"name": "blending"}, {"name": "badnets"}, {"name": "blend"}]
)
def test_apply_does_not_modify_input(spec):
    x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
    before = x.copy()
    make_trigger(spec).apply(x)
    np.testing.assert_array_equal(x, before)


def test_unknown_trigger_and_shape():
    with pytest.raises(ConfigError, match="unknown trigger"):
        make_trigger({"name": "wanet"})
    with pytest.raises(ConfigError, match="no default positions for 64×64"):
        make_trigger({"name": "onepixel"}).apply(zeros((3, 64, 64)))
    with pytest.raises(ConfigError, match="outside"):
        make_trigger({"name": "onepixel", "positions": [[28, 0]]}).apply(zeros((1, 28, 28)))


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(np.float32, (3, 1, 28, 28), elements=st.floats(0, 1, width=32)),
    delta=st.floats(0.01, 5.0),
    name=st.sampled_from(["onepixel", "fourpixel"]),
)
def test_pixel_trigger_norm_property(x, delta, name):
    """Effective norm ≤ δ; = δ exactly when no affected entry saturates; output ≤ 1 there."""
    trig = make_trigger({"name": name, "delta": delta})
    out = trig.apply(x)
    pix = trig.pixels(x.shape[1:])
    a = np.float32(delta / math.sqrt(len(pix)))
    for i in range(len(x)):
        norm = float(np.linalg.norm(out[i].astype(np.float64) - x[i]))
        assert norm <= delta * (1 + 1e-5)
        vals = np.array([x[i, 0, r, c] for r, c in pix])
        if np.all(vals + a <= 1):
            assert norm == pytest.approx(delta, rel=1e-5, abs=1e-6)
        for r, c in pix:
            assert out[i, 0, r, c] <= 1.0


def test_corners_patches_in_the_corners_in_order():
    x = np.full((3, 1, 28, 28), 0.2, dtype=np.float32)
    t = make_trigger({"name": "corners", "size": 3, "count": 4, "value": 0.6})
    out = t.apply(x)
    assert np.array_equal(x, np.full_like(x, 0.2))  # input untouched
    changed = out[0, 0] != np.float32(0.2)
    expect = np.zeros((28, 28), dtype=bool)
    for r, c in ((25, 25), (25, 0), (0, 25), (0, 0)):
        expect[r : r + 3, c : c + 3] = True
    assert np.array_equal(changed, expect) and np.all(out[:, :, expect] == np.float32(0.6))
    v = t.with_values(x, [0.1, 0.2, 0.3, 0.4])
    assert v[0, 0, 27, 27] == np.float32(0.1) and v[0, 0, 27, 0] == np.float32(0.2)
    assert v[0, 0, 0, 27] == np.float32(0.3) and v[0, 0, 0, 0] == np.float32(0.4)
    assert t.masks((1, 28, 28)).shape == (4, 1, 28, 28) and t.masks((1, 28, 28)).sum() == 36


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"size": 15}, "overlap in 28×28 images; choose a size of at most 14"),
        ({"count": 5}, "count = 5: must be 2, 3 or 4"),
        ({"value": 1.5}, "value = 1.5: must be in"),
    ],
)
def test_corners_bad_settings(spec, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        make_trigger({"name": "corners", **spec}).apply(np.zeros((1, 1, 28, 28), dtype=np.float32))
