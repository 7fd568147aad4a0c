"""What the three count certifiers (DPA, Finite Aggregation, bagging) share: base models on
subsets of the poisoned training set (rules: count.smk; library: data/partition.py,
aggregation/, certify/dpa.py, certify/fa.py, certify/bagging.py), one certification run per
cell, a certificate that counts poisoned samples (figure axis ``poisons``)."""

from __future__ import annotations

import math
import os

from certsmooth.certifiers.base import Experiment
from certsmooth.errors import ConfigError


def runs(exp: Experiment) -> list[tuple[str, str]]:
    return [(exp.certifier_name, exp.count_certify_dir())]


def targets(exp: Experiment) -> list[str]:
    weights, manifests = exp.count_model_files()
    return weights + manifests


def physical_memory() -> int:
    """Bytes of memory of this machine (where the workflow is parsed)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def job_memory(count: dict, models: int, per_job: int, numbers: int, subset: int | None) -> tuple[int, int]:
    """(bytes, of which subsets' rows) a training job of ``per_job`` of the ``models`` base
    models holds, models of ``numbers`` float32 values and subsets of about ``subset``
    rows: the trained models' weights until saved, a lane's weights, gradients and Adam
    moments, and each model's rows with their 16-byte content keys (activations not
    counted). The certification job streams the same weights one job at a time."""
    weights = 4 * numbers * (per_job + 4 * min(count["lane_width"], per_job))
    rows = 24 * per_job * (subset or 0)
    return weights + rows, rows


def check(kind: str, count: dict, models: int, n_train: int | None, numbers: int, limit: int | None = None) -> None:
    """Before any job: the count certifier's sizes fit the clean training set (when its size
    is known) and a training job fits this machine's memory; ConfigError naming the key."""
    if n_train is not None:
        k = count["k"]
        if kind == "fa" and k * count["d"] > n_train:
            raise ConfigError(f"count.k = {k}, d = {count['d']}: k·d = {k * count['d']} subsets for {n_train} training "
                              f"samples; choose k·d ≤ {n_train}")  # fmt: skip
        if k > n_train:
            what = "samples per subsample" if kind == "bagging" else "partitions"
            raise ConfigError(f"count.k = {k}: more {what} than the {n_train} training samples; choose k ≤ {n_train}")
    parts = count["partitions"]
    per_job = math.ceil(math.ceil(models / count["lane_width"]) / parts) * count["lane_width"]
    per_job = min(per_job, models)
    subset = count["k"] if kind == "bagging" else (math.ceil(n_train / count["k"]) if n_train else None)
    need, rows = job_memory(count, models, per_job, numbers, subset)
    limit = physical_memory() if limit is None else limit
    if need > limit:
        gib, have = need / 2**30, limit / 2**30
        if rows > need / 2:
            raise ConfigError(f"count.k = {count['k']}: a training job would hold the rows of {per_job} subsamples of "
                              f"{count['k']} (N·k = {models * count['k']:,} draws in all), ≈ {gib:.1f} GiB, more "
                              f"than this machine's {have:.1f} GiB; lower count.k or count.models, or raise "
                              "count.partitions")  # fmt: skip
        raise ConfigError(f"count.partitions = {parts}: a training job would hold {per_job} models of ≈ "
                          f"{numbers / 1e6:.2f} M numbers, ≈ {gib:.1f} GiB, more than this machine's {have:.1f} GiB; "
                          "raise count.partitions (or lower count.lane_width)")  # fmt: skip
