"""Losses of the certifiably-robust training methods that are the victims of Mehra et al.'s
bilevel attack (arXiv 2012.01274; MACER, arXiv 2001.02378; SmoothAdv, arXiv 1906.04584),
shared by the victim trainer (:mod:`certsmooth.smoothing.ga`) and the attack's lower and
upper levels (:mod:`certsmooth.attacks.bilevel`).

* :func:`soft_radius` — MACER's smoothed soft radius (σ/2)·[Φ⁻¹(p̂₁) − Φ⁻¹(p̂₂)] of the
  top two entries of p̂ = mean over noise copies of softmax(β·logits).
* :func:`macer_loss` — cross-entropy of the averaged softmax plus λ·hinge on the soft
  radius (only correctly classified points with |ξ| ≤ γ and finite ξ).
* :func:`smoothadv_perturbation` — SmoothAdv's inner L2 attack as in the Mehra code: Adam
  on δ (lr 2ε/steps) maximising the cross-entropy at x + δ + noise, projected onto the
  ℓ2 ball of radius ε, x + δ clipped to [0, 1].

Binary models (one logit) are handled through :func:`certsmooth.certificates.ensemble.probabilities`.
"""

from __future__ import annotations

import torch

from certsmooth.models import probabilities
from certsmooth.smoothing.adam import adam
from certsmooth.smoothing.train import loss_per_model


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of one model's logits (B, out) (C logits or one binary logit):
    the trainers' :func:`~certsmooth.smoothing.train.loss_per_model`."""
    return loss_per_model(logits[None], y[None])[0]


def soft_top2(logits: torch.Tensor, beta: float, a: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """p̂ = mean over copies (dim 0) of softmax(β·logits) for logits (k, B, out), smoothed
    to (1 − 2a)·p̂ + a; returns (p̂₁, p̂₂, top-1 class) per point."""
    p = probabilities(beta * logits).mean(0)
    p = (1 - 2 * a) * p + a
    top = p.topk(2, dim=-1)
    return top.values[:, 0], top.values[:, 1], top.indices[:, 0]


def soft_radius(logits: torch.Tensor, y: torch.Tensor, sigma: float, beta: float, a: float) -> torch.Tensor:
    """Attack objective f of Mehra et al. (MACER's soft radius without the hinge):
    (1/B)·Σ over correctly classified points of (σ/2)·[Φ⁻¹(p̂₁) − Φ⁻¹(p̂₂)]."""
    p1, p2, top = soft_top2(logits, beta, a)
    radius = 0.5 * sigma * (torch.special.ndtri(p1) - torch.special.ndtri(p2))
    return torch.where(top == y, radius, torch.zeros_like(radius)).sum() / y.numel()


def soft_abstain(logits: torch.Tensor, sigma: float, beta: float, a: float) -> torch.Tensor:
    """Abstention objective (this project's variant of Mehra et al.'s upper level):
    (1/B)·Σ σ·max(Φ⁻¹(p̂₁), 0), the soft Cohen radius of the top class *whatever it is*.
    It is zero exactly where p̂₁ ≤ ½, where Cohen's CERTIFY abstains; unlike the radius
    objective, moving a point to another confident class does not lower it."""
    p1, _, _ = soft_top2(logits, beta, a)
    return (sigma * torch.relu(torch.special.ndtri(p1))).mean()


def macer_loss(
    logits: torch.Tensor, y: torch.Tensor, sigma: float, beta: float, gamma: float, lam: float
) -> torch.Tensor:
    """MACER (Zhai et al., arXiv 2001.02378) on logits (k, B, out) of k noisy copies:
    [Σ −log p̄_y + λ·Σ (σ/2)·(ξ + γ)·1{correct, |ξ| ≤ γ, ξ finite}] / B, with p̄ the mean
    softmax, ξ = Φ⁻¹(p̂₂) − Φ⁻¹(p̂₁) of p̂ = mean softmax(β·logits). β does not enter
    the classification term (MACER's code)."""
    pbar = probabilities(logits).mean(0)
    ce = -torch.log(pbar.gather(-1, y[:, None])[:, 0].clamp_min(1e-12))
    p1, p2, top = soft_top2(logits, beta)
    with torch.no_grad():
        xi_raw = torch.special.ndtri(p2) - torch.special.ndtri(p1)
        mask = (top == y) & torch.isfinite(xi_raw) & (xi_raw.abs() <= gamma)
    tiny = 1e-6  # only where the mask is false do the clamps bind, so the gradient is exact
    xi = torch.special.ndtri(p2.clamp(tiny, 1 - tiny)) - torch.special.ndtri(p1.clamp(tiny, 1 - tiny))
    robust = torch.where(mask, 0.5 * sigma * (xi + gamma), torch.zeros_like(xi))
    return (ce.sum() + lam * robust.sum()) / y.numel()


def smoothadv_perturbation(
    model, x: torch.Tensor, noise: torch.Tensor, y: torch.Tensor, eps: float, steps: int
) -> torch.Tensor:
    """δ with ‖δ‖₂ ≤ ε per point (and x + δ ∈ [0, 1]) that raises the cross-entropy of
    ``model`` at x + δ + noise: ``steps`` Adam steps (lr 2ε/steps) from δ = 0, each
    followed by the projection. Returned detached; the model's weights get no gradient."""
    if eps <= 0 or steps == 0:
        return torch.zeros_like(x)
    delta = torch.zeros_like(x, requires_grad=True)
    opt = adam([delta], lr=2 * eps / steps)
    for _ in range(steps):
        loss = -cross_entropy(model(x + delta + noise), y)
        opt.zero_grad(set_to_none=True)
        (g,) = torch.autograd.grad(loss, delta)
        delta.grad = g
        opt.step()
        with torch.no_grad():
            flat = delta.reshape(len(delta), -1)
            norm = flat.norm(dim=1).clamp_min(1e-12)
            flat.mul_(torch.clamp(eps / norm, max=1.0)[:, None])
            delta.copy_((x + delta).clamp(0, 1) - x)
    return delta.detach()
