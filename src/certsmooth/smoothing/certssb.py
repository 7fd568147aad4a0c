"""Cert-SSB's sample-specific noise scales (Qiao et al., arXiv 2504.21730), as certsmooth runs it.

* **Training samples.** The σ of training example i is fixed *before* the ensemble is
  trained: a small pilot ensemble (``sigma_opt.pilot_models`` models trained RAB-style at
  the base σ, seeds from ``(seed, "pilot")``, separate from the M models) scores the
  poisoned training set, and σ_i is the ascent's result from σ₀ = base σ. Every one of
  the M models then trains with the same vector: example i's noise is σ_i·b_{m,i}, one
  fixed draw per (model, example). The public code instead updates σ while each model
  trains, so every model would smooth with a different distribution and the ensemble
  would estimate no single smoothed classifier; certsmooth does not allow that.
* **Test samples.** σ_x is optimised with a test-scoring ensemble of
  ``sigma_opt.test_models`` models trained exactly as the M models (the same settings and
  training-sample σ vector) from seeds of their own, ``(seed, "test-scorer")``, separately
  on the clean and on the triggered test set ("optimise σ on the input certified"; the
  public code reuses the benign σ). The M models that the certificate's bound averages
  are then independent of σ_x given the training data and σ vector, as Hoeffding's and
  Clopper–Pearson's bounds assume; scoring with some of the M models themselves (as an
  earlier certsmooth did with the first five) makes σ_x a function of the very draws the
  bound treats as independent. The certification step checks the two sets of seeds are
  disjoint and records both (:func:`certsmooth.steps.certify.check_scorer_independent`).

The certificate that uses these scales is in :mod:`certsmooth.certificates.anisotropic`.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from certsmooth import schema
from certsmooth.lanes import lanes
from certsmooth.logs import LOG
from certsmooth.models import wide_lane
from certsmooth.seeding import derive_seed
from certsmooth.smoothing.sigma import MeanProbability, SigmaConfig, optimize_sigma_batched
from certsmooth.smoothing.train import TrainConfig, train_partition

DEFAULTS = schema.defaults("sigma_opt")  # params.yaml's sigma_opt block, from the schema (the only copy)


def settings(opt: dict | None) -> dict:
    return {**DEFAULTS, **(opt or {})}


def sigma_config(opt: dict, stage: str) -> SigmaConfig:
    """The ascent settings of ``stage`` ('train' or 'test')."""
    opt = settings(opt)
    steps = opt["steps"] if stage == "train" else opt["test_steps"]
    return SigmaConfig(
        variant=opt["variant"],
        steps=steps,
        lr=opt["lr"],
        mc_samples=opt["mc_samples"],
        sigma_min=opt["sigma_min"],
        sigma_max=opt["sigma_max"],
    )


def pilot_config(ensemble: dict, opt: dict, base_sigma: float) -> TrainConfig:
    opt = settings(opt)
    return TrainConfig(
        arch=ensemble["arch"],
        sigma=base_sigma,
        epochs=opt["pilot_epochs"] or ensemble["epochs"],
        batch_size=ensemble["batch_size"],
        lr=ensemble["lr"],
        lane_width=min(ensemble["lane_width"], opt["pilot_models"]),
        bf16=ensemble["bf16"],
    )


def sigma_stats(sigma: np.ndarray) -> dict:
    s = np.asarray(sigma, dtype=np.float64)
    return {
        "min": float(s.min()),
        "mean": float(s.mean()),
        "median": float(np.median(s)),
        "max": float(s.max()),
        "std": float(s.std()),
    }


def _ascent_settings(cfg: SigmaConfig) -> dict:
    return {k: getattr(cfg, k) for k in ("variant", "steps", "lr", "mc_samples", "sigma_min", "sigma_max")}


def _scorer(states, ids, arch, shape, num_classes, lane_width, device) -> MeanProbability:
    groups = [ids[i : i + lane_width] for i in range(0, len(ids), lane_width)]
    return MeanProbability([wide_lane(states, g, arch, shape, num_classes, device) for g in groups]).eval()


def _ascend(scorer, x, base_sigma, cfg, seed, device, batch_size, desc):
    from tqdm import tqdm

    from certsmooth.logs import log_stream

    t0 = time.perf_counter()
    with tqdm(total=x.shape[0], desc=desc, mininterval=5, file=log_stream()) as bar:
        sigma = optimize_sigma_batched(scorer, x, base_sigma, cfg, seed, device, batch_size, bar)
    return sigma, time.perf_counter() - t0


def train_sigmas(
    x: np.ndarray, y: np.ndarray, num_classes: int, ensemble: dict, opt: dict, base_sigma: float, seed: int,
    device: torch.device, checkpoint_dir=None,
) -> tuple[np.ndarray, dict[int, dict[str, torch.Tensor]], dict]:  # fmt: skip
    """σ_i of every training example: pilot ensemble at ``base_sigma``, then the ascent.
    Returns (σ vector, pilot states, info); ``info`` holds no timings (outputs stay
    byte-reproducible; the log and Snakemake's benchmark files have them).
    ``checkpoint_dir``: epoch checkpoints of the pilot ensemble's training (resumable,
    see :func:`certsmooth.smoothing.train.train_partition`)."""
    opt = settings(opt)
    cfg = pilot_config(ensemble, opt, base_sigma)
    pilot_seed = derive_seed(seed, "pilot")
    states, stats, timing = train_partition(
        x, y, lanes(opt["pilot_models"], cfg.lane_width), pilot_seed, cfg, num_classes, str(device),
        checkpoint_dir=checkpoint_dir,
    )  # fmt: skip
    scorer = _scorer(states, sorted(states), cfg.arch, x.shape[1:], num_classes, cfg.lane_width, device)
    scfg = sigma_config(opt, "train")
    sigma, ascent_s = _ascend(
        scorer, x, base_sigma, scfg, derive_seed(seed, "train-sigma"), device, opt["batch_size"], "train σ"
    )
    info = {
        "stage": "train",
        "base_sigma": base_sigma,
        "sigma_opt": opt,
        "ascent": _ascent_settings(scfg),
        "pilot": {"seed": pilot_seed, "train": cfg.to_dict(), "per_model": stats},
        "device": str(device),
        "num_points": int(x.shape[0]),
        "sigma": sigma_stats(sigma),
    }
    LOG.info("train σ: pilot %.1f s, ascent %.1f s on %s", timing["wall_s"], ascent_s, device)
    return sigma, states, info


def scorer_config(ensemble: dict, opt: dict, base_sigma: float) -> TrainConfig:
    """The test-scoring ensemble trains as the M models do."""
    return TrainConfig(arch=ensemble["arch"], sigma=base_sigma, epochs=ensemble["epochs"],
                       batch_size=ensemble["batch_size"], lr=ensemble["lr"],
                       lane_width=min(ensemble["lane_width"], settings(opt)["test_models"]),
                       bf16=ensemble["bf16"])  # fmt: skip


def test_sigmas(
    x: np.ndarray, y: np.ndarray, num_classes: int, ensemble: dict, train_sigma: np.ndarray,
    sets: dict[str, np.ndarray], opt: dict, base_sigma: float, seed: int, device: torch.device,
    checkpoint_dir=None,
) -> tuple[dict[str, np.ndarray], dict]:  # fmt: skip
    """σ_x of every point of each test set in ``sets`` (e.g. clean, triggered), by the
    ascent with a test-scoring ensemble of ``test_models`` models trained here on (x, y)
    with the per-example σ ``train_sigma`` as the M models are, from the root seed
    ``(seed, "test-scorer")``: none of the M models (root ``seed``) scores a test point."""
    opt = settings(opt)
    cfg = scorer_config(ensemble, opt, base_sigma)
    root = derive_seed(seed, "test-scorer")
    states, stats, timing = train_partition(
        x, y, lanes(opt["test_models"], cfg.lane_width), root, cfg, num_classes, str(device), train_sigma,
        checkpoint_dir,
    )  # fmt: skip
    shape = next(iter(sets.values())).shape[1:]
    scorer = _scorer(states, sorted(states), cfg.arch, shape, num_classes, cfg.lane_width, device)
    scfg = sigma_config(opt, "test")
    out, info = {}, {"stage": "test", "base_sigma": base_sigma, "sigma_opt": opt, "device": str(device), "sets": {},
                     "scorer": {"seed": root, "models": opt["test_models"], "train": cfg.to_dict(),
                                "per_model": stats}}  # fmt: skip
    LOG.info("test-scoring ensemble: %d models in %.1f s", len(states), timing["wall_s"])
    for name, pts in sets.items():
        sigma, wall = _ascend(
            scorer, pts, base_sigma, scfg, derive_seed(seed, "test-sigma", name), device, opt["batch_size"], name
        )
        out[name] = sigma
        info["sets"][name] = {"num_points": int(pts.shape[0]), "sigma": sigma_stats(sigma)}
        LOG.info("test σ (%s, %d points): ascent %.1f s on %s", name, pts.shape[0], wall, device)
    info["ascent"] = _ascent_settings(scfg)
    return out, info

