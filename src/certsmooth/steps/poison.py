"""Step ``poison``: a poisoned training set and a triggered test set (backdoor,
availability attacks and the no-poison control)."""

from __future__ import annotations

from certsmooth.attacks.boundary import poison_boundary
from certsmooth.attacks.kinds import ATTACKS
from certsmooth.attacks.poison import NO_TARGET, poison_availability, poison_training_set, trigger_test_set
from certsmooth.attacks.store import build_record, write_poisoned
from certsmooth.attacks.triggers import make_trigger
from certsmooth.data.prepared import load_prepared
from certsmooth.errors import ConfigError
from certsmooth.logs import LOG


def run(*, train: str, test: str, attack: dict, seed: int, experiment: str, out_dir: str) -> None:
    train_set, test_set = load_prepared(train), load_prepared(test)
    trigger = make_trigger(attack.get("trigger"))
    kind = attack.get("kind", "backdoor")
    if kind == "bilevel":
        raise ConfigError("attack.kind = 'bilevel': the bilevel attack is run by `certsmooth bilevel-poison`")
    if kind == "backdoor":
        poisoned = poison_training_set(train_set, trigger, float(attack["rate"]), int(attack["target"]), seed)
        triggered = trigger_test_set(test_set, trigger, int(attack["target"]))
    elif kind == "avail_boundary":
        poisoned = poison_boundary(
            train_set,
            trigger,
            float(attack["rate"]),
            float(attack["offset"]),
            seed,
            attack.get("boundary_classes"),
            bool(attack.get("shared_sources", False)),
        )
        triggered = trigger_test_set(test_set, trigger, NO_TARGET)
    else:
        split = ATTACKS[kind].setting(attack, "split_classes")
        poisoned = poison_availability(train_set, trigger, kind, float(attack.get("rate", 0.0)), seed, split)
        triggered = trigger_test_set(test_set, trigger, NO_TARGET)
    record = build_record(experiment, attack, seed, trigger, train_set, test_set, poisoned, triggered)
    write_poisoned(out_dir, record, trigger, train_set, test_set, poisoned, triggered)
    tr = record["train"]
    LOG.info(
        "%s: %d/%d training points poisoned with %s; norms %s; stacked norm %.4f (√m·δ = %s); %s clipped",
        experiment, tr["num_poisons"], tr["num_examples"], trigger.spec(), tr["perturbation_norm"],
        tr["stacked_norm"], tr["sqrt_m_times_nominal"], tr["num_clipped"],
    )  # fmt: skip
