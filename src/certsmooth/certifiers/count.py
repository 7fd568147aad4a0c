"""The count certificates: Deep Partition Aggregation (Levine & Feizi, ICLR 2021, arXiv
2006.14768: k models on the partitions of a content hash), Finite Aggregation (Wang, Levine &
Feizi, ICML 2022, arXiv 2202.02628: k·d models, each sample in d subsets) and bagging (Jia,
Cao & Gong, AAAI 2021, arXiv 2008.04495: N models on subsamples of k drawn with replacement).
Base models on subsets of the poisoned training set, one certification run per cell, a
certificate that counts poisoned samples (figure axis ``poisons``).

Rules: ``workflow/rules/count.smk``; steps ``train-count``, ``certify-count``; mathematics:
:mod:`certsmooth.subsets.rows`, :mod:`certsmooth.subsets`, :mod:`certsmooth.certificates.dpa`,
:mod:`certsmooth.certificates.fa`, :mod:`certsmooth.certificates.bagging`."""

from __future__ import annotations

import math
import os

from certsmooth.certifiers.base import Cell, Certifier, Data, fits, one_run
from certsmooth.errors import ConfigError

_TRAIN = ("method", "k", "arch", "epochs", "batch_size", "lr", "lane_width")
STAGES = {
    "dpa": {"train": ("count", _TRAIN), "certify": ("count", ("method", "k", "arch", "radii"))},
    "fa": {"train": ("count", (*_TRAIN, "d")), "certify": ("count", ("method", "k", "d", "arch", "radii"))},
    "bagging": {
        "train": ("count", (*_TRAIN, "models")),
        "certify": ("count", ("method", "k", "models", "arch", "radii", "alpha", "alpha_over_points", "r_max")),
    },
}


# Folders below the cell's, spelled with the rules' wildcards
MODEL = "count/{ntag}"  # the base models, a file pair per training job: part{part}of{parts}.{safetensors,json}
RUN = "count/{ntag}/{nrun}"  # the certificate: clean.csv, triggered.csv, summary.json


def num_models(cell: Cell) -> int:
    """Base models of a count certifier: k (DPA), k·d (FA), N (bagging)."""
    from certsmooth.subsets.rows import num_models

    return num_models(cell.cfg["certifier"], cell.cfg["count"])


def paths(cell: Cell) -> dict:
    """``weights``/``manifests``: the base models in their jobs' files; ``run``: the certificate's
    folder, e.g. ``.../count/dpa-k10-mnist_cnn-e20-b128-lr0.001-W10-s0/certify``."""
    c, kind = cell.cfg["count"], cell.cfg["certifier"]
    size = {"dpa": f"k{c['k']}", "fa": f"k{c['k']}-d{c['d']}", "bagging": f"N{c['models']}-k{c['k']}"}[kind]
    ntag = f"{kind}-{size}-{c['arch']}-e{c['epochs']}-b{c['batch_size']}-lr{c['lr']:g}-W{c['lane_width']}-s{cell.seed}"
    model = f"{cell.results_dir()}/{MODEL.format(ntag=ntag)}"
    stems = [f"{model}/part{i}of{c['jobs']}" for i in range(c["jobs"])]
    nrun = "certify"
    if kind == "bagging":
        nrun += f"-a{c['alpha']:g}{'-pts' if c['alpha_over_points'] else ''}-r{c['r_max']}"
    run = f"{cell.results_dir()}/{RUN.format(ntag=ntag, nrun=nrun)}"
    return {"weights": [f"{s}.safetensors" for s in stems], "manifests": [f"{s}.json" for s in stems], "run": run}


def targets(cell: Cell) -> list[str]:
    return cell.paths["weights"] + cell.paths["manifests"]


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


def check_sizes(kind: str, count: dict, models: int, n_train: int | None, numbers: int, limit: int | None = None
                ) -> None:  # fmt: skip
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
    parts = count["jobs"]
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
                              "count.jobs")  # fmt: skip
        raise ConfigError(f"count.jobs = {parts}: a training job would hold {per_job} models of ≈ "
                          f"{numbers / 1e6:.2f} M numbers, ≈ {gib:.1f} GiB, more than this machine's {have:.1f} GiB; "
                          "raise count.jobs (or lower count.lane_width)")  # fmt: skip


def check(cell: Cell, data: Data) -> None:
    from certsmooth.models.inputs import model_numbers

    c, models = cell.cfg["count"], num_models(cell)
    fits("count", c["arch"], data, models, c["lane_width"], c["jobs"])
    check_sizes(cell.cfg["certifier"], c, models, data.n_train, model_numbers(c["arch"], len(data.classes)))


CERTIFIERS = tuple(
    Certifier(kind, label, rank, ("count",), "poisons", STAGES[kind], paths, one_run, targets, check)
    for kind, label, rank in (("dpa", "DPA", 40), ("fa", "FA", 50), ("bagging", "Bagging", 60))
)
