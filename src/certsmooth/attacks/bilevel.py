"""Mehra et al.'s bilevel clean-label poisoning of the certified radius (CVPR 2021, arXiv
2012.01274; code hammlab/PoisoningCertifiedDefenses), ported from TF1 to PyTorch.

Every training image of the target class is a poison u (‖u − x‖∞ ≤ ε, u ∈ [0, 1], label
kept). Upper level (minimised): the soft certified radius f of the surrogate on target-class
validation points (``objective: radius``; ``abstain``, this project's availability variant:
σ·max(Φ⁻¹(p̂₁), 0) of the top class whatever it is, zero where Cohen's certifier abstains);
lower level g: the victim's training loss (GA, MACER or SmoothAdv) on
clean non-target data ∪ poisons. ApproxGrad, per mini-batch:

1. ``niter1`` Adam steps on the weights v minimising g;
2. ``niter2`` Adam steps on p minimising ‖(H + damping·I)p − ∇_v f‖² (H = ∇²_vv g), with
   the gradient 2(H + damping·I)r of the detached residual r (one more Hessian-vector
   product, no third-order graph); p is warm-started across batches;
3. **one** Adam step on u along the hypergradient −∇_u⟨∇_v g(u, v), p⟩ (∇_u f = 0);
4. clip u to [0, 1], then u − x to [−ε, ε].

Every ``restart`` epochs the surrogate (weights, Adam slots, p) is re-initialised; one
epoch is one pass over the clean non-target data.

Choices of this port (documented in ``docs/attacks.md``):

* the attacker's validation points are the **clean originals** of the target-class
  training images (the public code uses a separate validation split; our small datasets
  have none to spare);
* SmoothAdv's δ_adv is kept apart from u (u is the poison itself; the public code folds
  δ_adv into u and subtracts it after the step), so the projection acts on the poison;
* noise is the counter-based normal keyed by (seed, role, step, …) at the image's row:
  the attack is a pure function of data, settings and seed;
* BN mode: batch statistics in g and f (``bn_mode: train``), recorded.

Code-faithful quirks kept by default: u's Adam moments belong to the fixed-shape batch
variable and persist while different poisons pass through it (``u_moments: shared``;
``per_poison`` gives each poison its own moments), and the last epoch's updates are not
saved (``save_final: false``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch
from torch.func import functional_call

from certsmooth import schema
from certsmooth.device import resolve_device
from certsmooth.errors import ConfigError
from certsmooth.logs import LOG
from certsmooth.models import build_model
from certsmooth.noise import standard_normal
from certsmooth.seeding import derive_seed
from certsmooth.smoothing.adam import adam
from certsmooth.smoothing.robust import cross_entropy, macer_loss, smoothadv_perturbation, soft_abstain, soft_radius
from certsmooth.smoothing.train import flush_denormal

VICTIMS = ("ga", "macer", "smoothadv")
OBJECTIVES = ("radius", "abstain")


_D = schema.defaults("bilevel")  # the only copy of these defaults: the params schema


@dataclass(frozen=True, kw_only=True)
class BilevelConfig:
    victim: str = _D["victim"]  # the lower level: ga | macer | smoothadv
    objective: str = _D["objective"]  # the upper level: radius (Mehra et al.) | abstain
    arch: str = _D["arch"]
    sigma: float  # the attack σ (params: bilevel.sigma, null = the smoothing σ)
    epsilon: float  # ℓ∞ budget (params: the attack's epsilon, required)
    k: int = _D["k"]  # upper-level noise copies
    a: float = _D["a"]  # p ↦ (1 − 2a)p + a in the upper level
    beta: float = _D["beta"]
    lr_u: float = _D["lr_u"]
    lr_v: float = _D["lr_v"]
    lr_p: float = _D["lr_p"]
    niter1: int = _D["niter1"]
    niter2: int = _D["niter2"]
    epochs: int = _D["epochs"]
    restart: int = _D["restart"]
    batch_clean: int = _D["batch_clean"]
    batch_poison: int = _D["batch_poison"]
    batch_val: int = _D["batch_val"]
    damping: float = _D["damping"]
    macer_k: int = _D["macer_k"]
    macer_lam: float = _D["macer_lam"]
    macer_gamma: float = _D["macer_gamma"]
    adv_eps: float = _D["adv_eps"]
    adv_steps: int = _D["adv_steps"]
    adv_ramp_epochs: int = _D["adv_ramp_epochs"]
    u_moments: str = _D["u_moments"]
    save_final: bool = _D["save_final"]
    keep_trigger: bool = _D["keep_trigger"]  # avail_bilevel: the trigger's pixels stay as the trigger set them

    def __post_init__(self):
        if self.victim not in VICTIMS:
            raise ConfigError(f"attack.bilevel.victim = {self.victim!r}: allowed {', '.join(VICTIMS)}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"attack.bilevel.objective = {self.objective!r}: allowed {', '.join(OBJECTIVES)}")
        if self.u_moments not in ("shared", "per_poison"):
            raise ConfigError(f"attack.bilevel.u_moments = {self.u_moments!r}: allowed shared, per_poison")

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ ApproxGrad core


def flat_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


def solve_p(
    lower: Callable[[list[torch.Tensor]], torch.Tensor],
    params: list[torch.Tensor],
    grad_f: list[torch.Tensor],
    p: list[torch.Tensor],
    opt_p,
    iters: int,
    damping: float,
) -> float:
    """``iters`` optimiser steps on p minimising ‖(H + damping·I)p − ∇_v f‖², H = ∇²g at
    ``params``; returns the final squared residual."""
    res = float("nan")
    for _ in range(iters):
        gv = torch.autograd.grad(lower(params), params, create_graph=True)
        hp = torch.autograd.grad(gv, params, grad_outputs=p, retain_graph=True)
        r = [(h + damping * q - f).detach() for h, q, f in zip(hp, p, grad_f, strict=True)]
        hr = torch.autograd.grad(gv, params, grad_outputs=r)
        for q, h, ri in zip(p, hr, r, strict=True):
            q.grad = 2 * (h + damping * ri)
        opt_p.step()
        res = float(sum((ri**2).sum() for ri in r))
    return res


def hypergradient(
    lower_u: Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor],
    params: list[torch.Tensor],
    u: torch.Tensor,
    p: list[torch.Tensor],
) -> torch.Tensor:
    """−∇_u⟨∇_v g(u, v), p⟩: the gradient of f(v*(u)) w.r.t. u when p = H⁻¹∇_v f (∇_u f = 0)."""
    u = u.detach().requires_grad_(True)
    gv = torch.autograd.grad(lower_u(params, u), params, create_graph=True)
    (gu,) = torch.autograd.grad(flat_dot(gv, [q.detach() for q in p]), u)
    return -gu


class _Adam:
    """Adam on u with moments either for the batch variable (``shared``: whichever poisons
    pass through slot j share its moments, as the public code) or per poison."""

    def __init__(self, shape: tuple, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.m, self.v = torch.zeros(shape), torch.zeros(shape)
        self.t = torch.zeros(shape[0])
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps

    def step(self, slots: torch.Tensor, u: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        m = self.b1 * self.m[slots] + (1 - self.b1) * g
        v = self.b2 * self.v[slots] + (1 - self.b2) * g * g
        t = self.t[slots] + 1
        self.m[slots], self.v[slots], self.t[slots] = m, v, t
        shape = (-1,) + (1,) * (g.ndim - 1)
        mhat = m / (1 - self.b1 ** t.reshape(shape))
        vhat = v / (1 - self.b2 ** t.reshape(shape))
        return u - self.lr * mhat / (vhat.sqrt() + self.eps)


def project(u: torch.Tensor, x0: torch.Tensor, epsilon: float, frozen: torch.Tensor | None = None) -> torch.Tensor:
    """Clip to [0, 1], then the perturbation to [−ε, ε] (step 4 in the module docstring;
    x0 ∈ [0, 1] so the result stays in [0, 1]); ``frozen`` (a boolean mask broadcast over
    u): pixels held at x0."""
    u = u.clamp(0, 1)
    out = x0 + (u - x0).clamp(-epsilon, epsilon)
    return out if frozen is None else torch.where(frozen, x0, out)


# ------------------------------------------------------------------ the attack


class _Surrogate:
    """The surrogate network as a pure function of its weights (``torch.func``)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.params = [q.detach().clone().requires_grad_(True) for _, q in model.named_parameters()]

    def __call__(self, prm: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, dict(zip(self.names, prm, strict=True)), (x,))


@dataclass
class _Batch:
    """One step's clean and poison batch and the victim's lower-level loss g on it."""

    cfg: BilevelConfig
    sur: _Surrogate
    noise: Callable
    step: int
    xc: torch.Tensor
    yc: torch.Tensor
    ty: torch.Tensor
    crow: torch.Tensor
    prow: torch.Tensor
    adv: torch.Tensor | None = None

    @property
    def rows(self) -> torch.Tensor:
        return torch.cat([self.crow, self.prow])

    def set_adversarial(self, u: torch.Tensor, eps: float) -> None:
        """SmoothAdv: δ_adv at the current weights for clean and poison inputs (a constant for u)."""
        frozen = [q.detach() for q in self.sur.params]
        self.adv = smoothadv_perturbation(
            lambda z: self.sur(frozen, z), torch.cat([self.xc, u]), self.noise("smoothadv", self.rows),
            torch.cat([self.yc, self.ty]), eps, self.cfg.adv_steps,
        )  # fmt: skip

    def lower(self, prm: list[torch.Tensor], u: torch.Tensor, it: int | str = "solve") -> torch.Tensor:
        """g on clean ∪ poisons; ``it`` keys GA's fresh noise (the solve and the u-step share one draw)."""
        cfg, inp, lab, rows = self.cfg, torch.cat([self.xc, u]), torch.cat([self.yc, self.ty]), self.rows
        if cfg.victim == "ga":
            return cross_entropy(self.sur(prm, inp + self.noise("ga", rows, self.step, it)), lab)
        if cfg.victim == "macer":
            eta = torch.stack([self.noise("macer", rows, j) for j in range(cfg.macer_k)])  # fixed per sample
            logits = self.sur(prm, (inp[None] + eta).flatten(0, 1)).reshape(cfg.macer_k, len(lab), -1)
            return macer_loss(logits, lab, cfg.sigma, cfg.beta, cfg.macer_gamma, cfg.macer_lam)
        return cross_entropy(self.sur(prm, inp + self.adv + self.noise("smoothadv", rows)), lab)  # fixed noise


@dataclass
class BilevelResult:
    poisons: np.ndarray  # float32, the target-class images after the attack
    index: np.ndarray  # their rows in the training set
    history: list[dict]
    stats: dict


@dataclass(frozen=True)
class BilevelPlan:
    """Which training rows become poisons, where they start, and the upper level's points."""

    rows: np.ndarray  # int64 sorted rows of the training set replaced by poisons
    start: np.ndarray  # float32 the poisons' starting images: the centres of their ℓ∞ balls
    labels: np.ndarray  # int64 the poisons' training labels
    val_x: np.ndarray  # float32 the attacker's validation inputs (the upper level)
    val_y: np.ndarray  # int64 their labels (the radius objective counts the correct ones)
    description: str
    frozen: np.ndarray | None = None  # bool (C, H, W): pixels every poison keeps at its start (None: none)


def mehra_plan(x: np.ndarray, y: np.ndarray, target: int) -> BilevelPlan:
    """Mehra et al.: every image of class ``target`` is a clean-label poison; the validation
    points are their clean originals."""
    rows = np.flatnonzero(y == target).astype(np.int64)
    if rows.size == 0 or rows.size == y.size:
        raise ConfigError(f"attack.target = {target}: the training set needs images of the target class and others")
    start = np.ascontiguousarray(x[rows], dtype=np.float32)
    labels = np.full(rows.size, target, dtype=np.int64)
    return BilevelPlan(rows, start, labels, start, labels, "clean originals of the target-class training images")


def trigger_pixels(trigger, shape: tuple) -> np.ndarray:
    """Boolean (C, H, W): the pixels ``trigger`` changes on some image, i.e. those it sets or
    moves on a black or a white one (a patch's square, a pixel trigger's pixels; every pixel
    for blending triggers)."""
    black, white = np.zeros((1, *shape), np.float32), np.ones((1, *shape), np.float32)
    return (trigger.apply(black)[0] != 0) | (trigger.apply(white)[0] != 1)


def trigger_plan(
    x: np.ndarray, y: np.ndarray, trigger, rows: np.ndarray, labels: np.ndarray, keep_trigger: bool = False
) -> BilevelPlan:
    """The triggered availability variant: the training images at ``rows`` with the trigger
    and ``labels`` are the poisons' starting points; the validation points are every other
    training image with the trigger and its true label (the test-time inputs to make abstain).
    ``keep_trigger``: the trigger's pixels (:func:`trigger_pixels`) are frozen at their start."""
    rows = np.asarray(rows, dtype=np.int64)
    rest = np.setdiff1d(np.arange(y.size), rows)
    if rows.size == 0 or rest.size == 0:
        raise ConfigError(f"the bilevel availability attack poisons {rows.size} of {y.size} images; "
                          "it needs at least one poison and one clean image")  # fmt: skip
    start = np.ascontiguousarray(trigger.apply(x[rows]), dtype=np.float32)
    val_x = np.ascontiguousarray(trigger.apply(x[rest]), dtype=np.float32)
    frozen = trigger_pixels(trigger, x.shape[1:]) if keep_trigger else None
    return BilevelPlan(rows, start, np.asarray(labels, dtype=np.int64), val_x, np.asarray(y[rest], dtype=np.int64),
                       "every non-poisoned training image with the trigger", frozen)  # fmt: skip


def bilevel_poison(
    x: np.ndarray, y: np.ndarray, target: int, cfg: BilevelConfig, seed: int, num_classes: int, device: str = "auto",
    plan: BilevelPlan | None = None,
) -> BilevelResult:  # fmt: skip
    """Run ApproxGrad on training images ``x`` (float32 N×C×H×W in [0, 1]) and labels ``y``.
    ``plan`` names the poisons and the validation points; by default (:func:`mehra_plan`)
    the poisons are every image of class ``target``."""
    plan = mehra_plan(x, y, target) if plan is None else plan
    if cfg.keep_trigger and plan.frozen is None:
        raise ConfigError("attack.bilevel.keep_trigger = true: only the avail_bilevel attack has a trigger to keep")
    dev = resolve_device(device)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    pidx = plan.rows
    cidx = np.setdiff1d(np.arange(y.size), pidx)  # the clean rest of the training set
    shape = tuple(xt.shape[1:])
    dim = int(np.prod(shape))
    x0 = torch.from_numpy(plan.start).to(dev)  # the poisons' starting points (the centres of the ε balls)
    py = torch.from_numpy(plan.labels).to(dev)
    xv, yv_all = torch.from_numpy(plan.val_x).to(dev), torch.from_numpy(plan.val_y).to(dev)
    frozen = None if plan.frozen is None else torch.from_numpy(plan.frozen).to(dev)
    u_all = x0.clone()
    bp, bc, bv = min(cfg.batch_poison, pidx.size), min(cfg.batch_clean, cidx.size), min(cfg.batch_val, len(xv))
    gen = torch.Generator().manual_seed(derive_seed(seed, "bilevel", "batches"))
    steps_per_epoch = max(1, cidx.size // bc)
    history, saved = [], u_all.clone()
    t0 = time.perf_counter()
    step = 0

    def noise(role: str, rows: torch.Tensor, *key) -> torch.Tensor:
        keys = torch.tensor([derive_seed(seed, "bilevel", role, *key)], device=dev)
        return cfg.sigma * standard_normal(keys, rows.to(dev), dim)[0].reshape(len(rows), *shape)

    with flush_denormal():
        for epoch in range(cfg.epochs):
            cycle_epoch = epoch % cfg.restart
            if cycle_epoch == 0:  # (re-)initialise the surrogate, its optimisers, p and u's moments
                model = build_model(
                    cfg.arch, shape, num_classes, seed=derive_seed(seed, "bilevel", "init", epoch // cfg.restart)
                ).to(dev)
                sur = _Surrogate(model.train())
                opt_v = adam(sur.params, lr=cfg.lr_v)
                p = [torch.zeros_like(q, requires_grad=True) for q in sur.params]
                opt_p = adam(p, lr=cfg.lr_p)
                u_opt = _Adam((bp if cfg.u_moments == "shared" else pidx.size, *shape), cfg.lr_u)
            adv_eps = cfg.adv_eps * min(1.0, cycle_epoch / cfg.adv_ramp_epochs) if cfg.adv_ramp_epochs else cfg.adv_eps
            perm = torch.randperm(cidx.size, generator=gen)
            f_val = res = 0.0
            for s in range(steps_per_epoch):
                crow = torch.from_numpy(cidx)[perm[s * bc : (s + 1) * bc]]
                slot = torch.randperm(pidx.size, generator=gen)[:bp]  # poisons of this step
                vrow = torch.randperm(len(xv), generator=gen)[:bv]
                batch = _Batch(cfg, sur, noise, step, xt[crow.to(dev)], yt[crow.to(dev)], py[slot.to(dev)], crow,
                               torch.from_numpy(pidx)[slot])  # fmt: skip
                u_batch = u_all[slot]
                if cfg.victim == "smoothadv":  # the adversarial shift at the current weights, a constant
                    batch.set_adversarial(u_batch, adv_eps)
                for it in range(cfg.niter1):  # 1. inner training
                    loss = batch.lower(sur.params, u_batch, it)
                    grads = torch.autograd.grad(loss, sur.params)
                    for q, g in zip(sur.params, grads, strict=True):
                        q.grad = g
                    opt_v.step()
                eta_v = torch.stack([noise("upper", vrow, step, j) for j in range(cfg.k)])
                yv = yv_all[vrow.to(dev)]
                logits = sur(sur.params, (xv[vrow.to(dev)][None] + eta_v).flatten(0, 1)).reshape(cfg.k, bv, -1)
                if cfg.objective == "radius":
                    f = soft_radius(logits, yv, cfg.sigma, cfg.beta, cfg.a)
                else:
                    f = soft_abstain(logits, cfg.sigma, cfg.beta, cfg.a)
                grad_f = [g.detach() for g in torch.autograd.grad(f, sur.params)]
                res = solve_p(  # 2. damped linear solve for p
                    partial(batch.lower, u=u_batch), sur.params, grad_f, p, opt_p, cfg.niter2, cfg.damping
                )
                hg = hypergradient(batch.lower, sur.params, u_batch, p)  # 3. hypergradient step on u
                slots = torch.arange(bp) if cfg.u_moments == "shared" else slot
                u_new = u_opt.step(slots, u_batch.detach(), hg.detach())
                u_all[slot] = project(u_new, x0[slot], cfg.epsilon, frozen)  # 4. projection
                f_val = float(f.detach())
                step += 1
            history.append({"epoch": epoch, "upper_f": f_val, "p_residual": res,
                            "linf": float((u_all - x0).abs().max()), "wall_s": time.perf_counter() - t0})  # fmt: skip
            LOG.info("bilevel epoch %d: upper f (%s) %.4f, p residual %.3g, max |u − x| %.4f (%.0f s)", epoch,
                     cfg.objective, f_val, res, history[-1]["linf"], history[-1]["wall_s"])  # fmt: skip
            if epoch < cfg.epochs - 1 or cfg.save_final:
                saved = u_all.clone()
    stats = {
        "wall_s": time.perf_counter() - t0, "steps": step, "device": str(dev), "bn_mode": "train",
        "num_poisons": int(pidx.size), "validation": plan.description,
        "frozen_pixels": 0 if plan.frozen is None else int(plan.frozen.sum()),
    }  # fmt: skip
    return BilevelResult(saved.cpu().numpy().astype(np.float32), pidx.astype(np.int64), history, stats)


def linf_norms(poisons: np.ndarray, clean: np.ndarray) -> np.ndarray:
    return np.abs(poisons.astype(np.float64) - clean.astype(np.float64)).reshape(len(poisons), -1).max(1)


def expected_steps(num_clean: int, cfg: BilevelConfig) -> int:
    return cfg.epochs * max(1, num_clean // min(cfg.batch_clean, num_clean))
