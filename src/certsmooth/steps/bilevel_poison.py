"""Step ``bilevel-poison``: Mehra et al.'s clean-label poisons of the target class."""

from __future__ import annotations

import numpy as np

from certsmooth.attacks.bilevel import BilevelConfig, bilevel_poison, linf_norms
from certsmooth.attacks.poison import NO_TARGET, PoisonedTrain, perturbation_norms, trigger_test_set
from certsmooth.attacks.store import build_record, write_poisoned
from certsmooth.attacks.triggers import NoTrigger
from certsmooth.data.prepared import load_prepared
from certsmooth.logs import LOG


def run(*, train: str, test: str, attack: dict, sigma: float, seed: int, experiment: str, device: str,
        out_dir: str) -> None:  # fmt: skip
    """``attack``: the attack entry (kind bilevel, target, epsilon, bilevel block);
    ``sigma``: the attack's smoothing σ; ``device`` replaces the block's own."""
    b = {k: v for k, v in attack["bilevel"].items() if k != "device"}  # where it runs is ``device``
    cfg = BilevelConfig(**{**b, "sigma": sigma, "epsilon": float(attack["epsilon"])})
    train_set, test_set = load_prepared(train), load_prepared(test)
    target = int(attack["target"])
    x = train_set.floats()
    res = bilevel_poison(x, train_set.y, target, cfg, seed, train_set.num_classes, device)
    clean = x[res.index]
    poisoned_x = x.copy()
    poisoned_x[res.index] = res.poisons
    poisoned = PoisonedTrain(poisoned_x, train_set.y.copy(), train_set.y.copy(), res.index,
                             perturbation_norms(clean, res.poisons))  # fmt: skip
    trigger = NoTrigger()
    triggered = trigger_test_set(test_set, trigger, NO_TARGET)  # no test-time trigger
    record = build_record(experiment, attack, seed, trigger, train_set, test_set, poisoned, triggered)
    linf = linf_norms(res.poisons, clean)
    record["bilevel"] = {
        "config": cfg.to_dict(), "device": device, "target": target, "linf": {"min": float(linf.min()),
        "max": float(linf.max()), "mean": float(linf.mean())}, "stats": res.stats, "history": res.history,
        "shared_by": "every experiment of the suite with the same attack, dataset and seed",
    }  # fmt: skip
    write_poisoned(out_dir, record, trigger, train_set, test_set, poisoned, triggered)
    LOG.info("bilevel poisons: %d images of class %d, max |δ|∞ %.4f (ε %.3g), mean ‖δ‖₂ %.3f; %.0f s, %d steps",
             len(res.index), target, linf.max(), cfg.epsilon, float(np.mean(poisoned.perturbation_norm)),
             res.stats["wall_s"], res.stats["steps"])  # fmt: skip
