"""Cohen et al.'s per-point table from its CERTIFY chunks, and the largest radius CERTIFY
can give (Cohen et al., ICML 2019, arXiv 1902.02918).

The sampling itself is :mod:`certsmooth.certificates.cohen`; this module needs no torch, so the
merge job (``merge-cohen``) starts in a fraction of a second instead of paying torch's
import (about 2 s per job on the development machine).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri  # scipy.stats.norm.ppf, bit for bit (certificates/bounds.py)

import certsmooth.certificates.checks as checks
from certsmooth.certificates.bounds import ABSTAIN
from certsmooth.errors import ConfigError


def max_radius(sigma: float, n: int, alpha: float) -> float:
    """The largest CERTIFY radius: n_A = n gives p_A,low = α^(1/n)."""
    checks.scale(sigma)
    checks.integer(n, "n", 1)
    checks.alpha(alpha)
    return float(sigma * ndtri(alpha ** (1.0 / n)))


def merge_chunks(frames: list[pd.DataFrame], nontarget: np.ndarray, trigger_norm: np.ndarray):
    """Chunk tables (column ``set`` = clean | triggered) → the clean and triggered frames
    in the format of the ensemble certifiers (so suite figures and tables take both)."""
    frames = [f for f in frames if len(f)]  # a chunk past the last point is header-only (its types unknown)
    if not frames:
        raise ConfigError("cohen: no chunk holds a test point (skip and classes leave none); lower skip")
    allp = pd.concat(frames, ignore_index=True).sort_values(["set", "idx"], kind="stable")
    if allp.duplicated(["set", "idx"]).any():
        raise ValueError("chunks overlap: a test point appears twice")
    out = {}
    for name in ("clean", "triggered"):
        f = allp[allp["set"] == name].drop(columns="set").reset_index(drop=True)
        f["abstain"] = f["predict"] == ABSTAIN
        f["correct"] = f["predict"] == f["label"]
        f["predict_only_abstain"] = f["predict_only"] == ABSTAIN
        out[name] = f
    trig = out["triggered"]
    trig["nontarget"] = nontarget[trig["idx"].to_numpy()]
    trig["trigger_norm"] = trigger_norm[trig["idx"].to_numpy()]
    # Cohen's certificate is about the test input with the training set as given: it says
    # nothing about the poisons, so no point is "certified against the deployed attack"
    trig["certified_vs_attack"] = np.nan
    return out["clean"], trig
