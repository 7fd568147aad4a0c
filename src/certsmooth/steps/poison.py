"""Step ``poison``: a poisoned training set and a triggered test set (backdoor,
availability attacks and the no-poison control), by the builder of the attack's kind."""

from __future__ import annotations

from certsmooth.attacks.builders import builder
from certsmooth.attacks.store import build_record, write_poisoned
from certsmooth.attacks.triggers import make_trigger
from certsmooth.data.prepared import load_prepared
from certsmooth.logs import LOG


def run(*, train: str, test: str, attack: dict, seed: int, experiment: str, out_dir: str) -> None:
    """``attack``: the attack block (its ``kind`` chooses the builder, :mod:`certsmooth.attacks.builders`)."""
    train_set, test_set = load_prepared(train), load_prepared(test)
    trigger = make_trigger(attack.get("trigger"))
    poisoned, triggered = builder(attack["kind"])(train_set, test_set, trigger, attack, seed)
    record = build_record(experiment, attack, seed, trigger, train_set, test_set, poisoned, triggered)
    write_poisoned(out_dir, record, trigger, train_set, test_set, poisoned, triggered)
    tr = record["train"]
    LOG.info(
        "%s: %d/%d training points poisoned with %s; norms %s; stacked norm %.4f (√m·δ = %s); %s clipped",
        experiment, tr["num_poisons"], tr["num_examples"], trigger.spec(), tr["perturbation_norm"],
        tr["stacked_norm"], tr["sqrt_m_times_nominal"], tr["num_clipped"],
    )  # fmt: skip
