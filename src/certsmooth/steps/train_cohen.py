"""Step ``train-cohen``: Cohen et al.'s base classifier (Gaussian augmentation, MACER or
SmoothAdv) on the poisoned set, saved with its manifest."""

from __future__ import annotations

from certsmooth.artifacts import sha256_array
from certsmooth.attacks.store import load_poisoned_train
from certsmooth.logs import LOG
from certsmooth.models.files import save_models
from certsmooth.smoothing.ga import GAConfig, train_gaussian
from certsmooth.smoothing.resume import remove_checkpoints


def run(*, train: str, cohen: dict, sigma: float, seed: int, experiment: str, device: str, out: str,
        manifest: str, checkpoint_dir: str | None = None) -> None:  # fmt: skip
    """``cohen``: the certifier's training settings (arch, epochs, batch_size, lr,
    train_method and that method's block)."""
    c = cohen
    cfg = GAConfig(arch=c["arch"], sigma=sigma, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"],
                   method=c["train_method"], **{m: c[m] for m in ("macer", "smoothadv") if m in c})  # fmt: skip
    data = load_poisoned_train(train)
    state, stats = train_gaussian(data.x, data.y, cfg, seed, len(data.class_names), device, checkpoint_dir)
    LOG.info("trained the %s model in %.1f s on %s; %s", cfg.method, stats.pop("wall_s"), stats["device"],
             stats)  # fmt: skip
    record = {
        "experiment": experiment, "purpose": f"Cohen et al. base classifier ({cfg.method} training)",
        "seed": seed, "train": cfg.to_dict(), "num_classes": len(data.class_names),
        "input_shape": list(data.x.shape[1:]), "data_sha256": sha256_array(data.x, data.y), "stats": stats,
    }  # fmt: skip
    save_models(out, manifest, {0: state}, record)
    remove_checkpoints(checkpoint_dir)
