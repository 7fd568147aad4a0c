"""The decision boundary through the corners trigger (:mod:`certsmooth.attacks.boundary`)."""

from __future__ import annotations

from certsmooth.attacks.boundary import poison_boundary
from certsmooth.attacks.poison import NO_TARGET, trigger_test_set


def build(train, test, trigger, attack: dict, seed: int):
    poisoned = poison_boundary(train, trigger, float(attack["rate"]), float(attack["offset"]), seed,
                               attack.get("boundary_classes"), bool(attack.get("shared_sources", False)))  # fmt: skip
    return poisoned, trigger_test_set(test, trigger, NO_TARGET)


BUILDERS = {"avail_boundary": build}
