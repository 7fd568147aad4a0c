"""The ``certify`` step: load the partitions, check them against the data, certify the
clean and the triggered test set in one scope, write per-point CSVs and a summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from certsmooth.artifacts import atomic_path, read_json, sha256_array, write_json
from certsmooth.attacks.store import load_poisoned_train, load_triggered_test
from certsmooth.certify.ensemble import certify_points, model_probabilities, per_model_accuracy
from certsmooth.data.prepared import load_prepared
from certsmooth.errors import CorruptFileError
from certsmooth.metrics import summarize
from certsmooth.smoothing.checkpoint import check_manifest, load_partition
from certsmooth.smoothing.train import resolve_device


def load_ensemble(weights, manifests, data_sha256: str, seed: int, sigma: float, ensemble: dict):
    """All M models' states and their test-noise keys, after consistency checks."""
    states, per_model = {}, []
    for w, m in zip(weights, manifests, strict=True):
        s, man = load_partition(w, m)
        check_manifest(man, w, data_sha256=data_sha256, seed=seed, num_models=ensemble["models"])
        check_manifest(man["train"], w, sigma=sigma, arch=ensemble["arch"], lane_width=ensemble["lane_width"])
        states.update(s)
        per_model += man["per_model"]
    if sorted(states) != list(range(ensemble["models"])):
        raise CorruptFileError(
            f"the partitions {list(weights)} hold models {sorted(states)[:3]}..., "
            f"expected 0..{ensemble['models'] - 1}; delete them and rerun the workflow"
        )
    return states, {p["model"]: p["test_noise"] for p in per_model}


def point_frame(c, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "idx": np.arange(len(y)),
            "label": y,
            "top": c.top,
            "predict": c.predict,
            "p_a": c.p_a,
            "p_b": c.p_b,
            "p_a_low": c.p_a_low,
            "p_b_up": c.p_b_up,
            "radius": c.radius,
        }
    )
    frame["abstain"] = frame["predict"] == -1
    frame["correct"] = frame["predict"] == frame["label"]
    return frame


def certify_experiment(
    *, weights, manifests, train_path, record_path, clean_test_path, triggered_test_path, ensemble: dict,
    certify: dict, scope: str, sigma: float, seed: int, experiment: str, out_clean, out_triggered, out_summary,
) -> dict:  # fmt: skip
    train = load_poisoned_train(train_path)
    states, test_keys = load_ensemble(weights, manifests, sha256_array(train.x, train.y), seed, sigma, ensemble)
    record = read_json(record_path)
    clean = load_prepared(clean_test_path)
    trig = load_triggered_test(triggered_test_path)
    device = resolve_device(ensemble["device"])
    num_classes = len(train.class_names)
    stacked = float(record["train"]["stacked_norm"])

    def run(x, y):
        probs = model_probabilities(
            states, test_keys, ensemble["arch"], num_classes, x, sigma, scope, ensemble["lane_width"], device
        )
        return point_frame(certify_points(probs, certify["alpha"], sigma, certify["aggregation"]), y), probs

    clean_frame, clean_probs = run(clean.floats(), clean.y)
    trig_frame, _ = run(trig.x, trig.y)
    trig_frame["nontarget"] = trig.nontarget
    trig_frame["trigger_norm"] = trig.perturbation_norm
    # the deployed attack's size in this scope's geometry
    deployed = np.sqrt(stacked**2 + (trig.perturbation_norm**2 if scope == "joint" else 0.0))
    trig_frame["deployed_norm"] = deployed
    trig_frame["certified_vs_attack"] = trig_frame["correct"] & (trig_frame["radius"] > deployed)

    model_acc = per_model_accuracy(clean_probs, clean.y)
    summary = summarize(
        clean_frame, trig_frame[trig_frame["nontarget"]], certify["radii"], certify["radius_cmp"], trig.target
    )
    m = record["train"]["num_poisons"]
    summary.update(
        {
            "experiment": experiment,
            "scope": scope,
            "aggregation": certify["aggregation"],
            "alpha": certify["alpha"],
            "sigma": sigma,
            "num_models": ensemble["models"],
            "radius_cmp": certify["radius_cmp"],
            "deployed_attack": {
                "num_poisons": m,
                "stacked_train_norm": stacked,
                "covered": "feature perturbation of the poisons"
                + (" and of the test trigger" if scope == "joint" else " (at the triggered input)"),
                "not_covered": f"{m} label flips to the target label (dirty-label relabelling)",
            },
            "per_model_clean_accuracy": {
                "mean": float(model_acc.mean()),
                "min": float(model_acc.min()),
                "max": float(model_acc.max()),
            },
            # a model that does no better than always answering one class
            "collapsed_models": int(np.sum(model_acc <= np.bincount(clean.y).max() / len(clean.y) + 1e-9)),
        }
    )
    for frame, out in ((clean_frame, out_clean), (trig_frame, out_triggered)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.8g")
    write_json(out_summary, summary)
    return summary
