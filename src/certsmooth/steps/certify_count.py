"""Step ``certify-count``: a count certifier's votes on the clean and triggered test sets,
its certificate per point (DPA's or FA's ρ̄, bagging's r*), the per-point CSVs and the
summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from certsmooth.artifacts import atomic_path, read_json, sha256_array
from certsmooth.attacks.store import load_poisoned_train, load_triggered_test
from certsmooth.certificates import bagging, dpa, fa
from certsmooth.data.prepared import load_prepared
from certsmooth.device import resolve_device
from certsmooth.errors import CorruptFileError
from certsmooth.logs import LOG
from certsmooth.metrics import per_class, summarize
from certsmooth.models import lane_votes
from certsmooth.models.files import check_manifest, load_models
from certsmooth.summary import write_summary

WHAT = {
    "dpa": "ρ̄: training samples inserted or deleted (a modified sample counts 2)",
    "fa": "ρ̄: training samples inserted or deleted (a modified sample counts 2)",
    "bagging": "r*: training samples modified, deleted or inserted",
}


def stream_votes(weights: list[str], manifests: list[str], count: dict, seed: int, data_sha: str,
                 inputs: dict[str, np.ndarray], device) -> tuple[dict[str, np.ndarray], dict]:  # fmt: skip
    """(points, models) hard votes of every base model on each of ``inputs``, one training
    job's weights in memory at a time (a certifier of 38,400 FA models needs no more memory
    than its largest job); and the first job's manifest."""
    out: dict[str, np.ndarray] = {}
    seen: list[int] = []
    first = None
    for w, m in zip(weights, manifests, strict=True):
        states, man = load_models(w, m)
        check_manifest(man, w, m, kind=count["method"], seed=seed, data_sha256=data_sha)
        check_manifest(man["train"], w, m, arch=count["arch"])
        first = first or man
        if not out:
            out = {name: np.full((len(x), first["num_models"]), -1, dtype=np.int64) for name, x in inputs.items()}
        ids = sorted(states)
        if ids[-1] >= first["num_models"]:
            raise CorruptFileError(f"{w}: holds model {ids[-1]} of a certifier with {first['num_models']} models; "
                                   "delete it and rerun the workflow")  # fmt: skip
        for name, x in inputs.items():
            out[name][:, ids] = lane_votes(states, ids, count["arch"], man["input_shape"], man["num_classes"], x,
                                      man["train"]["lane_width"], device)  # fmt: skip
        seen += ids
        del states
    if sorted(seen) != list(range(first["num_models"])):
        raise CorruptFileError(f"{weights[0]}...: the files hold models {sorted(seen)[:5]}..., not all "
                               f"{first['num_models']}; delete them and rerun the workflow")  # fmt: skip
    return out, first


def certificates(kind: str, preds: np.ndarray, labels: np.ndarray, count: dict, manifest: dict, n_train: int,
                 num_points: int, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(prediction, certificate, abstain) per point."""
    if kind == "dpa":
        pred, cert = dpa.certify(dpa.vote_counts(preds, num_classes), labels)
        return pred, cert, np.zeros(len(pred), dtype=bool)
    if kind == "fa":
        shifts = np.asarray(manifest["subsets"]["shifts"])
        pred, cert = fa.certify(preds, num_classes, count["k"], count["d"], shifts, labels)
        return pred, cert, np.zeros(len(pred), dtype=bool)
    alpha = count["alpha"] / num_points if count["alpha_over_points"] else count["alpha"]
    pred, cert = bagging.certify(dpa.vote_counts(preds, num_classes), alpha, n_train, count["k"], count["r_max"])
    abstain = cert < 0  # r* = −1 before the labels: p_A,low ≤ p_B,up, the bagged classifier abstains
    return pred, np.where(pred == labels, cert, dpa.NOT_CERTIFIED), abstain


def run(*, weights: list[str], manifests: list[str], train: str, record: str, clean_test: str, triggered_test: str,
        count: dict, seed: int, experiment: str, device: str, out_clean: str, out_triggered: str,
        out_summary: str) -> None:  # fmt: skip
    kind = count["method"]
    data = load_poisoned_train(train)
    clean, trig = load_prepared(clean_test), load_triggered_test(triggered_test)
    dev = resolve_device(device)
    inputs = {"clean": clean.floats(), "triggered": trig.x}
    all_votes, man = stream_votes(weights, manifests, count, seed, sha256_array(data.x, data.y), inputs, dev)
    rec = read_json(record)
    m = int(rec["train"]["num_poisons"])
    per_poison = 2 if kind in ("dpa", "fa") else 1  # a modified sample: 1 deletion + 1 insertion for DPA/FA
    need = per_poison * m
    frames = {}
    points = clean.y.size + trig.y.size
    for name, y in (("clean", clean.y), ("triggered", trig.y)):
        p = all_votes[name]
        pred, cert, abstain = certificates(kind, p, y, count, man, len(data.y), points, man["num_classes"])
        correct = (pred == y) & ~abstain
        f = pd.DataFrame({"index": np.arange(len(y)), "label": y, "top": pred, "abstain": abstain,
                          "correct": correct, "radius": np.where(correct, cert, 0),
                          "certificate": cert, "votes_top": (p == pred[:, None]).sum(1)})  # fmt: skip
        f["certified_vs_attack"] = correct & (cert >= need)
        if name == "triggered":
            f.insert(1, "nontarget", trig.nontarget)
        frames[name] = f
    scored = frames["triggered"][frames["triggered"]["nontarget"]]
    summary = summarize(frames["clean"], scored, count["radii"], "ge", trig.target)
    summary.update({
        "experiment": experiment, "method": kind, "scope": kind, "aggregation": "votes",
        "alpha": count["alpha"] if kind == "bagging" else None, "sigma": None, "num_models": man["num_models"],
        "radius_cmp": "ge", "radius": WHAT[kind],
        # the ceiling: the certificate of a unanimous vote (0 where even that certifies nothing: a
        # bagging ensemble too small for its α); per_poison: what one poison costs in it
        "max_radius": max(0.0, float(certificates(kind, np.zeros((1, man["num_models"]), dtype=np.int64),
                                                  np.zeros(1, np.int64), count, man, len(data.y), points,
                                                  man["num_classes"])[1][0])),
        "per_poison": per_poison,
        "median_certificate_clean": float(np.median(frames["clean"]["certificate"])),
        "median_certificate_triggered": float(np.median(scored["certificate"])) if len(scored) else float("nan"),
        "subsets": man["subsets"],
        "per_class_clean": per_class(frames["clean"], count["radii"], "ge"),
        "deployed_attack": {
            "num_poisons": m, "stacked_train_norm": float(rec["train"]["stacked_norm"]), "needed": need,
            "covered": f"the {m} poisons as whole samples (image and label): certified if the certificate ≥ {need}",
            "not_covered": "nothing of the training-set poisoning; the test-time trigger is the deployed input",
        },
    })  # fmt: skip
    if kind == "bagging":
        summary["alpha_per_point"] = count["alpha"] / points if count["alpha_over_points"] else count["alpha"]
    for frame, out in ((frames["clean"], out_clean), (frames["triggered"], out_triggered)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False)
    write_summary(out_summary, summary)
    LOG.info("%s %s: clean acc %.3f, median certificate %.1f, certified vs attack %.3f (needs ≥ %d)", experiment,
             kind, summary["clean_accuracy"], summary["median_certificate_clean"],
             summary["certified_vs_deployed_attack"], need)  # fmt: skip
