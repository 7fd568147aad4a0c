"""Per-sample σ by stochastic gradient ascent on a certified-radius objective (Cert-SSB,
spec ``certssb.md`` §2; DDRS, Alfarra et al.).

Objective for a point x at scale σ, from S Monte-Carlo draws z_s ~ N(0, I):

    p̄ = mean_s probs(f(x + σ z_s)),   R(σ) = σ/2 · (Φ⁻¹(p̄_A) − Φ⁻¹(p̄_B)),

with A, B the top two classes of p̄ (label-free, so it applies to test points too) and
p̄ clamped to [ε, 1 − ε] so that Φ⁻¹ stays finite.

* ``paper`` (certsmooth's default): the gradient flows through the model, S draws per
  step, σ ← clip(σ + lr·∂R/∂σ, [σ_min, σ_max]); σ may shrink.
* ``released-code`` (the public code's ``get_sigma``, for comparison): ONE draw, the
  model output detached, q = clamp(sigmoid, 0.02, 0.98), R = σ·|Φ⁻¹(q)|, and
  σ ← σ + lr·|Φ⁻¹(q)| with lr = 1e-4 — no gradient through the network, σ only grows.

Noise draws come from a generator seeded by (seed, step), so the σ vector is a pure
function of the model, the inputs, σ₀, the settings and the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from certsmooth.errors import ConfigError
from certsmooth.seeding import derive_seed

VARIANTS = ("paper", "released-code")


@dataclass(frozen=True)
class SigmaConfig:
    variant: str = "paper"
    steps: int = 100
    lr: float = 1e-2
    mc_samples: int = 8
    sigma_min: float = 0.05
    sigma_max: float = 2.0
    eps: float = 1e-4  # clamp of p̄ in the paper variant

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"sigma.variant = {self.variant!r}: allowed {', '.join(VARIANTS)}")
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


def optimize_sigma(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma0: torch.Tensor,
    cfg: SigmaConfig,
    seed: int,
) -> torch.Tensor:
    """σ for every point of ``x`` (B, ...) after ``cfg.steps`` ascent steps from ``sigma0``."""
    sigma = sigma0.detach().clone().to(dtype=torch.float32, device=x.device)
    for step in range(cfg.steps):
        gen = torch.Generator(device="cpu").manual_seed(derive_seed(seed, "sigma", step))
        samples = 1 if cfg.variant == "released-code" else cfg.mc_samples
        z = torch.randn((samples, *x.shape), generator=gen).to(x.device)
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
