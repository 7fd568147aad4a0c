"""Step ``merge-cohen``: the CERTIFY chunks of a Cohen cell merged into its per-point CSVs
and its summary."""

from __future__ import annotations

import pandas as pd

from certsmooth.artifacts import atomic_path, read_json
from certsmooth.attacks.store import load_triggered_test
from certsmooth.certificates.cohen_merge import max_radius, merge_chunks
from certsmooth.metrics import per_class, summarize
from certsmooth.summary import write_summary


def summary(clean: pd.DataFrame, triggered: pd.DataFrame, cohen: dict, sigma: float, record: dict,
            target: int, experiment: str) -> dict:  # fmt: skip
    """The cell's summary.json: the common certification fields of
    :func:`certsmooth.metrics.summarize` and Cohen's own (PREDICT, base accuracy, n0, n)."""
    c = cohen
    scored = triggered[triggered["nontarget"]]
    out = summarize(clean, scored, c["radii"], "ge", target)
    m = record["train"]["num_poisons"]
    out.update(
        {
            "experiment": experiment,
            "method": "cohen",
            "train_method": c["train_method"],
            "scope": "cohen",
            "aggregation": "cohen",
            "alpha": c["alpha"],
            "sigma": sigma,
            "num_models": 1,
            "radius_cmp": "ge",
            "radius": "σ·Φ⁻¹(p_A,low): perturbations of the test input, training set as given",
            "n0": c["n0"],
            "n": c["n"],
            "max_radius": max_radius(sigma, c["n"], c["alpha"]),
            "predict": {
                "abstain_rate_clean": float(clean["predict_only_abstain"].mean()),
                "abstain_rate_triggered": float(scored["predict_only_abstain"].mean()),
                "accuracy_clean": float((clean["predict_only"] == clean["label"]).mean()),
                "accuracy_triggered": float((scored["predict_only"] == scored["label"]).mean()),
            },
            "per_class_clean": per_class(clean, c["radii"], "ge"),
            "base_accuracy_clean": float((clean["base_predict"] == clean["label"]).mean()),
            "base_accuracy_triggered": float((scored["base_predict"] == scored["label"]).mean()),
            "deployed_attack": {
                "num_poisons": m,
                "stacked_train_norm": float(record["train"]["stacked_norm"]),
                "covered": "nothing of the poisoning: the certificate is about the test input",
                "not_covered": f"the {m} poisons (features and labels)",
            },
        }
    )
    return out


def run(*, chunks: list[str], record: str, triggered_test: str, cohen: dict, sigma: float, experiment: str,
        out_clean: str, out_triggered: str, out_summary: str) -> None:  # fmt: skip
    trig = load_triggered_test(triggered_test)
    clean, triggered = merge_chunks([pd.read_csv(p) for p in chunks], trig.nontarget, trig.perturbation_norm)
    result = summary(clean, triggered, cohen, sigma, read_json(record), trig.target, experiment)
    for frame, out in ((clean, out_clean), (triggered, out_triggered)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.10g")
    write_summary(out_summary, result)
