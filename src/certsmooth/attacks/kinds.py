"""The attacks of the attack × certifier matrix: a registry of attack kinds (torch-free).

Each kind declares the ``params.yaml`` keys it takes, the workflow step that builds its
poisoned training set and triggered test set (``poison`` or ``bilevel_poison``), how its
effect is measured (on triggered vs clean inputs of the poisoned model, or on the target
class against the clean baseline model) and how tables and figures name it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AttackKind:
    kind: str
    keys: frozenset[str]  # allowed keys besides `kind`
    step: str  # the rule that builds it: "poison" or "bilevel_poison"
    effect: str  # "inputs": triggered vs clean inputs; "target_class": target class vs the baseline model
    label: Callable[[dict], str]


def _trigger_name(a: dict) -> str:
    return a["trigger"]["name"]


ATTACKS: dict[str, AttackKind] = {
    k.kind: k
    for k in (
        AttackKind("backdoor", frozenset({"rate", "target", "trigger"}), "poison", "inputs",
                   lambda a: f"backdoor: {_trigger_name(a)} {100 * a['rate']:g}%"),
        AttackKind("avail_uniform", frozenset({"rate", "trigger"}), "poison", "inputs",
                   lambda a: f"availability (uniform) {100 * a['rate']:g}%"),
        AttackKind("avail_split", frozenset({"rate", "split_classes", "trigger"}), "poison", "inputs",
                   lambda a: f"availability (split) {100 * a['rate']:g}%"),
        AttackKind("avail_boundary", frozenset({"rate", "offset", "boundary_classes", "shared_sources", "trigger"}),
                   "poison", "inputs",
                   lambda a: f"availability (boundary) {100 * a['rate']:g}%"),
        AttackKind("none", frozenset({"trigger"}), "poison", "inputs",
                   lambda a: f"control: {_trigger_name(a)} trigger only" if "trigger" in a else "clean"),
        AttackKind("bilevel", frozenset({"target", "epsilon", "bilevel"}), "bilevel_poison", "target_class",
                   lambda a: f"bilevel vs {a['bilevel']['victim']} (ε={a['epsilon']:g})"),
        AttackKind("avail_bilevel", frozenset({"rate", "trigger", "epsilon", "bilevel"}), "bilevel_poison", "inputs",
                   lambda a: f"availability (bilevel, {a['bilevel']['objective']}) {100 * a['rate']:g}%"),
    )
}  # fmt: skip


def attack_label(attack: dict) -> str:
    return ATTACKS[attack["kind"]].label(attack)
