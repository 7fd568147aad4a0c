"""Base models on subsets: model m of a count certifier trains on its own index set (a DPA
partition, an FA subset or a bagging subsample), as lanes of one wide network.

Each epoch, model m draws a permutation of its subset with its own generator (seeded by
``(seed, "model", m, "shuffle")``, as the ensembles) and takes ⌈|S_m| / batch⌉ steps: full
batches, then the remainder. In a lane step every model gets a batch of ``batch_size`` rows;
rows beyond a model's batch are padding with weight 0 in its loss, and a model without a batch
in that step is left unchanged (:class:`~certsmooth.subsets.optim.LaneAdam`), so each
model takes exactly the steps it would take alone, and its weights are a function of its own
subset, its seeds and the settings only: inserting or deleting a training sample changes the
models whose subsets hold it and no other (``tests/test_subsets.py`` checks this bit for
bit). Plain cross-entropy training, no smoothing noise and no augmentation (DPA's code uses
random crops: a documented divergence). BatchNorm layers (NiN, the pre-activation ResNet)
take their batch statistics over each model's own rows only (:func:`masked_batchnorm`), so
padding rows change nothing there either: a model with BatchNorm also trains as it would
alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from certsmooth.device import resolve_device
from certsmooth.errors import check_positive
from certsmooth.lanes import lanes
from certsmooth.models import WideEnsemble, build_model
from certsmooth.seeding import derive_seed
from certsmooth.subsets.optim import LaneAdam


@dataclass(frozen=True)
class SubsetTrainConfig:
    arch: str
    epochs: int
    batch_size: int
    lr: float
    lane_width: int

    def __post_init__(self):
        check_positive(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, lane_width=self.lane_width)

    def to_dict(self) -> dict:
        return asdict(self)


def model_seeds(root: int, model_id: int) -> dict[str, int]:
    return {k: derive_seed(root, "model", model_id, k) for k in ("init", "shuffle")}


def masked_loss(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-model mean loss over the rows with weight 1: logits (K, B, out), y and w (K, B)."""
    if logits.shape[-1] == 1:
        per = F.binary_cross_entropy_with_logits(logits[..., 0], y.to(logits.dtype), reduction="none")
    else:
        k, b, c = logits.shape
        per = F.cross_entropy(logits.reshape(k * b, c), y.reshape(-1), reduction="none").reshape(k, b)
    return (per * w).sum(1) / w.sum(1).clamp(min=1)


class RowWeights:
    """The (K, B) row weights of the current lane step, which the masked BatchNorm layers
    read (None: plain BatchNorm)."""

    w: torch.Tensor | None = None


def masked_batchnorm(bn: torch.nn.BatchNorm2d, rows: RowWeights, k: int):
    """A forward for a wide BatchNorm of ``k`` models whose training-mode statistics (and
    running-statistics update) use only the rows of weight 1 of each model: the batch mean
    and biased variance over those rows, the running variance unbiased, as
    ``torch.nn.BatchNorm2d`` does for a model given only its rows."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not bn.training or rows.w is None:
            return torch.nn.BatchNorm2d.forward(bn, x)
        b, kc, h, wd = x.shape
        xs = x.reshape(b, k, kc // k, h, wd)
        m = rows.w.to(x.dtype).t().reshape(b, k, 1, 1, 1)
        n = m.sum(0, keepdim=True) * (h * wd)  # (1, K, 1, 1, 1) values per model and channel
        denom = n.clamp(min=1)
        mean = (xs * m).sum(dim=(0, 3, 4), keepdim=True) / denom
        centred = xs - mean
        # a model without rows in this step (left unchanged by the step): unit variance keeps
        # its discarded outputs finite
        var = torch.where(n > 0, (centred * centred * m).sum(dim=(0, 3, 4), keepdim=True) / denom, 1.0)
        y = (centred * torch.rsqrt(var + bn.eps)).reshape(b, kc, h, wd)
        if bn.affine:
            y = y * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
        if bn.track_running_stats:
            with torch.no_grad():
                mom = bn.momentum  # 0.1 in every architecture here (None, a cumulative average, is not used)
                unbiased = var * denom / (denom - 1).clamp(min=1)
                bn.running_mean.mul_(1 - mom).add_(mom * mean.reshape(kc))
                bn.running_var.mul_(1 - mom).add_(mom * unbiased.reshape(kc))
                bn.num_batches_tracked += 1
        return y

    return forward


def _bn_buffers(net: torch.nn.Module) -> list[torch.Tensor]:
    return [b for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var"))]


def train_lane(x: torch.Tensor, y: torch.Tensor, subsets: list[np.ndarray], model_ids: list[int], root_seed: int,
               cfg: SubsetTrainConfig, num_classes: int, device: torch.device) -> tuple[list, list]:  # fmt: skip
    """Train the models ``model_ids`` of one lane, model j on rows ``subsets[j]`` of x (float
    images on ``device``, with one extra all-zero row last: the padding); returns their state
    dicts and statistics."""
    k, bsz = len(model_ids), cfg.batch_size
    pad = x.shape[0] - 1  # the padding row: no training sample's content enters a padded row
    seeds = [model_seeds(root_seed, m) for m in model_ids]
    models = [build_model(cfg.arch, tuple(x.shape[1:]), num_classes, seed=s["init"], check=False) for s in seeds]
    net = WideEnsemble(models).to(device).train()
    row_weights = RowWeights()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.forward = masked_batchnorm(module, row_weights, k)
    opt = LaneAdam(net.parameters(), k, cfg.lr)
    gens = [torch.Generator().manual_seed(s["shuffle"]) for s in seeds]
    sizes = [len(s) for s in subsets]
    members = [torch.as_tensor(np.asarray(s, dtype=np.int64)) for s in subsets]
    steps = [-(-n // bsz) for n in sizes]  # ⌈|S_m| / batch⌉
    buffers = _bn_buffers(net)
    losses = torch.zeros(k, dtype=torch.float64)
    for _ in range(cfg.epochs):
        # the epoch's batches of every model at once: (K, steps, batch) rows and weights
        idx = torch.full((k, max(steps, default=0) * bsz), pad, dtype=torch.int64)
        w = torch.zeros(k, idx.shape[1])
        for j, (m, g) in enumerate(zip(members, gens, strict=True)):
            if len(m):
                idx[j, : len(m)] = m[torch.randperm(len(m), generator=g)]
                w[j, : len(m)] = 1.0
        idx, w = idx.reshape(k, -1, bsz).to(device), w.reshape(k, -1, bsz).to(device)
        active_all = (w.sum(2) > 0).cpu()  # (K, steps)
        losses.zero_()
        for t in range(idx.shape[1]):
            saved = [b.clone() for b in buffers]
            wt = w[:, t]
            row_weights.w = wt
            logits = net(x[idx[:, t]])
            loss = masked_loss(logits.float(), y[idx[:, t]], wt)
            opt.zero_grad()
            loss.sum().backward()
            active = active_all[:, t]
            opt.step(active)
            if buffers and not active.all():
                with torch.no_grad():  # an inactive model's BatchNorm statistics stay as they were
                    for b, old in zip(buffers, saved, strict=True):
                        rows = (~active).repeat_interleave(b.shape[0] // k).to(b.device)
                        b[rows] = old[rows]
            losses += loss.detach().cpu().double() * wt.sum(1).cpu().double()
    stats = [{"model": m, "subset_size": n, "steps_per_epoch": s, **seeds[j],
              "final_epoch_loss": float(losses[j] / n) if n else None}
             for j, (m, n, s) in enumerate(zip(model_ids, sizes, steps, strict=True))]  # fmt: skip
    states = net.state_dicts()
    for state, s in zip(states, steps, strict=True):  # the lane counts every step; a model its own
        for key in state:
            if key.endswith("num_batches_tracked"):
                state[key] = torch.tensor(s * cfg.epochs, dtype=state[key].dtype)
    return states, stats


def train_subsets(x: np.ndarray, y: np.ndarray, subsets: dict[int, np.ndarray], root_seed: int,
                  cfg: SubsetTrainConfig, num_classes: int, device: str = "auto",
                  lane_plan: list[list[int]] | None = None) -> tuple:  # fmt: skip
    """Train one model per entry of ``subsets`` ({model id: row indices of x}), ``lane_width``
    models at a time (consecutive ids, or the lanes of model ids ``lane_plan`` covering
    exactly the ids of ``subsets``: what ``train-count`` passes, :func:`certsmooth.lanes.step_lanes`);
    x uint8 N×C×H×W (scaled to [0, 1] here) or float32 in [0, 1]. Returns
    {model id: state dict}, per-model statistics and timing."""
    dev = resolve_device(device)
    xf = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else np.asarray(x, dtype=np.float32)
    xf = np.concatenate([xf, np.zeros((1, *xf.shape[1:]), dtype=np.float32)])  # the padding row
    xt = torch.from_numpy(np.ascontiguousarray(xf)).to(dev)
    yt = torch.from_numpy(np.concatenate([np.asarray(y, dtype=np.int64), [0]])).to(dev)
    ids = sorted(subsets)
    if lane_plan is None:
        lane_plan = [[ids[i] for i in lane] for lane in lanes(len(ids), cfg.lane_width)]
    if sorted(m for lane in lane_plan for m in lane) != ids:
        raise ValueError("lane_plan must hold every model of subsets exactly once")
    states, stats = {}, []
    t0 = time.perf_counter()
    for lane_ids in lane_plan:
        lane_states, lane_stats = train_lane(xt, yt, [subsets[m] for m in lane_ids], lane_ids, root_seed, cfg,
                                             num_classes, dev)  # fmt: skip
        states.update(dict(zip(lane_ids, lane_states, strict=True)))
        stats += lane_stats
    wall = time.perf_counter() - t0
    states = {m: states[m] for m in ids}  # model order, whatever the lanes
    stats.sort(key=lambda st: st["model"])
    samples = cfg.epochs * sum(len(s) for s in subsets.values())
    return states, stats, {"device": str(dev), "wall_s": wall, "sample_steps_per_s": samples / max(wall, 1e-9)}
