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
noise at the global σ, which is unsound and not reproduced (spec certssb.md §5).
"""

from __future__ import annotations

import numpy as np

from certsmooth.certify.bounds import whitened_radius

__all__ = ["implied_l2_radius", "whitened_norm", "whitened_radius"]


def whitened_norm(
    train_norms: np.ndarray, train_sigmas: np.ndarray, test_norm: float = 0.0, test_sigma: float | None = None
) -> float:
    """√(Σᵢ ‖δᵢ‖²/σᵢ² + ‖δ_x‖²/σ_x²) for perturbations δᵢ of training examples with noise
    scales σᵢ (and, in the joint scope, a test perturbation δ_x at scale σ_x)."""
    train_norms = np.asarray(train_norms, dtype=np.float64)
    train_sigmas = np.asarray(train_sigmas, dtype=np.float64)
    if np.any(train_sigmas <= 0) or (test_sigma is not None and test_sigma <= 0):
        raise ValueError("noise scales must be positive")
    total = float(np.sum((train_norms / train_sigmas) ** 2))
    if test_sigma is not None:
        total += (test_norm / test_sigma) ** 2
    elif test_norm:
        raise ValueError("a test perturbation needs its noise scale (joint scope)")
    return float(np.sqrt(total))


def implied_l2_radius(r_tilde: np.ndarray, sigma_min: float) -> np.ndarray:
    """Plain ℓ2 radius that the whitened certificate implies for any perturbation."""
    return np.asarray(r_tilde, dtype=np.float64) * float(sigma_min)
