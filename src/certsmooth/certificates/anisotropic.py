"""Certificates for sample-specific (anisotropic) Gaussian smoothing (Cert-SSB).

With training noise N(0, σᵢ²I) on training example i and N(0, σ_x²I) on the test input,
the smoothing distribution is an anisotropic Gaussian with covariance Σ = diag(σ²). In
the whitened space u = Σ^{-1/2}·(features) it is isotropic with unit variance, so the
Gaussian certificate holds there with radius

    R̃ = ½·(Φ⁻¹(p_A,low) − Φ⁻¹(p_B,up))

for the whitened perturbation ‖Σ^{-1/2} δ‖₂ = √(Σᵢ ‖δᵢ‖²/σᵢ² [+ ‖δ_x‖²/σ_x²]). Hence

* a deployed attack is inside the certified set iff that whitened norm is < R̃;
* any perturbation with plain ℓ2 norm < σ_min·R̃ is certified (σ_min = the smallest
  scale among the noised coordinates), the implied ℓ2 radius.

With all σ equal to σ this is the isotropic certificate R = σ·R̃ (tested). The
released Cert-SSB code instead multiplies R̃ by a per-sample σ while sampling the test
noise at the global σ, which is unsound: certsmooth certifies with the sound radius and
reports the released code's number beside it, labelled unsound and never counted as
certified (:func:`released_code_radius`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

import certsmooth.certificates.checks as checks
from certsmooth.certificates.bounds import hoeffding_halfwidth, whitened_radius

__all__ = ["implied_l2_radius", "released_code_radius", "whitened_norm", "whitened_radius"]

RELEASED_CODE_N = 1000  # the Hoeffding sample size the released eval.py hard-codes, whatever M
RELEASED_CODE_UNSOUND = (
    "the radius the released Cert-SSB code (eval.py) would report on these models: test noise "
    "at the global sigma (one draw per model, shared by the test points), mean scores, the "
    "Hoeffding half-width of N = 1000 whatever M, radius scaled by the per-sample sigma_x (of "
    "the clean point, also for its triggered copy); UNSOUND, a diagnostic "
    "of where the paper's numbers come from, never counted as certified"
)


def whitened_norm(
    train_norms: np.ndarray, train_sigmas: np.ndarray, test_norm: float = 0.0, test_sigma: float | None = None
) -> float:
    """√(Σᵢ ‖δᵢ‖²/σᵢ² + ‖δ_x‖²/σ_x²) for perturbations δᵢ of training examples with noise
    scales σᵢ (and, in the joint scope, a test perturbation δ_x at scale σ_x)."""
    train_norms = checks.nonnegative(train_norms, "train_norms")
    train_sigmas = checks.scale(train_sigmas, "train_sigmas")
    if train_norms.shape != train_sigmas.shape:
        raise checks.CertificateInputError(
            f"train_norms has shape {train_norms.shape}, train_sigmas {train_sigmas.shape}: one scale per perturbation"
        )
    test_norm = float(checks.nonnegative(test_norm, "test_norm"))
    if test_sigma is not None:
        checks.scale(test_sigma, "test_sigma")
    total = float(np.sum((train_norms / train_sigmas) ** 2))
    if test_sigma is not None:
        total += (test_norm / test_sigma) ** 2
    elif test_norm:
        raise ValueError("a test perturbation needs its noise scale (joint scope)")
    return float(np.sqrt(total))


def implied_l2_radius(r_tilde: np.ndarray, sigma_min: float) -> np.ndarray:
    """Plain ℓ2 radius that the whitened certificate implies for any perturbation."""
    return checks.nonnegative(r_tilde, "r_tilde") * float(checks.scale(sigma_min, "sigma_min"))


def released_code_radius(mean_scores: np.ndarray, sigma_x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The released Cert-SSB code's (top class, radius) per point, UNSOUND (its
    ``eval.py``): from scores (T, C) averaged over the models with test noise at the global σ,
    p_A,low = max(1e-8, p_A − h) and p_B,up = min(1 − 1e-8, p_B + h) with h the Hoeffding
    half-width of N = 1000 at α, and R = σ_x/2·(Φ⁻¹(p_A,low) − Φ⁻¹(p_B,up)) with the
    per-sample σ_x, not the σ the noise had. Negative where p_A,low < p_B,up (the code counts
    R > r as certified). A diagnostic next to the sound certificate, never one."""
    scores = checks.score_table(mean_scores, "mean_scores")
    checks.alpha(alpha)
    sigma_x = checks.scale(sigma_x, "sigma_x")
    order = np.sort(scores, axis=1)
    h = hoeffding_halfwidth(RELEASED_CODE_N, alpha)
    p_a_low = np.maximum(1e-8, order[:, -1] - h)
    p_b_up = np.minimum(1 - 1e-8, order[:, -2] + h)
    return scores.argmax(1), sigma_x / 2 * (ndtri(p_a_low) - ndtri(p_b_up))
