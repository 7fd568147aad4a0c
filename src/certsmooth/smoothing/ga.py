"""Training with Gaussian data augmentation (Cohen et al., spec ``cohen.md`` §8): one
base classifier, trained on inputs plus **fresh** N(0, σ²I) noise every time an example
is drawn, cross-entropy with the true labels.

The noise of example j in epoch e is the counter-based normal keyed by (seed, e) at row
j, and initialisation and shuffling derive from the seed, so the model is a pure
function of the data, the settings and the seed (on one machine type and library set).
Optimiser: Adam without weight decay, as the victims of Mehra et al. (``attacks.md``
§A4); Cohen's SGD schedule is for ImageNet/CIFAR ResNets at paper scale.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from certsmooth.logs import LOG
from certsmooth.models import build_model
from certsmooth.seeding import derive_seed
from certsmooth.smoothing.noise import standard_normal
from certsmooth.smoothing.train import flush_denormal, loss_per_model, predictions, resolve_device


@dataclass(frozen=True)
class GAConfig:
    arch: str
    sigma: float
    epochs: int
    batch_size: int
    lr: float

    def to_dict(self) -> dict:
        return asdict(self)


def train_gaussian(
    x: np.ndarray, y: np.ndarray, cfg: GAConfig, seed: int, num_classes: int, device: str = "auto"
) -> tuple[dict[str, torch.Tensor], dict]:
    """Train one base classifier with Gaussian augmentation; returns (state, stats)."""
    dev = resolve_device(device)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    n, dim = xt.shape[0], int(np.prod(xt.shape[1:]))
    model = build_model(cfg.arch, tuple(xt.shape[1:]), num_classes, seed=derive_seed(seed, "ga", "init")).to(dev)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(derive_seed(seed, "ga", "shuffle"))
    t0 = time.perf_counter()
    with flush_denormal():
        for epoch in range(cfg.epochs):
            key = torch.tensor([derive_seed(seed, "ga", "noise", epoch)], device=dev)
            perm = torch.randperm(n, generator=gen).to(dev)
            loss_sum, correct = 0.0, 0
            for start in range(0, n, cfg.batch_size):
                idx = perm[start : start + cfg.batch_size]
                noise = standard_normal(key, idx, dim)[0].reshape(len(idx), *xt.shape[1:])
                logits = model(xt[idx] + cfg.sigma * noise)
                loss = loss_per_model(logits[None], yt[idx][None])[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((predictions(logits.detach()) == yt[idx]).sum())
            LOG.debug("GA epoch %d: loss %.4f, noisy accuracy %.4f", epoch, loss_sum / n, correct / n)
    stats = {
        "final_epoch_loss": loss_sum / n,
        "final_epoch_noisy_train_accuracy": correct / n,
        "wall_s": time.perf_counter() - t0,
        "device": str(dev),
    }
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    return state, stats
