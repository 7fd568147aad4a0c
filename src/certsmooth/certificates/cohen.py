"""Test-time randomized smoothing: Cohen et al.'s PREDICT and CERTIFY (ICML 2019, arXiv 1902.02918).

The smoothed classifier g(x) = argmax_c P[f(x + ε) = c], ε ~ N(0, σ²I), is evaluated by
sampling the base classifier's **hard** predictions on noisy copies of x:

* CERTIFY: n0 selection samples choose ĉ_A; n fresh estimation samples count n_A; p_A,low
  is the one-sided Clopper–Pearson lower bound at level α; abstain if p_A,low < 0.5, else
  radius σ·Φ⁻¹(p_A,low) (the special case p_B,up = 1 − p_A,low of the general bound).
  The selection sample is never reused for the bound.
* PREDICT: n samples; abstain unless the two-sided binomial test of the top two counts
  (n1 of n1 + n2 at p = 0.5) has p-value ≤ α.

Noise copy j of test point i in phase ``select``/``estimate``/``predict`` is the
counter-based normal of :mod:`certsmooth.noise` keyed by (seed, i, phase) at
row j, so a point's certificate does not depend on the batch size, on the chunk it is
certified in, or on the other points (Cohen's code draws from the global RNG).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtri  # scipy.stats.norm.ppf, bit for bit (certificates/bounds.py)

from certsmooth import schema
from certsmooth.certificates.bounds import ABSTAIN, clopper_pearson
from certsmooth.models import predictions
from certsmooth.noise import standard_normal
from certsmooth.seeding import derive_seed

_D = schema.defaults("cohen")  # the only copy of these defaults: the params schema


@dataclass(frozen=True)
class CohenConfig:
    sigma: float
    n0: int = _D["n0"]
    n: int = _D["n"]
    alpha: float = _D["alpha"]
    batch: int = _D["batch"]

    def __post_init__(self):
        bad_sigma = not math.isfinite(self.sigma) or self.sigma <= 0
        if bad_sigma or self.n0 < 1 or self.n < 1 or self.batch < 1 or not 0 < self.alpha < 1:
            raise ValueError(f"invalid CERTIFY settings {self}")


@torch.no_grad()
def sample_counts(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, num: int, sigma: float, key: int,
    num_classes: int, batch: int,
) -> np.ndarray:  # fmt: skip
    """Per-class counts of ``model``'s hard predictions on ``num`` noisy copies of ``x``
    (C, H, W); copy j's noise is the counter-based normal of ``key`` at row j."""
    counts = np.zeros(num_classes, dtype=np.int64)
    keys = torch.tensor([key], dtype=torch.int64, device=x.device)
    dim = x.numel()
    for start in range(0, num, batch):
        rows = torch.arange(start, min(start + batch, num), device=x.device)
        noise = standard_normal(keys, rows, dim)[0].reshape(len(rows), *x.shape)
        logits = model(x[None] + sigma * noise)
        counts += np.bincount(predictions(logits).cpu().numpy(), minlength=num_classes)
    return counts


@dataclass
class CohenCertificate:
    predict: int  # class or ABSTAIN
    radius: float
    n_a: int
    p_a_low: float
    selected: int  # ĉ_A from the selection sample


def certify_point(
    model, x: torch.Tensor, idx: int | str, cfg: CohenConfig, seed: int, num_classes: int
) -> CohenCertificate:
    """CERTIFY for test point ``idx`` (its index keys its noise)."""
    counts0 = sample_counts(model, x, cfg.n0, cfg.sigma, derive_seed(seed, "cohen", idx, "select"), num_classes,
                            cfg.batch)  # fmt: skip
    c_a = int(counts0.argmax())
    counts = sample_counts(model, x, cfg.n, cfg.sigma, derive_seed(seed, "cohen", idx, "estimate"), num_classes,
                           cfg.batch)  # fmt: skip
    n_a = int(counts[c_a])
    p_a_low = float(clopper_pearson(np.array([n_a]), cfg.n, cfg.alpha)[0][0])
    if p_a_low < 0.5:
        return CohenCertificate(ABSTAIN, 0.0, n_a, p_a_low, c_a)
    return CohenCertificate(c_a, float(cfg.sigma * ndtri(p_a_low)), n_a, p_a_low, c_a)


def predict_point(model, x: torch.Tensor, idx: int | str, cfg: CohenConfig, seed: int, num_classes: int) -> int:
    """PREDICT with ``cfg.n`` samples: the top class, or ABSTAIN if the binomial test of the
    top two counts is not significant at level α."""
    counts = sample_counts(model, x, cfg.n, cfg.sigma, derive_seed(seed, "cohen", idx, "predict"), num_classes,
                           cfg.batch)  # fmt: skip
    order = np.argsort(-counts, kind="stable")
    n1, n2 = int(counts[order[0]]), int(counts[order[1]]) if num_classes > 1 else 0
    from scipy.stats import binomtest  # here: the merge and CERTIFY-only jobs skip scipy.stats' import

    if binomtest(n1, n1 + n2, 0.5).pvalue > cfg.alpha:
        return ABSTAIN
    return int(order[0])


@torch.no_grad()
def certify_rows(
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, rows: np.ndarray, cfg: CohenConfig, seed: int,
    num_classes: int, device: torch.device,
) -> pd.DataFrame:  # fmt: skip
    """CERTIFY and PREDICT (n = ``cfg.n``) for the points ``rows`` of one test set, and the
    base classifier's prediction on the clean input. One row per point."""
    model = model.to(device).eval()
    out = []
    for i in rows:
        xi = torch.from_numpy(np.ascontiguousarray(x[i])).to(device)
        c = certify_point(model, xi, int(i), cfg, seed, num_classes)
        base = int(predictions(model(xi[None]))[0])
        out.append(
            {
                "idx": int(i),
                "label": int(y[i]),
                "top": c.selected,
                "predict": c.predict,
                "n_a": c.n_a,
                "p_a_low": c.p_a_low,
                "radius": c.radius,
                "predict_only": predict_point(model, xi, int(i), cfg, seed, num_classes),
                "base_predict": base,
            }
        )
    return pd.DataFrame(out, columns=["idx", "label", "top", "predict", "n_a", "p_a_low", "radius", "predict_only",
                                      "base_predict"])  # fmt: skip


def chunk_rows(
    num_points: int, skip: int, chunk: int, chunks: int, labels: np.ndarray | None = None, classes=None
) -> np.ndarray:
    """Test points of ``chunk`` (of ``chunks``): every ``skip``-th point (of those whose
    label is in ``classes``, when given), split into contiguous, nearly equal runs."""
    pts = np.arange(num_points)
    if classes is not None:
        pts = pts[np.isin(labels, classes)]
    pts = pts[::skip]
    bounds = np.linspace(0, len(pts), chunks + 1).round().astype(int)
    return pts[bounds[chunk] : bounds[chunk + 1]]
