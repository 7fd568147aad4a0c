"""Base classifiers for test-time smoothing (Cohen et al.'s certifier), trained with one
of the three methods that are the victims of Mehra et al. (CVPR 2021, arXiv 2012.01274):

* ``ga`` — Gaussian data augmentation (Cohen et al., ICML 2019, arXiv 1902.02918): inputs
  plus **fresh** N(0, σ²I) noise every time an example is drawn, cross-entropy.
* ``macer`` — MACER (Zhai et al., ICLR 2020, arXiv 2001.02378): k noisy copies per
  example, cross-entropy of the averaged softmax plus λ·hinge on the soft radius (β, γ);
  fresh noise.
* ``smoothadv`` — SmoothAdv (Salman et al., NeurIPS 2019, arXiv 1906.04584) as in the
  Mehra code: one noise draw per training example **fixed for the whole training**
  (``noise: fixed``; ``resample`` draws it anew every epoch, as Salman et al.), an L2
  attack (ε, steps, Adam) at x + δ + noise, ε warmed up linearly over the first
  ``warmup_epochs``, cross-entropy at x + δ + noise.

The noise of example j in epoch e (copy c) is the counter-based normal keyed by
(seed, method, e, c) at row j, and initialisation and shuffling derive from the seed, so
the model is a pure function of the data, the settings and the seed (on one machine type
and library set). Optimiser: Adam without weight decay, as the Mehra victims; Cohen's SGD
schedule is for ImageNet/CIFAR ResNets at paper scale.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from certsmooth import schema
from certsmooth.artifacts import sha256_array
from certsmooth.device import resolve_device
from certsmooth.errors import ConfigError, check_positive
from certsmooth.logs import LOG
from certsmooth.models import build_model, predictions
from certsmooth.noise import standard_normal
from certsmooth.seeding import derive_seed
from certsmooth.smoothing.adam import adam
from certsmooth.smoothing.resume import Checkpoint, fingerprint
from certsmooth.smoothing.robust import macer_loss, smoothadv_perturbation
from certsmooth.smoothing.train import flush_denormal, loss_per_model

METHODS = ("ga", "macer", "smoothadv")
# the params schema's cohen block is the only copy of these defaults
MACER_DEFAULTS = schema.defaults("cohen", "macer")
SMOOTHADV_DEFAULTS = schema.defaults("cohen", "smoothadv")


@dataclass(frozen=True)
class GAConfig:
    arch: str
    sigma: float
    epochs: int
    batch_size: int
    lr: float
    method: str = schema.defaults("cohen")["train_method"]
    macer: dict = field(default_factory=lambda: dict(MACER_DEFAULTS))
    smoothadv: dict = field(default_factory=lambda: dict(SMOOTHADV_DEFAULTS))

    def __post_init__(self):
        check_positive(sigma=self.sigma, lr=self.lr, epochs=self.epochs, batch_size=self.batch_size)
        if self.method not in METHODS:
            raise ConfigError(f"cohen.train_method = {self.method!r}: allowed {', '.join(METHODS)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        for other in {"macer", "smoothadv"} - {self.method}:
            d.pop(other)  # settings of the other methods do not matter
        return d


def smoothadv_eps(cfg: dict, epoch: int) -> float:
    """SmoothAdv's ε in ``epoch``: linear warm-up from ε/warmup in epoch 0 to ε."""
    w = cfg["warmup_epochs"]
    return float(cfg["eps"]) * (1.0 if w <= 0 else min(1.0, (epoch + 1) / w))


def train_gaussian(
    x: np.ndarray, y: np.ndarray, cfg: GAConfig, seed: int, num_classes: int, device: str = "auto",
    checkpoint_dir: str | Path | None = None,
) -> tuple[dict[str, torch.Tensor], dict]:  # fmt: skip
    """Train one base classifier with ``cfg.method``; returns (state, stats).

    ``checkpoint_dir``: folder for epoch checkpoints (:mod:`certsmooth.smoothing.resume`);
    a run that finds one there resumes from it, with the same result as an uninterrupted
    run. The caller removes the folder once the model is saved."""
    dev = resolve_device(device)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    n, dim = xt.shape[0], int(np.prod(xt.shape[1:]))
    model = build_model(cfg.arch, tuple(xt.shape[1:]), num_classes, seed=derive_seed(seed, "ga", "init")).to(dev)
    model.train()
    opt = adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(derive_seed(seed, "ga", "shuffle"))
    t0 = time.perf_counter()
    loss_sum, correct, done = 0.0, 0, 0
    ckpt = None
    if checkpoint_dir is not None:
        fp = fingerprint(
            kind="cohen-model", train=cfg.to_dict(), seed=int(seed), num_classes=int(num_classes),
            data_sha256=sha256_array(np.asarray(x), np.asarray(y, dtype=np.int64)), data_shape=list(np.shape(x)),
            device_type=dev.type,
        )  # fmt: skip
        ckpt = Checkpoint(checkpoint_dir, "cohen", fp, cfg.epochs, label=f"the {cfg.method} model")
        done, extra = ckpt.restore(model, opt, [gen])
        if done:
            loss_sum, correct = float(extra["loss_sum"]), int(extra["correct"])
    with flush_denormal():
        for epoch in range(done, cfg.epochs):
            keys = _noise_keys(cfg, seed, epoch, dev)
            eps = smoothadv_eps(cfg.smoothadv, epoch) if cfg.method == "smoothadv" else 0.0
            perm = torch.randperm(n, generator=gen).to(dev)
            loss_sum, correct = 0.0, 0
            for start in range(0, n, cfg.batch_size):
                idx = perm[start : start + cfg.batch_size]
                noise = cfg.sigma * standard_normal(keys, idx, dim).reshape(len(keys), len(idx), *xt.shape[1:])
                xb, yb = xt[idx], yt[idx]
                if cfg.method == "macer":
                    m = cfg.macer
                    logits = model((xb[None] + noise).flatten(0, 1)).reshape(len(keys), len(idx), -1)
                    loss = macer_loss(logits, yb, cfg.sigma, m["beta"], m["gamma"], m["lam"])
                    logits = logits.mean(0)
                else:
                    if cfg.method == "smoothadv":
                        xb = xb + smoothadv_perturbation(model, xb, noise[0], yb, eps, cfg.smoothadv["steps"])
                    logits = model(xb + noise[0])
                    loss = loss_per_model(logits[None], yb[None])[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((predictions(logits.detach()) == yb).sum())
            LOG.debug(f"{cfg.method} epoch %d: loss %.4f, noisy accuracy %.4f", epoch, loss_sum / n, correct / n)
            if ckpt is not None and ckpt.due(epoch + 1):
                extra = {"loss_sum": torch.tensor(loss_sum, dtype=torch.float64), "correct": torch.tensor(correct)}
                ckpt.save(epoch + 1, model, opt, [gen], extra)
    stats = {
        "final_epoch_loss": loss_sum / n,
        "final_epoch_noisy_train_accuracy": correct / n,
        "wall_s": time.perf_counter() - t0,
        "device": str(dev),
    }
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    return state, stats


def _noise_keys(cfg: GAConfig, seed: int, epoch: int, dev) -> torch.Tensor:
    """Noise keys of one epoch: one per noise copy (MACER: k; otherwise 1). GA keeps its
    original keys (``(seed, "ga", "noise", epoch)``) so existing models are unchanged."""
    if cfg.method == "ga":
        keys = [derive_seed(seed, "ga", "noise", epoch)]
    elif cfg.method == "macer":
        keys = [derive_seed(seed, "macer", "noise", epoch, c) for c in range(cfg.macer["k"])]
    else:
        fixed = cfg.smoothadv["noise"] == "fixed"
        keys = [derive_seed(seed, "smoothadv", "noise", *(() if fixed else (epoch,)))]
    return torch.tensor(keys, device=dev)
