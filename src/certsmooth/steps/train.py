"""Step ``train``: one partition of a smoothed ensemble (RAB / Wang et al.; Cert-SSB with
per-example noise scales), saved with its manifest."""

from __future__ import annotations

from certsmooth.artifacts import load_sigma, sha256_array
from certsmooth.attacks.store import load_poisoned_train
from certsmooth.lanes import job_lanes
from certsmooth.logs import LOG
from certsmooth.models.files import save_models
from certsmooth.smoothing.resume import remove_checkpoints
from certsmooth.smoothing.train import TrainConfig, train_partition


def run(*, train: str, ensemble: dict, sigma: float, seed: int, part: int, parts: int, experiment: str,
        device: str, out: str, manifest: str, sample_sigma: str | None = None,
        checkpoint_dir: str | None = None) -> None:  # fmt: skip
    """``ensemble``: the certifier's ensemble settings (models, lane_width, arch, epochs,
    batch_size, lr, bf16, method); ``sample_sigma``: Cert-SSB's train_sigma.npz."""
    ens = ensemble
    cfg = TrainConfig(
        arch=ens["arch"], sigma=sigma, epochs=ens["epochs"], batch_size=ens["batch_size"], lr=ens["lr"],
        lane_width=ens["lane_width"], bf16=ens["bf16"],
    )  # fmt: skip
    data = load_poisoned_train(train)
    part_lanes = job_lanes(ens["models"], ens["lane_width"], parts)[part]
    LOG.info("partition %d/%d: models %s in lanes of %d; %s", part, parts, part_lanes, cfg.lane_width, cfg)
    per_example, sigma_sha = None, None
    if sample_sigma:
        per_example = load_sigma(sample_sigma, "train", data.y.size)
        sigma_sha = sha256_array(per_example)
        LOG.info("per-example noise scales from %s: min %.4f, max %.4f", sample_sigma, per_example.min(),
                 per_example.max())  # fmt: skip
    states, stats, timing = train_partition(
        data.x, data.y, part_lanes, seed, cfg, len(data.class_names), device, per_example, checkpoint_dir,
    )  # fmt: skip
    LOG.info("trained %d models in %.1f s (%.0f sample-steps/s on %s)", len(states), timing["wall_s"],
             timing["sample_steps_per_s"], timing["device"])  # fmt: skip
    record = {
        "experiment": experiment,
        "seed": seed,
        "partition": part,
        "partitions": parts,
        "num_models": ens["models"],
        "train": cfg.to_dict(),
        "num_classes": len(data.class_names),
        "input_shape": list(data.x.shape[1:]),
        "data_sha256": sha256_array(data.x, data.y),
        "method": ens["method"],
        "sample_sigma_sha256": sigma_sha,
        "per_model": stats,
        "device": timing["device"],
    }
    save_models(out, manifest, states, record)
    remove_checkpoints(checkpoint_dir)
