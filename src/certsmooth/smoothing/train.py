"""Training of a smoothed ensemble (RAB, Weber et al., arXiv 2003.08904).

Model i of M is trained on the poisoned training set with **one** Gaussian noise draw
ε_{i,j} ~ N(0, σ²I) per training example j, fixed for all of model i's epochs. Drawing
fresh noise per epoch or per batch would train every model on a different, larger
distribution than the one the certificate reasons about, and void it.

Everything random in model i derives from (experiment seed, i) only: its
initialisation, its shuffling order and its noise (a counter-based function of
(key_i, j, feature), :mod:`certsmooth.noise`). Models are trained in
**lanes** of ``lane_width`` consecutive models fused into one wide network
(:class:`certsmooth.models.WideEnsemble`); lanes are fixed by (M, lane_width) and
jobs (one Snakemake job each) are runs of whole lanes, so every model, and so every
certificate, is bit-for-bit the same whatever the number of jobs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from certsmooth import schema
from certsmooth.artifacts import sha256_array
from certsmooth.device import resolve_device
from certsmooth.errors import check_positive
from certsmooth.logs import LOG, log_stream
from certsmooth.models import WideEnsemble, build_model, predictions
from certsmooth.noise import standard_normal
from certsmooth.seeding import derive_seed
from certsmooth.smoothing.adam import adam
from certsmooth.smoothing.resume import Checkpoint, fingerprint


@dataclass(frozen=True)
class TrainConfig:
    arch: str
    sigma: float
    epochs: int
    batch_size: int
    lr: float
    lane_width: int
    bf16: bool = schema.defaults("ensemble")["bf16"]

    def __post_init__(self):
        check_positive(sigma=self.sigma, lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
                       lane_width=self.lane_width)  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)


def model_seeds(root: int, model_id: int) -> dict[str, int]:
    return {
        "init": derive_seed(root, "model", model_id, "init"),
        "shuffle": derive_seed(root, "model", model_id, "shuffle"),
        "train_noise": derive_seed(root, "model", model_id, "train-noise"),
        "test_noise": derive_seed(root, "model", model_id, "test-noise"),
    }


def loss_per_model(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss of each model: logits (K, B, out), labels (K, B) → (K,)."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits[..., 0], y.to(logits.dtype), reduction="none").mean(1)
    k, b, c = logits.shape
    return F.cross_entropy(logits.reshape(k * b, c), y.reshape(-1), reduction="none").reshape(k, b).mean(1)


def train_lane(
    x: torch.Tensor,
    y: torch.Tensor,
    model_ids: list[int],
    root_seed: int,
    cfg: TrainConfig,
    num_classes: int,
    device: torch.device,
    progress=None,
    sample_sigma: torch.Tensor | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[list[dict[str, torch.Tensor]], list[dict]]:
    """Train one lane; returns per-model state dicts and per-model training stats.

    ``x`` is the (poisoned) training set, float32 N×C×H×W on ``device``; ``y`` labels.
    ``sample_sigma`` (N,), if given, replaces ``cfg.sigma``: example j's noise is
    N(0, σ_j² I) in every model (Cert-SSB's sample-specific training noise).
    ``checkpoint``, if given, resumes from the lane's latest epoch checkpoint and writes
    new ones (:mod:`certsmooth.smoothing.resume`); the result is the same either way.
    """
    n = x.shape[0]
    dim = int(np.prod(x.shape[1:]))
    seeds = [model_seeds(root_seed, i) for i in model_ids]
    models = [build_model(cfg.arch, tuple(x.shape[1:]), num_classes, seed=s["init"], check=False) for s in seeds]
    net = WideEnsemble(models).to(device).train()
    opt = adam(net.parameters(), lr=cfg.lr, fused=True)
    keys = torch.tensor([s["train_noise"] for s in seeds], dtype=torch.int64, device=device)
    gens = [torch.Generator().manual_seed(s["shuffle"]) for s in seeds]
    sigma = torch.tensor(cfg.sigma, dtype=torch.float32, device=device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if cfg.bf16 else contextlib.nullcontext()
    stats = [{"model": i, **s} for i, s in zip(model_ids, seeds, strict=True)]
    loss_sum = torch.zeros(len(model_ids), device=device)
    correct = torch.zeros(len(model_ids), device=device)
    done = 0
    if checkpoint is not None:
        done, extra = checkpoint.restore(net, opt, gens)
        if done:
            loss_sum, correct = extra["loss_sum"].to(device), extra["correct"].to(device)
            if progress is not None:
                progress.update(done)
    for epoch in range(done, cfg.epochs):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)  # (K, N)
        loss_sum = torch.zeros(len(model_ids), device=device)
        correct = torch.zeros(len(model_ids), device=device)
        for start in range(0, n, cfg.batch_size):
            idx = perms[:, start : start + cfg.batch_size]  # (K, B)
            noise = standard_normal(keys, idx, dim).reshape(*idx.shape, *x.shape[1:])
            scale = sigma if sample_sigma is None else sample_sigma[idx].reshape(*idx.shape, *([1] * (x.ndim - 1)))
            xb = x[idx] + scale * noise
            yb = y[idx]
            with autocast:
                logits = net(xb)
            losses = loss_per_model(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            loss_sum += losses.detach() * idx.shape[1]
            correct += (predictions(logits.detach()) == yb).sum(1)
        if checkpoint is not None and checkpoint.due(epoch + 1):
            checkpoint.save(epoch + 1, net, opt, gens, {"loss_sum": loss_sum, "correct": correct})
        if progress is not None:
            progress.update(1)
        if epoch == cfg.epochs - 1 or epoch == 0:
            LOG.debug("models %s epoch %d loss %s", model_ids, epoch, (loss_sum / n).tolist())
    for s, l_, a in zip(stats, (loss_sum / n).tolist(), (correct / n).tolist(), strict=True):
        s["final_epoch_loss"] = l_
        s["final_epoch_noisy_train_accuracy"] = a
    return net.state_dicts(), stats


def train_partition(
    x: np.ndarray,
    y: np.ndarray,
    lanes_of_partition: list[list[int]],
    root_seed: int,
    cfg: TrainConfig,
    num_classes: int,
    device: str = "auto",
    sample_sigma: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
) -> tuple[dict[int, dict[str, torch.Tensor]], list[dict], dict]:
    """Train every lane of one partition. Returns {model id: state}, per-model stats, timing.
    ``sample_sigma``: optional per-example noise scales (see :func:`train_lane`).
    ``checkpoint_dir``: folder for epoch checkpoints (one set per lane, kept when the lane
    is done, so an interrupted partition resumes in the lane it was training; the caller
    removes the folder once the outputs are saved)."""
    dev = resolve_device(device)
    with flush_denormal():
        return _train_lanes(x, y, lanes_of_partition, root_seed, cfg, num_classes, dev, sample_sigma, checkpoint_dir)


@contextlib.contextmanager
def flush_denormal():
    """Flush subnormal floats to zero on the CPU while training: Adam's second moments and
    small gradients otherwise hit slow subnormal arithmetic (≈ 8 % of a step here). The
    flag is process-wide, so it is switched off again afterwards."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def lane_checkpoints(directory, x, y, lanes_of_partition, root_seed, cfg, num_classes, dev, sample_sigma):
    """One :class:`Checkpoint` per lane under ``directory`` (None when ``directory`` is None)."""
    if directory is None:
        return [None] * len(lanes_of_partition)
    base = {
        "kind": "ensemble-lane",
        "train": cfg.to_dict(),
        "root_seed": int(root_seed),
        "data_sha256": sha256_array(np.asarray(x), np.asarray(y, dtype=np.int64)),
        "data_shape": list(np.shape(x)),
        "sample_sigma_sha256": None if sample_sigma is None else sha256_array(sample_sigma),
        "num_classes": int(num_classes),
        "device_type": dev.type,
    }
    out = []
    for lane in lanes_of_partition:
        name = f"lane{lane[0]:05d}-{lane[-1]:05d}"
        out.append(Checkpoint(directory, name, fingerprint(**base, models=lane), cfg.epochs, label=f"lane {lane}"))
    return out


def _train_lanes(x, y, lanes_of_partition, root_seed, cfg, num_classes, dev, sample_sigma, checkpoint_dir=None):
    from tqdm import tqdm

    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    st = None
    if sample_sigma is not None:
        sample_sigma = np.asarray(sample_sigma, dtype=np.float32)
        if sample_sigma.shape != (x.shape[0],) or not np.all(sample_sigma > 0):
            raise ValueError(f"sample_sigma must hold {x.shape[0]} positive scales, got shape {sample_sigma.shape}")
        st = torch.from_numpy(sample_sigma).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    ckpts = lane_checkpoints(checkpoint_dir, x, y, lanes_of_partition, root_seed, cfg, num_classes, dev, sample_sigma)
    states: dict[int, dict[str, torch.Tensor]] = {}
    stats: list[dict] = []
    t0 = time.perf_counter()
    total = cfg.epochs * len(lanes_of_partition)
    with tqdm(total=total, desc="lane-epochs", mininterval=5, file=log_stream()) as bar:
        for lane, ckpt in zip(lanes_of_partition, ckpts, strict=True):
            lane_states, lane_stats = train_lane(xt, yt, lane, root_seed, cfg, num_classes, dev, bar, st, ckpt)
            states.update(dict(zip(lane, lane_states, strict=True)))
            stats += lane_stats
    wall = time.perf_counter() - t0
    restored = [0 if c is None else c.restored for c in ckpts]  # epochs not trained by this run
    steps = x.shape[0] * sum(len(lane) * (cfg.epochs - r) for lane, r in zip(lanes_of_partition, restored, strict=True))
    timing = {
        "device": str(dev),
        "wall_s": wall,
        "sample_steps_per_s": steps / wall,
        "resumed_lane_epochs": sum(restored),
        "threads": torch.get_num_threads(),
    }
    return states, stats, timing
