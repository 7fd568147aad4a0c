"""The anisotropic (whitened) certificate and its reduction to the isotropic one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmooth.certificates.anisotropic import implied_l2_radius, whitened_norm, whitened_radius
from certsmooth.certificates.bounds import radius


@settings(max_examples=100, deadline=None)
@given(pa=st.floats(0.0, 1.0, exclude_max=True), pb=st.floats(0.0, 1.0, exclude_min=True), sigma=st.floats(0.01, 5.0))
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
    with pytest.raises(ValueError, match="finite and > 0"):
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


def test_released_code_radius_is_the_codes_formula():
    """The released Cert-SSB code's ``eval.py`` (Qiao et al., arXiv 2504.21730): h =
    √(ln(1/α)/2000) whatever M, R = σ_x·Φ⁻¹(p_A − h) for two classes; the resulting
    numbers: h = 0.05877 and, for a unanimous ensemble at σ = 0.12, 0.12·Φ⁻¹(1 − h) =
    0.188, the largest radius its README could reach with σ_x = σ."""
    from scipy.stats import norm

    from certsmooth.certificates.anisotropic import released_code_radius

    h = np.sqrt(np.log(1000) / 2000)
    assert h == pytest.approx(0.05877, abs=5e-6)
    p_a = np.array([1.0, 0.9, 0.7, 0.56, 0.5, 0.2])
    scores = np.stack([1 - p_a, p_a], 1)
    sigma_x = np.array([0.12, 0.29, 1.0, 1.5, 0.8, 0.5])
    top, r = released_code_radius(scores, sigma_x, 0.001)
    assert top.tolist() == [1, 1, 1, 1, 0, 0]
    top_p = np.maximum(p_a, 1 - p_a)
    np.testing.assert_allclose(r, sigma_x * norm.ppf(top_p - h), rtol=1e-12)
    assert r[0] == pytest.approx(0.188, abs=5e-4)
    assert r[3] > 0 > r[4]  # p_A − h above / below ½: the code's certified / not (R > r)
    top3, r3 = released_code_radius(np.array([[0.2, 0.5, 0.3]]), np.array([2.0]), 0.001)
    assert top3[0] == 1 and r3[0] == pytest.approx(norm.ppf(0.5 - h) - norm.ppf(0.3 + h), rel=1e-12)
