"""Per-sample σ by stochastic gradient ascent on a certified-radius objective (Cert-SSB,
Qiao et al., arXiv 2504.21730; DDRS, Alfarra et al., arXiv 2012.04351).

Objective for a point x at scale σ, from S Monte-Carlo draws z_s ~ N(0, I):

    p̄ = mean_s probs(f(x + σ z_s)),   R(σ) = σ/2 · (Φ⁻¹(p̄_A) − Φ⁻¹(p̄_B)),

with A, B the top two classes of p̄ (label-free, so it applies to test points too) and
p̄ clamped to [ε, 1 − ε] so that Φ⁻¹ stays finite.

* ``paper`` (certsmooth's default): the gradient flows through the model, S draws per
  step, σ ← clip(σ + lr·∂R/∂σ, [σ_min, σ_max]); σ may shrink.
* ``released-code`` (the public code's ``get_sigma``, for comparison): ONE draw, the
  model output detached, q = clamp(sigmoid, 0.02, 0.98), R = σ·|Φ⁻¹(q)|, and
  σ ← σ + lr·|Φ⁻¹(q)| with lr = 1e-4 — no gradient through the network, σ only grows.

Noise draw s of step t for point j is the counter-based normal of
:mod:`certsmooth.noise` keyed by (seed, t, s) at row j (the point's index in
its dataset), so the σ vector is a pure function of the model, the inputs, σ₀, the
settings and the seed, and does not depend on how the points are batched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from certsmooth import schema
from certsmooth.errors import ConfigError
from certsmooth.noise import standard_normal
from certsmooth.seeding import derive_seed

VARIANTS = ("paper", "released-code")
DEFAULT_LR = {"paper": 1e-2, "released-code": 1e-4}  # sigma_opt.lr = null: the paper's, the public code's lr_sig
_D = schema.defaults("sigma_opt")  # the only copy of these defaults: the params schema


@dataclass(frozen=True)
class SigmaConfig:
    variant: str = _D["variant"]
    steps: int = _D["steps"]
    lr: float | None = _D["lr"]  # None: DEFAULT_LR of the variant
    mc_samples: int = _D["mc_samples"]
    sigma_min: float = _D["sigma_min"]
    sigma_max: float = _D["sigma_max"]
    eps: float = 1e-4  # clamp of p̄ in the paper variant (not a setting)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"sigma.variant = {self.variant!r}: allowed {', '.join(VARIANTS)}")
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR[self.variant])
        if not 0 < self.sigma_min <= self.sigma_max:
            raise ConfigError(f"sigma bounds [{self.sigma_min}, {self.sigma_max}]: need 0 < min <= max")


RELEASED_CLAMP = (0.02, 0.98)


def _probs(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits[..., 0])
        return torch.stack([1 - p, p], dim=-1)
    return torch.softmax(logits, dim=-1)


def radius_objective(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor, eps: float
) -> torch.Tensor:
    """R(σ) per point: x (B, ...), σ (B,), z (S, B, ...) → (B,), differentiable in σ."""
    s, b = z.shape[:2]
    shape = (1, b) + (1,) * (x.ndim - 1)
    noisy = (x[None] + sigma.reshape(shape) * z).reshape(s * b, *x.shape[1:])
    p = _probs(model(noisy)).reshape(s, b, -1).mean(0).clamp(eps, 1 - eps)
    top2 = torch.topk(p.detach(), 2, dim=-1).indices
    p_a = p.gather(1, top2[:, :1])[:, 0]
    p_b = p.gather(1, top2[:, 1:2])[:, 0]
    return sigma / 2 * (torch.special.ndtri(p_a) - torch.special.ndtri(p_b))


def _draws(x: torch.Tensor, rows: torch.Tensor, seed: int, step: int, samples: int) -> torch.Tensor:
    """(samples, B, ...) standard normals for the points ``rows`` at ascent ``step``."""
    keys = torch.tensor([derive_seed(seed, "sigma", step, s) for s in range(samples)], device=x.device)
    dim = int(np.prod(x.shape[1:]))
    return standard_normal(keys, rows.to(x.device), dim).reshape(samples, *x.shape)


def optimize_sigma(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma0: torch.Tensor,
    cfg: SigmaConfig,
    seed: int,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """σ for every point of ``x`` (B, ...) after ``cfg.steps`` ascent steps from ``sigma0``.
    ``rows`` (B,): the points' indices in their dataset (default 0..B-1), which key their
    noise, so a point gets the same σ in any batch."""
    sigma = sigma0.detach().clone().to(dtype=torch.float32, device=x.device)
    rows = torch.arange(x.shape[0]) if rows is None else rows
    for step in range(cfg.steps):
        samples = 1 if cfg.variant == "released-code" else cfg.mc_samples
        z = _draws(x, rows, seed, step, samples)
        if cfg.variant == "released-code":
            with torch.no_grad():
                logits = model(x + sigma.reshape((-1,) + (1,) * (x.ndim - 1)) * z[0])
                p = torch.sigmoid(logits[..., 0]) if logits.shape[-1] == 1 else torch.softmax(logits, -1).amax(-1)
                q = p.clamp(*RELEASED_CLAMP)
                # R = σ/2·|Φ⁻¹(1−q) − Φ⁻¹(q)| = σ·|Φ⁻¹(q)|; dR/dσ = |Φ⁻¹(q)| (q detached)
                sigma = sigma + cfg.lr * torch.special.ndtri(q).abs()
            continue
        s = sigma.clone().requires_grad_(True)
        r = radius_objective(model, x, s, z, cfg.eps)
        (grad,) = torch.autograd.grad(r.sum(), s)
        sigma = (sigma + cfg.lr * grad).clamp(cfg.sigma_min, cfg.sigma_max)
    return sigma.detach()


class MeanProbability(nn.Module):
    """The smoothed ensemble's score for the ascent: the mean class probabilities of
    several :class:`~certsmooth.models.WideEnsemble` lanes on the same inputs, returned
    as log-probabilities (so that a softmax gives the mean back). Parameters are frozen:
    the ascent only differentiates with respect to the inputs' noise scale."""

    def __init__(self, lanes: list[nn.Module]):
        super().__init__()
        self.lanes = nn.ModuleList(lanes)
        self.num_models = sum(lane.k for lane in lanes)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for lane in self.lanes:
            logits = lane(x[None].expand(lane.k, *x.shape)).float()  # (K, N, out)
            p = _probs(logits).sum(0)
            total = p if total is None else total + p
        return torch.log((total / self.num_models).clamp_min(1e-30))


def optimize_sigma_batched(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray,
    sigma0: float | np.ndarray,
    cfg: SigmaConfig,
    seed: int,
    device: torch.device,
    batch_size: int = _D["batch_size"],
    progress=None,
) -> np.ndarray:
    """:func:`optimize_sigma` over a whole dataset ``x`` (N, ...) in batches; the result
    does not depend on ``batch_size`` (noise is keyed by the point's index)."""
    n = x.shape[0]
    s0 = np.array(np.broadcast_to(np.asarray(sigma0, dtype=np.float32), (n,)))
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        xb = torch.from_numpy(np.ascontiguousarray(x[start:stop], dtype=np.float32)).to(device)
        rows = torch.arange(start, stop, device=device)
        sb = torch.from_numpy(np.ascontiguousarray(s0[start:stop])).to(device)
        out[start:stop] = optimize_sigma(model, xb, sb, cfg, seed, rows).cpu().numpy()
        if progress is not None:
            progress.update(stop - start)
    return out
