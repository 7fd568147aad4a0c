"""Step ``certify``: the clean and triggered test points of one scope, certified by a trained
smoothed ensemble (RAB / Wang et al., Cert-SSB): load the jobs' models, check them against the data, certify the
clean and the triggered test set in one scope, write per-point CSVs and a summary.

One code path serves RAB (one σ everywhere) and Cert-SSB (σᵢ per training example, σ_x
per test point): the bounds give the whitened radius R̃ (unit-variance noise), and

* the reported ℓ2 radius is s·R̃ with s = min σᵢ (scope ``train``) or min(min σᵢ, σ_x)
  (scope ``joint``), i.e. σ·R̃ for RAB;
* the deployed attack is certified iff √(Σ_poisons ‖δᵢ‖²/σᵢ² [+ ‖δ_x‖²/σ_x²]) < R̃;
* Cert-SSB's joint-scope regions then go through the storage update (test-input space,
  dataset order; DDRS, Alfarra et al., arXiv 2012.04351), which may trim radii or align labels.

See :mod:`certsmooth.certificates.anisotropic` for the derivation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from certsmooth.artifacts import atomic_path, read_json, sha256_array
from certsmooth.attacks.store import load_poisoned_train, load_triggered_test
from certsmooth.certificates.anisotropic import (
    RELEASED_CODE_N,
    RELEASED_CODE_UNSOUND,
    released_code_radius,
    whitened_norm,
)
from certsmooth.certificates.bounds import max_whitened_radius
from certsmooth.certificates.ensemble import certify_points, model_probabilities, per_model_accuracy
from certsmooth.certificates.memory import storage_update
from certsmooth.data.prepared import load_prepared
from certsmooth.device import resolve_device
from certsmooth.errors import ConfigError, CorruptFileError, check_positive
from certsmooth.logs import LOG
from certsmooth.metrics import certified_accuracy, per_class, summarize
from certsmooth.models.files import check_manifest, load_models
from certsmooth.summary import write_summary

CERTSSB_CAVEAT = (
    "Cert-SSB radii hold for perturbations of the training set and test input with the noise "
    "scales held fixed; the scales were optimised on the deployed (poisoned) data and the "
    "test input, and that dependence is not covered (Súkeník et al., arXiv 2110.05365)"
)


def load_ensemble(weights, manifests, data_sha256: str, seed: int, sigma: float, ensemble: dict,
                  sample_sigma_sha256: str | None = None):  # fmt: skip
    """All M models' states, their test-noise keys and their manifests' per-model records
    (seeds), after consistency checks."""
    states, per_model = {}, []
    for w, m in zip(weights, manifests, strict=True):
        s, man = load_models(w, m)
        check_manifest(man, w, m, data_sha256=data_sha256, seed=seed, num_models=ensemble["models"])
        check_manifest(man, w, m, sample_sigma_sha256=sample_sigma_sha256)
        check_manifest(man["train"], w, m, sigma=sigma, arch=ensemble["arch"], lane_width=ensemble["lane_width"])
        states.update(s)
        per_model += man["per_model"]
    if sorted(states) != list(range(ensemble["models"])):
        raise CorruptFileError(
            f"the files {list(weights)} hold models {sorted(states)[:3]}..., "
            f"expected 0..{ensemble['models'] - 1}; delete them and rerun the workflow"
        )
    return states, {p["model"]: p["test_noise"] for p in per_model}, per_model


def check_scorer_independent(info: dict, ensemble_per_model: list[dict], where: str) -> dict:
    """Refuse σ_x scored by any of the certified models (a shared initialisation or
    training-noise seed); return what the summary records: who tunes, who estimates."""
    scorer = info.get("scorer")
    if not scorer:
        raise CorruptFileError(f"{where}: test σ without a test-scoring ensemble (an older certsmooth scored it with "
                               "the certified models); delete it and rerun the workflow")  # fmt: skip
    keys = ("init", "shuffle", "train_noise")
    tuned = {(k, p[k]) for p in scorer["per_model"] for k in keys}
    certified = {(k, p[k]) for p in ensemble_per_model for k in keys}
    if tuned & certified:
        raise CorruptFileError(f"{where}: the test-scoring ensemble shares seeds with the certified models; delete it "
                               "and rerun the workflow")  # fmt: skip
    return {"tuned_by": f"test-scoring ensemble of {scorer['models']} models (root seed {scorer['seed']})",
            "estimated_by": f"the {len(ensemble_per_model)} certified models", "disjoint": True}  # fmt: skip


def point_frame(c, y: np.ndarray, sigma_x: np.ndarray, scale: np.ndarray, joint: bool) -> pd.DataFrame:
    """Per-point certificates before any storage update: ``radius`` = ``scale``·R̃ (any
    perturbation), ``radius_test_input`` = σ_x·R̃ (test input alone; ``joint`` scope only)."""
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
            "sigma_x": sigma_x,
            "r_tilde": c.radius,
            "predict_pre_memory": c.predict,
            "radius_pre_memory": scale * c.radius,
            "radius_test_input_pre_memory": sigma_x * c.radius if joint else np.nan,
            "memory": "none",
            "r_tilde_post": c.radius,
        }
    )
    _finish_frame(frame, scale)
    return frame


def _finish_frame(frame: pd.DataFrame, scale) -> None:
    frame["radius"] = scale * frame["r_tilde_post"]
    frame["radius_test_input"] = frame["sigma_x"] * frame["r_tilde_post"]
    frame.loc[frame["radius_test_input_pre_memory"].isna(), "radius_test_input"] = np.nan
    frame["abstain"] = frame["predict"] == -1
    frame["correct"] = frame["predict"] == frame["label"]


def apply_memory(frame: pd.DataFrame, x: np.ndarray, scale) -> dict:
    """Storage update (in place) in dataset order over the regions {x' : ‖x' − x‖ < σ_x·R̃}
    of the test input; a trimmed region scales R̃, and with it every reported radius."""
    pre = frame["radius_test_input_pre_memory"].to_numpy()
    mem = storage_update(x, frame["predict_pre_memory"].to_numpy(), pre)
    certified = frame["predict_pre_memory"].to_numpy() >= 0
    frame["predict"] = np.where(certified, mem.label, -1)
    ratio = np.where(certified & (pre > 0), mem.radius / np.where(pre > 0, pre, 1.0), 0.0)
    frame["r_tilde_post"] = frame["r_tilde"] * np.clip(ratio, 0.0, 1.0)
    frame["memory"] = mem.action
    _finish_frame(frame, scale)
    counts = pd.Series(mem.action).value_counts()
    return {
        "order": "dataset order",
        "order_sha256": mem.order_sha256,
        **{a: int(counts.get(a, 0)) for a in ("kept", "trimmed", "aligned", "abstained")},
        "stored": int(mem.stored.sum()),
    }


def _sigma_summary(v: np.ndarray) -> dict:
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:  # e.g. the poisons of a control run without poisons
        return {"min": None, "mean": None, "max": None}
    return {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())}


def certify_experiment(
    *, weights, manifests, train_path, record_path, clean_test_path, triggered_test_path, ensemble: dict,
    certify: dict, scope: str, sigma: float, seed: int, experiment: str, out_clean, out_triggered, out_summary,
    train_sigma_path=None, test_sigma_path=None, device: str = "auto",
) -> dict:  # fmt: skip
    from certsmooth.artifacts import load_sigma

    check_positive(sigma=sigma)
    method = ensemble.get("method", "rab")
    ssb = method == "certssb"
    if ssb and not (train_sigma_path and test_sigma_path):
        raise ConfigError("ensemble.method = 'certssb' needs --train-sigma and --test-sigma (optimize-sigma outputs)")
    train = load_poisoned_train(train_path)
    n = train.y.size
    train_sigma = load_sigma(train_sigma_path, "train", n) if ssb else np.full(n, sigma)
    states, test_keys, per_model = load_ensemble(
        weights, manifests, sha256_array(train.x, train.y), seed, sigma, ensemble,
        sha256_array(train_sigma) if ssb else None,
    )  # fmt: skip
    record = read_json(record_path)
    clean = load_prepared(clean_test_path)
    trig = load_triggered_test(triggered_test_path)
    if ssb:
        from pathlib import Path

        sx_clean = load_sigma(test_sigma_path, "clean", clean.y.size)
        sx_trig = load_sigma(test_sigma_path, "triggered", trig.y.size)
        info_path = Path(test_sigma_path).with_suffix(".json")
        sigma_x_models = check_scorer_independent(read_json(info_path), per_model, str(info_path))
    else:
        sx_clean, sx_trig = np.full(clean.y.size, sigma), np.full(trig.y.size, sigma)
    device = resolve_device(device)
    num_classes = len(train.class_names)
    stacked = float(record["train"]["stacked_norm"])
    s_train = float(train_sigma.min())  # the smallest training-noise scale bounds any training perturbation
    # the deployed poisons in whitened coordinates: Σ ‖δᵢ‖²/σᵢ² over the poisoned examples
    w_train = whitened_norm(train.perturbation_norm, train_sigma[train.poison_index])

    def run(x, y, sx):
        probs = model_probabilities(
            states, test_keys, ensemble["arch"], num_classes, x, sx, scope, ensemble["lane_width"], device
        )
        scale = np.full(len(y), s_train) if scope == "train" else np.minimum(s_train, sx)
        c = certify_points(probs, certify["alpha"], 1.0, certify["aggregation"])  # radius = R̃
        frame = point_frame(c, y, sx, scale, scope == "joint")
        memory = apply_memory(frame, x, scale) if ssb and scope == "joint" else None
        return frame, probs, memory

    clean_x = clean.floats()
    clean_frame, clean_probs, clean_memory = run(clean_x, clean.y, sx_clean)
    trig_frame, _, trig_memory = run(trig.x, trig.y, sx_trig)
    trig_frame["nontarget"] = trig.nontarget
    trig_frame["trigger_norm"] = trig.perturbation_norm
    # the deployed attack's size in this scope's geometry: plain ℓ2 and whitened
    joint = scope == "joint"
    trig_frame["deployed_norm"] = np.sqrt(stacked**2 + (trig.perturbation_norm**2 if joint else 0.0))
    # (whitened: √(Σ‖δᵢ‖²/σᵢ² + ‖δ_x‖²/σ_x²), anisotropic.whitened_norm per point)
    trig_frame["deployed_whitened"] = np.sqrt(w_train**2 + ((trig.perturbation_norm / sx_trig) ** 2 if joint else 0.0))
    trig_frame["certified_vs_attack"] = trig_frame["correct"] & (
        trig_frame["deployed_whitened"] < trig_frame["r_tilde_post"]
    )

    released = None
    if ssb and scope == "train":  # the released code's number, beside the sound one (its noise is this scope's)
        released = {"what": RELEASED_CODE_UNSOUND, "hoeffding_n": RELEASED_CODE_N}
        for name, frame, x in (("clean", clean_frame, clean_x), ("triggered", trig_frame, trig.x)):
            probs = model_probabilities(
                states, test_keys, ensemble["arch"], num_classes, x, sigma, "train", ensemble["lane_width"], device
            )
            top, r = released_code_radius(probs.mean(0), sx_clean, certify["alpha"])
            frame["released_code_top"], frame["released_code_radius_unsound"] = top, r
            scored = frame if name == "clean" else frame[frame["nontarget"]]
            scored = scored.assign(correct=scored["released_code_top"] == scored["label"])  # the code's R > r
            released[f"certified_accuracy_{name}"] = {
                f"{q:g}": certified_accuracy(scored, q, "gt", "released_code_radius_unsound") for q in certify["radii"]
            }

    model_acc = per_model_accuracy(clean_probs, clean.y)
    r_tilde_max = max_whitened_radius(certify["aggregation"], certify["alpha"], num_classes, ensemble["models"])
    summary = summarize(
        clean_frame, trig_frame[trig_frame["nontarget"]], certify["radii"], certify["radius_cmp"], trig.target
    )
    m = record["train"]["num_poisons"]
    summary.update(
        {
            "experiment": experiment,
            "method": method,
            "scope": scope,
            "aggregation": certify["aggregation"],
            "alpha": certify["alpha"],
            "sigma": sigma,
            "num_models": ensemble["models"],
            "radius_cmp": certify["radius_cmp"],
            "radius": ("min σᵢ · R̃ (train scope)" if scope == "train" else "min(min σᵢ, σ_x) · R̃ (joint scope)")
            if ssb
            else "σ · R̃",  # fmt: skip
            "noise_scales": {
                "train": _sigma_summary(train_sigma),
                "train_poisons": _sigma_summary(train_sigma[train.poison_index]),
                "test_clean": _sigma_summary(sx_clean),
                "test_triggered": _sigma_summary(sx_trig),
            },
            "storage_update": {"clean": clean_memory, "triggered": trig_memory},
            "deployed_attack": {
                "num_poisons": m,
                "stacked_train_norm": stacked,
                "whitened_train_norm": float(w_train),
                # the largest radius any point can reach at this M and α (RAB's R_max): a stacked
                # norm beyond it is certified nowhere (Wang et al.'s negative result)
                "max_whitened_radius": r_tilde_max,
                "max_radius": r_tilde_max * (s_train if scope == "train" else min(s_train, float(sx_trig.max()))),
                "reachable": bool(w_train < r_tilde_max),
                "covered": "feature perturbation of the poisons"
                + (" and of the test trigger" if joint else " (at the triggered input)"),
                "not_covered": (
                    f"{m} label flips to the target label (dirty-label relabelling)"
                    if trig.target >= 0
                    else f"the label changes of the {m} poisons"
                ),
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
    # per true label, as Cohen's summaries: the bilevel attack's target-class metrics
    summary["per_class_clean"] = per_class(clean_frame, certify["radii"], certify["radius_cmp"])
    summary["max_radius"] = summary["deployed_attack"]["max_radius"]  # the ceiling of every radius
    if ssb:
        summary["caveat"] = CERTSSB_CAVEAT
        summary["sigma_x_models"] = sigma_x_models
    if released is not None:
        summary["released_code_unsound"] = released
    for frame, out in ((clean_frame, out_clean), (trig_frame, out_triggered)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.8g")
    write_summary(out_summary, summary)
    return summary


def run(*, weights: list[str], manifests: list[str], train: str, record: str, clean_test: str, triggered_test: str,
        ensemble: dict, certify: dict, scope: Literal["train", "joint"], sigma: float, seed: int, experiment: str,
        device: str, out_clean: str, out_triggered: str, out_summary: str, train_sigma: str | None = None,
        test_sigma: str | None = None) -> None:  # fmt: skip
    """``train``: the poisoned training set (its checksum is checked, the poisons' norms
    read); ``train_sigma`` / ``test_sigma``: Cert-SSB's noise scales."""
    summary = certify_experiment(
        weights=weights, manifests=manifests, train_path=train, record_path=record, clean_test_path=clean_test,
        triggered_test_path=triggered_test, ensemble=ensemble, certify=certify, scope=scope, sigma=sigma, seed=seed,
        experiment=experiment, device=device, train_sigma_path=train_sigma, test_sigma_path=test_sigma,
        out_clean=out_clean, out_triggered=out_triggered, out_summary=out_summary,
    )  # fmt: skip
    LOG.info(
        "%s scope %s: clean acc %.3f, cert acc@0 %.3f, ASR %.3f, certified vs attack %.3f",
        experiment, scope, summary["clean_accuracy"], summary["certified_accuracy_clean"]["0"],
        summary["attack_success_rate"], summary["certified_vs_deployed_attack"],
    )  # fmt: skip
