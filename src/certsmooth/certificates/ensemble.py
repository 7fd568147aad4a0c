"""Evaluate a trained smoothed ensemble on test points and certify each point.

Test-time noise of model i is a counter-based function of the model's own test-noise
key (from the experiment seed and i; not RAB's unseeded draw):

* scope ``train`` (RAB as coded): one fixed noise vector η_i per model, shared by all
  test points (part of the "deterministic model"); the radius bounds the stacked
  training-feature perturbation √Σ‖δ_j‖² at the evaluated (possibly triggered) input;
* scope ``joint`` (Wang et al., certsmooth's formalisation): fresh noise η_{i,x} for
  every (model, test point), smoothed jointly with the training noise; the radius
  bounds √(Σ‖δ_j‖² + ‖δ_x‖²), the test trigger included.
"""

from __future__ import annotations

import numpy as np
import torch

from certsmooth.certificates.bounds import ABSTAIN, Certificates, certify_from_scores, certify_from_votes
from certsmooth.lanes import lanes
from certsmooth.models import probabilities, wide_lane
from certsmooth.noise import standard_normal

SCOPES = ("train", "joint")


@torch.no_grad()
def model_probabilities(
    states: dict[int, dict[str, torch.Tensor]],
    test_keys: dict[int, int],
    arch: str,
    num_classes: int,
    x: np.ndarray,
    sigma: float | np.ndarray,
    scope: str,
    lane_width: int,
    device: torch.device,
    batch_size: int = 500,
) -> np.ndarray:
    """Class probabilities of every model on every (noisy) test point: (M, T, C).

    ``sigma``: the test-noise scale, one value or one per point (T,) (Cert-SSB's σ_x);
    point t's noise in model m is σ_t·η_m (scope ``train``) or σ_t·η_{m,t} (``joint``).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    ids = sorted(states)
    if ids != list(range(len(ids))):
        raise ValueError("models must be numbered 0..M-1")
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    t, dim = xt.shape[0], int(np.prod(xt.shape[1:]))
    scale = torch.as_tensor(np.broadcast_to(np.asarray(sigma, dtype=np.float32), (t,)).copy(), device=device)
    scale = scale.reshape(1, t, *([1] * (xt.ndim - 1)))
    out = np.empty((len(ids), t, num_classes), dtype=np.float32)
    for lane in lanes(len(ids), lane_width):
        net = wide_lane(states, lane, arch, xt.shape[1:], num_classes, device)
        keys = torch.tensor([test_keys[i] for i in lane], dtype=torch.int64, device=device)
        if scope == "train":  # one vector per model, shared by every test point
            shared = standard_normal(keys, torch.zeros(1, dtype=torch.int64, device=device), dim)
        for s in range(0, t, batch_size):
            rows = torch.arange(s, min(s + batch_size, t), device=device)
            noise = shared if scope == "train" else standard_normal(keys, rows, dim)
            xb = xt[rows][None] + scale[:, rows] * noise.reshape(len(lane), -1, *xt.shape[1:])
            out[lane[0] : lane[-1] + 1, s : s + len(rows)] = probabilities(net(xb)).cpu().numpy()
    return out


def certify_points(probs: np.ndarray, alpha: float, sigma: float, aggregation: str) -> Certificates:
    """Aggregate (M, T, C) model probabilities and certify each point."""
    m, _, c = probs.shape
    if aggregation == "soft":
        return certify_from_scores(probs.mean(0, dtype=np.float64), m, alpha, sigma)
    if aggregation == "votes":
        votes = probs.argmax(-1)  # (M, T)
        counts = np.stack([(votes == k).sum(0) for k in range(c)], axis=1)
        return certify_from_votes(counts, alpha, sigma)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def per_model_accuracy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (probs.argmax(-1) == y[None]).mean(1)


__all__ = ["ABSTAIN", "SCOPES", "certify_points", "model_probabilities", "per_model_accuracy", "wide_lane"]
