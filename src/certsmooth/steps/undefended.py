"""Step ``undefended``: the control column: one model trained on the whole poisoned training
set (the count certifiers' trainer), its predictions on the clean and triggered test sets and
their summary: accuracy and attack success, with no certificate (every radius 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from certsmooth.artifacts import atomic_path, read_json, sha256_array
from certsmooth.attacks.store import load_poisoned_train, load_triggered_test
from certsmooth.data.prepared import load_prepared
from certsmooth.device import resolve_device
from certsmooth.logs import LOG
from certsmooth.metrics import per_class, summarize
from certsmooth.models import lane_votes
from certsmooth.models.files import save_models
from certsmooth.subsets.rows import content_order
from certsmooth.subsets.train import SubsetTrainConfig, train_subsets
from certsmooth.summary import write_summary


def run(*, train: str, record: str, clean_test: str, triggered_test: str, model: dict, seed: int, experiment: str,
        device: str, out_model: str, out_manifest: str, out_clean: str, out_triggered: str,
        out_summary: str) -> None:  # fmt: skip
    """``model``: arch, epochs, batch_size, lr of the one model."""
    cfg = SubsetTrainConfig(arch=model["arch"], epochs=model["epochs"], batch_size=model["batch_size"],
                            lr=model["lr"], lane_width=1)  # fmt: skip
    data = load_poisoned_train(train)
    rows = content_order(data.x, data.y, np.arange(len(data.y)))  # the order of the set's content, not its file
    states, stats, timing = train_subsets(data.x, data.y, {0: rows}, seed, cfg, len(data.class_names), device)
    LOG.info("trained on %d images in %.1f s on %s", len(rows), timing["wall_s"], timing["device"])
    shape, classes = list(data.x.shape[1:]), len(data.class_names)
    save_models(out_model, out_manifest, states, {
        "experiment": experiment, "kind": "undefended", "seed": seed, "num_models": 1, "train": cfg.to_dict(),
        "num_classes": classes, "input_shape": shape, "data_sha256": sha256_array(data.x, data.y),
        "per_model": stats, "device": timing["device"]})  # fmt: skip
    clean, trig = load_prepared(clean_test), load_triggered_test(triggered_test)
    dev = resolve_device(device)
    poisons = read_json(record)["train"]
    m = int(poisons["num_poisons"])
    frames = {}
    for name, x, y in (("clean", clean.floats(), clean.y), ("triggered", trig.x, trig.y)):
        top = lane_votes(states, [0], cfg.arch, shape, classes, x, 1, dev)[:, 0]
        correct = top == y
        f = pd.DataFrame({"index": np.arange(len(y)), "label": y, "top": top, "abstain": False, "correct": correct,
                          "radius": 0, "certified_vs_attack": correct & (m == 0)})  # fmt: skip
        if name == "triggered":
            f.insert(1, "nontarget", trig.nontarget)
        frames[name] = f
    scored = frames["triggered"][frames["triggered"]["nontarget"]]
    summary = summarize(frames["clean"], scored, [0], "ge", trig.target)
    summary.update({
        "experiment": experiment, "method": "undefended", "scope": "undefended", "aggregation": "none",
        "alpha": None, "sigma": None, "num_models": 1, "radius_cmp": "ge",
        "radius": "none: an undefended model certifies nothing (radius 0 for every point)",
        "per_class_clean": per_class(frames["clean"], [0], "ge"),
        "deployed_attack": {
            "num_poisons": m, "stacked_train_norm": float(poisons["stacked_norm"]), "needed": m,
            "covered": "nothing (no defence); with no poison, every correct point",
            "not_covered": "the poisons and the test-time trigger",
        },
    })  # fmt: skip
    for frame, out in ((frames["clean"], out_clean), (frames["triggered"], out_triggered)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False)
    write_summary(out_summary, summary)
    LOG.info("%s: clean accuracy %.3f, attack success %.3f", experiment, summary["clean_accuracy"],
             summary["attack_success_rate"])  # fmt: skip
