"""Step ``train-count``: one job's share of a count certifier's base models (DPA partitions,
FA subsets or bagging subsamples of the poisoned training set), saved with the subsets'
record."""

from __future__ import annotations

import numpy as np

from certsmooth.artifacts import sha256_array
from certsmooth.attacks.store import load_poisoned_train
from certsmooth.lanes import job_lanes, step_lanes
from certsmooth.logs import LOG
from certsmooth.models.files import save_models
from certsmooth.subsets import rows
from certsmooth.subsets.train import SubsetTrainConfig, train_subsets


def subsets_of(kind: str, x: np.ndarray, y: np.ndarray, count: dict, seed: int, models: list[int],
               hashes: np.ndarray | None = None) -> tuple[dict[int, np.ndarray], dict]:  # fmt: skip
    """The training rows of the base models ``models``, and what defines every model's rows
    (recorded in the manifest). A job orders (and bagging draws) only its own models' rows:
    memory and hashing grow with the job's share, not with N·k."""
    if kind == "dpa":
        subsets = rows.dpa_partitions(x, y, count["k"], models, hashes)
        defined = {"k": count["k"], "hash": "sum of 8-bit values mod k"}
    elif kind == "fa":
        shifts = rows.fa_shifts(count["k"], count["d"], seed)
        subsets = rows.fa_subsets(x, y, count["k"], count["d"], shifts, models, hashes)
        defined = {"k": count["k"], "d": count["d"], "shifts": shifts.tolist(), "hash": "sum of 8-bit values mod k·d"}
    else:
        draws = rows.bagging_subsets(len(x), count["models"], count["k"], seed, models)
        return ({m: rows.content_order(x, y, np.sort(d)) for m, d in zip(models, draws, strict=True)},
                {"k": count["k"], "models": count["models"]})  # fmt: skip
    return dict(zip(models, subsets, strict=True)), defined


def run(*, train: str, count: dict, seed: int, part: int, parts: int, experiment: str, device: str, out: str,
        manifest: str) -> None:  # fmt: skip
    """``count``: the certifier's settings (method = its kind, k, d or models, training)."""
    kind = count["method"]
    cfg = SubsetTrainConfig(arch=count["arch"], epochs=count["epochs"], batch_size=count["batch_size"],
                            lr=count["lr"], lane_width=count["lane_width"])  # fmt: skip
    data = load_poisoned_train(train)
    total = rows.num_models(kind, count)
    hashes = None if kind == "bagging" else rows.content_hash(data.x)  # once: the lane plan and the subsets
    plan = step_lanes(rows.subset_sizes(kind, data.x, count, seed, hashes), cfg.batch_size, cfg.lane_width)
    my_lanes = job_lanes(total, cfg.lane_width, parts, plan)[part]
    mine = sorted(m for lane in my_lanes for m in lane)
    subsets, defined = subsets_of(kind, data.x, data.y, count, seed, mine, hashes)
    LOG.info("%s: %d of %d models (job %d/%d) in lanes %s, subset sizes %s", kind, len(mine), total, part, parts,
             my_lanes, [len(subsets[m]) for m in mine])  # fmt: skip
    states, stats, timing = train_subsets(data.x, data.y, subsets, seed, cfg, len(data.class_names), device, my_lanes)
    LOG.info("trained %d models in %.1f s (%.0f sample-steps/s on %s)", len(states), timing["wall_s"],
             timing["sample_steps_per_s"], timing["device"])  # fmt: skip
    record = {
        "experiment": experiment, "kind": kind, "seed": seed, "partition": part, "partitions": parts,
        "num_models": total, "subsets": defined, "train": cfg.to_dict(), "num_classes": len(data.class_names),
        "input_shape": list(data.x.shape[1:]), "data_sha256": sha256_array(data.x, data.y), "per_model": stats,
        "device": timing["device"],
    }  # fmt: skip
    save_models(out, manifest, states, record)
