"""The anisotropic (whitened) certificate and its reduction to the isotropic one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmooth.certify.anisotropic import implied_l2_radius, whitened_norm, whitened_radius
from certsmooth.certify.bounds import radius


@settings(max_examples=100, deadline=None)
@given(pa=st.floats(0.0, 1.0), pb=st.floats(0.0, 1.0), sigma=st.floats(0.01, 5.0))
def test_reduces_to_isotropic_when_all_sigmas_are_equal(pa, pb, sigma):
    r_iso = radius(pa, pb, sigma)
    r_tilde = whitened_radius(pa, pb)
    assert implied_l2_radius(r_tilde, sigma) == pytest.approx(r_iso, rel=1e-9, abs=1e-12)
    # an attack of stacked norm ρ at equal scales is inside iff ρ < R
    norms = np.array([0.3, 0.4])
    inside = whitened_norm(norms, np.full(2, sigma)) < r_tilde
    assert inside == (np.sqrt((norms**2).sum()) < r_iso)


def test_whitened_norm_and_implied_radius():
    assert whitened_norm([1.0, 2.0], [0.5, 1.0]) == pytest.approx(np.sqrt(4 + 4))
    assert whitened_norm([1.0], [0.5], test_norm=0.3, test_sigma=0.1) == pytest.approx(np.sqrt(4 + 9))
    with pytest.raises(ValueError, match="positive"):
        whitened_norm([1.0], [0.0])
    with pytest.raises(ValueError, match="noise scale"):
        whitened_norm([1.0], [1.0], test_norm=0.5)
    # the implied ℓ2 radius is sound: any δ with ‖δ‖ < σ_min·R̃ has whitened norm < R̃
    rng = np.random.default_rng(0)
    sigmas = rng.uniform(0.2, 1.5, size=50)
    r_tilde = 1.3
    for _ in range(200):
        delta = rng.normal(size=50)
        delta *= 0.999 * implied_l2_radius(r_tilde, sigmas.min()) / np.linalg.norm(delta)
        assert whitened_norm(np.abs(delta), sigmas) < r_tilde
    assert whitened_radius(0.4, 0.6) == 0.0
