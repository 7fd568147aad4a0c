"""The availability attacks of the Lorenz et al. reconstruction (uniform and split labels) and
the trigger-only control (:mod:`certsmooth.attacks.poison`): no target, every triggered test
point counts."""

from __future__ import annotations

from certsmooth.attacks.kinds import ATTACKS
from certsmooth.attacks.poison import NO_TARGET, poison_availability, trigger_test_set


def build(train, test, trigger, attack: dict, seed: int):
    kind = attack["kind"]
    split = ATTACKS[kind].setting(attack, "split_classes")
    poisoned = poison_availability(train, trigger, kind, float(attack.get("rate", 0.0)), seed, split)
    return poisoned, trigger_test_set(test, trigger, NO_TARGET)


BUILDERS = {"avail_uniform": build, "avail_split": build, "none": build}
