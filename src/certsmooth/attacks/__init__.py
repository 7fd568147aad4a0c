"""Attacks: backdoor triggers and poisoned-set generation."""

from certsmooth.attacks.poison import PoisonedTrain, TriggeredTest, poison_training_set, trigger_test_set
from certsmooth.attacks.triggers import TRIGGERS, Trigger, make_trigger

__all__ = [
    "TRIGGERS",
    "PoisonedTrain",
    "Trigger",
    "TriggeredTest",
    "make_trigger",
    "poison_training_set",
    "trigger_test_set",
]
