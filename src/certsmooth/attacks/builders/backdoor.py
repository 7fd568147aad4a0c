"""The all-to-one dirty-label backdoor (RAB / Cert-SSB protocol, :mod:`certsmooth.attacks.poison`)."""

from __future__ import annotations

from certsmooth.attacks.poison import poison_training_set, trigger_test_set


def build(train, test, trigger, attack: dict, seed: int):
    target = int(attack["target"])
    poisoned = poison_training_set(train, trigger, float(attack["rate"]), target, seed)
    return poisoned, trigger_test_set(test, trigger, target)


BUILDERS = {"backdoor": build}
