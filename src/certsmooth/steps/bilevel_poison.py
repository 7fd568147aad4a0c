"""Step ``bilevel-poison``: poisons built by Mehra et al.'s bilevel solver (ApproxGrad):
the clean-label poisons of a target class (``bilevel``), or triggered availability poisons
(``avail_bilevel``: the ``avail_uniform`` poisons refined within ε)."""

from __future__ import annotations

import numpy as np

from certsmooth.attacks.bilevel import BilevelConfig, bilevel_poison, linf_norms, mehra_plan, trigger_plan
from certsmooth.attacks.poison import (
    NO_TARGET,
    PoisonedTrain,
    availability_poisons,
    perturbation_norms,
    trigger_test_set,
)
from certsmooth.attacks.store import build_record, write_poisoned
from certsmooth.attacks.triggers import NoTrigger, make_trigger
from certsmooth.data.prepared import load_prepared
from certsmooth.logs import LOG


def run(*, train: str, test: str, attack: dict, sigma: float, seed: int, experiment: str, device: str,
        out_dir: str) -> None:  # fmt: skip
    """``attack``: the attack entry (kind bilevel: target, epsilon, bilevel block; kind
    avail_bilevel: trigger, rate, epsilon, bilevel block); ``sigma``: the attack's smoothing
    σ; ``device`` replaces the block's own."""
    b = {k: v for k, v in attack["bilevel"].items() if k != "device"}  # where it runs is ``device``
    cfg = BilevelConfig(**{**b, "sigma": sigma, "epsilon": float(attack["epsilon"])})
    train_set, test_set = load_prepared(train), load_prepared(test)
    x, y = train_set.floats(), train_set.y
    if attack["kind"] == "avail_bilevel":
        trigger = make_trigger(attack["trigger"])
        # avail_uniform's rows and labels for the same seed and rate
        rows, labels = availability_poisons("avail_uniform", y.size, train_set.num_classes, attack["rate"], seed)
        plan, target = trigger_plan(x, y, trigger, rows, labels, cfg.keep_trigger), NO_TARGET
    else:
        trigger, target = NoTrigger(), int(attack["target"])
        plan = mehra_plan(x, y, target)
    res = bilevel_poison(x, y, target, cfg, seed, train_set.num_classes, device, plan=plan)
    clean = x[res.index]
    poisoned_x = x.copy()
    poisoned_x[res.index] = res.poisons
    poisoned_y = y.copy()
    poisoned_y[res.index] = plan.labels
    poisoned = PoisonedTrain(poisoned_x, poisoned_y, y.copy(), res.index, perturbation_norms(clean, res.poisons))
    triggered = trigger_test_set(test_set, trigger, NO_TARGET)  # (bilevel: NoTrigger, the clean test set)
    record = build_record(experiment, attack, seed, trigger, train_set, test_set, poisoned, triggered)
    linf = linf_norms(res.poisons, plan.start)  # from the starting point: the clean image, or the triggered one
    record["bilevel"] = {
        "config": cfg.to_dict(), "device": device, "target": None if target == NO_TARGET else target,
        "linf": {"min": float(linf.min()), "max": float(linf.max()), "mean": float(linf.mean())},
        "stats": res.stats, "history": res.history,
        "shared_by": "every experiment of the suite with the same attack, dataset and seed",
    }  # fmt: skip
    if target == NO_TARGET:  # ℓ∞ is measured from the triggered image the poison started at
        record["bilevel"]["start"] = "the triggered images: avail_uniform's rows, trigger and labels"
    write_poisoned(out_dir, record, trigger, train_set, test_set, poisoned, triggered)
    LOG.info("bilevel poisons: %d images, max |u − start|∞ %.4f (ε %.3g), mean ‖u − x‖₂ %.3f; %.0f s, %d steps",
             len(res.index), linf.max(), cfg.epsilon, float(np.mean(poisoned.perturbation_norm)),
             res.stats["wall_s"], res.stats["steps"])  # fmt: skip
