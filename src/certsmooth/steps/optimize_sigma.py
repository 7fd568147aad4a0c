"""Step ``optimize-sigma``: Cert-SSB's per-sample noise scales of the training points (with
the pilot ensemble that scores them) or of the clean and triggered test points (with a
test-scoring ensemble trained here, independent of the certified models)."""

from __future__ import annotations

from typing import Literal

from certsmooth.artifacts import load_sigma, removed_on_failure, save_npz, sha256_array, write_json
from certsmooth.attacks.store import load_poisoned_train
from certsmooth.device import resolve_device
from certsmooth.errors import ConfigError
from certsmooth.logs import LOG
from certsmooth.models.files import save_models
from certsmooth.smoothing import certssb
from certsmooth.smoothing.resume import remove_checkpoints

NEEDS = {
    "train": ("out_pilot", "out_pilot_manifest"),
    "test": ("train_sigma", "clean_test", "triggered_test"),
}


def run(*, stage: Literal["train", "test"], train: str, ensemble: dict, sigma_opt: dict, sigma: float, seed: int,
        experiment: str, device: str, out: str, out_info: str, out_pilot: str | None = None,
        out_pilot_manifest: str | None = None, checkpoint_dir: str | None = None, train_sigma: str | None = None,
        clean_test: str | None = None, triggered_test: str | None = None) -> None:  # fmt: skip
    given = locals()
    missing = ["--" + k.replace("_", "-") for k in NEEDS[stage] if not given[k]]
    if missing:
        raise ConfigError(f"optimize-sigma --stage {stage} needs {', '.join(missing)}")
    ens, opt = ensemble, certssb.settings(sigma_opt)
    dev = resolve_device(device)
    data = load_poisoned_train(train)
    num_classes = len(data.class_names)
    if stage == "train":
        sig, states, info = certssb.train_sigmas(
            data.x, data.y, num_classes, ens, opt, sigma, seed, dev, checkpoint_dir
        )
        info.update(experiment=experiment, data_sha256=sha256_array(data.x, data.y),
                    sigma_sha256=sha256_array(sig))  # fmt: skip
        pilot_manifest = {
            "experiment": experiment, "purpose": "Cert-SSB pilot ensemble (training-sample sigma)",
            "seed": info["pilot"]["seed"], "num_models": opt["pilot_models"], "train": info["pilot"]["train"],
            "num_classes": num_classes, "input_shape": list(data.x.shape[1:]), "data_sha256": info["data_sha256"],
            "per_model": info["pilot"]["per_model"],
        }  # fmt: skip
        outputs = [out, out_info, out_pilot, out_pilot_manifest]
        save_models(out_pilot, out_pilot_manifest, states, pilot_manifest)
        with removed_on_failure(outputs):
            save_npz(out, train=sig)
        LOG.info("train σ: %s", info["sigma"])
    else:
        from certsmooth.attacks.store import load_triggered_test
        from certsmooth.data.prepared import load_prepared

        train_sig = load_sigma(train_sigma, "train", data.y.size)
        sets = {
            "clean": load_prepared(clean_test).floats(),
            "triggered": load_triggered_test(triggered_test).x,
        }
        sigmas, info = certssb.test_sigmas(
            data.x, data.y, num_classes, ens, train_sig, sets, opt, sigma, seed, dev, checkpoint_dir
        )
        info.update(experiment=experiment, data_sha256=sha256_array(data.x, data.y),
                    train_sigma_sha256=sha256_array(train_sig))  # fmt: skip
        outputs = [out, out_info]
        save_npz(out, **sigmas)
        LOG.info("test σ: %s", {k: v["sigma"] for k, v in info["sets"].items()})
    with removed_on_failure(outputs):
        write_json(out_info, info)
    remove_checkpoints(checkpoint_dir)  # every output is saved: the pilot's (scorer's) checkpoints are done
