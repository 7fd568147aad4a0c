"""The attacks of the attack × certifier matrix: one record per attack kind (torch-free: the
workflow's parse reads them).

A record owns what the rest of the house asks about its kind: the ``params.yaml`` keys it takes
(each described in the schema's ``attack`` block) and those it requires, the defaults of the
keys it alone takes, the workflow step that builds its poisoned training set and triggered test
set (``poison`` or ``bilevel_poison``), the folder name of that set, its checks before any job
runs, its family (which decides how its effect is measured: :mod:`certsmooth.effects`) and how
tables and figures name it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from certsmooth.errors import ConfigError


def _no_check(attack: dict, data, trigger) -> None:
    return None


@dataclass(frozen=True)
class AttackKind:
    kind: str
    keys: frozenset[str]  # allowed keys besides `kind`
    required: tuple[str, ...]
    step: str  # the rule that builds it: "poison" or "bilevel_poison"
    family: str  # what its effect is measured by (certsmooth.effects): backdoor, availability, bilevel, control
    label: Callable[[dict], str]
    how: Callable[[dict], str]  # the attack's part of the poisoned set's folder name (after the trigger's)
    check: Callable[[dict, object, object], None] = _no_check  # (attack, certifiers.base.Data, trigger)
    defaults: dict = field(default_factory=dict)  # of the keys only this kind takes
    triggers: tuple[str, ...] = ()  # the trigger names it takes (empty: any)

    def schema(self) -> dict:
        """Its rule of the schema's ``attack`` block (:func:`certsmooth.config.load_schema`)."""
        then: dict = {"required": list(self.required)}
        if self.triggers:
            names = {"const": self.triggers[0]} if len(self.triggers) == 1 else {"enum": list(self.triggers)}
            then["properties"] = {"trigger": {"properties": {"name": names}}}
        return {"if": {"properties": {"kind": {"const": self.kind}}}, "then": then}

    def setting(self, attack: dict, key: str):
        """``attack[key]``, or this kind's default of it."""
        return attack.get(key, self.defaults.get(key))


def _trigger_name(a: dict) -> str:
    return a["trigger"]["name"]


def _check_target(attack: dict, data, trigger) -> None:
    n = len(data.classes)
    if attack["target"] >= n:
        raise ConfigError(f"attack.target = {attack['target']}: the task has {n} classes, so the target must be in "
                          f"0..{n - 1}")  # fmt: skip


def _check_split(attack: dict, data, trigger) -> None:
    a, b = ATTACKS["avail_split"].setting(attack, "split_classes")
    if a == b or max(a, b) >= len(data.classes):
        raise ConfigError(f"attack.split_classes = {[a, b]}: need two different labels in 0..{len(data.classes) - 1}")


def _check_boundary(attack: dict, data, trigger) -> None:
    from certsmooth.attacks.boundary import check_settings

    check_settings(trigger, attack["offset"], attack.get("boundary_classes"), len(data.classes))


def _check_bilevel(attack: dict, data, trigger) -> None:
    b = attack.get("bilevel", {})
    if b.get("sigma") is None:
        raise ConfigError("attack.bilevel.sigma is not set: the poisons are built once for every certifier, so give "
                          "the σ of their surrogate (e.g. the Cohen certifier's)")  # fmt: skip
    if attack["kind"] == "bilevel" and b.get("keep_trigger"):
        raise ConfigError("attack.bilevel.keep_trigger = true: kind bilevel has no trigger to keep (it is for "
                          "avail_bilevel); remove it")  # fmt: skip
    if attack["kind"] == "bilevel":
        _check_target(attack, data, trigger)


def _boundary_how(a: dict) -> str:
    classes = "" if "boundary_classes" not in a else "-c" + "_".join(str(c) for c in a["boundary_classes"])
    return f"r{a['rate']:g}-boundary{a['offset']:g}{classes}{'-shared' if a.get('shared_sources') else ''}"


ATTACKS: dict[str, AttackKind] = {
    k.kind: k
    for k in (
        AttackKind("backdoor", frozenset({"rate", "target", "trigger"}), ("trigger", "rate", "target"), "poison",
                   "backdoor", lambda a: f"backdoor: {_trigger_name(a)} {100 * a['rate']:g}%",
                   lambda a: f"r{a['rate']:g}-t{a['target']}", _check_target),
        AttackKind("avail_uniform", frozenset({"rate", "trigger"}), ("trigger", "rate"), "poison", "availability",
                   lambda a: f"availability (uniform) {100 * a['rate']:g}%", lambda a: f"r{a['rate']:g}-uniform"),
        AttackKind("avail_split", frozenset({"rate", "split_classes", "trigger"}), ("trigger", "rate"), "poison",
                   "availability", lambda a: f"availability (split) {100 * a['rate']:g}%",
                   lambda a: "r{:g}-split{}_{}".format(a["rate"], *ATTACKS["avail_split"].setting(a, "split_classes")),
                   _check_split, {"split_classes": [0, 1]}),
        AttackKind("avail_boundary", frozenset({"rate", "offset", "boundary_classes", "shared_sources", "trigger"}),
                   ("trigger", "rate", "offset"), "poison", "availability",
                   lambda a: f"availability (boundary) {100 * a['rate']:g}%", _boundary_how, _check_boundary,
                   triggers=("corners",)),
        AttackKind("none", frozenset({"trigger"}), (), "poison", "control",
                   lambda a: f"control: {_trigger_name(a)} trigger only" if "trigger" in a else "clean",
                   lambda a: "none"),
        AttackKind("bilevel", frozenset({"target", "epsilon", "bilevel"}), ("target", "epsilon"), "bilevel_poison",
                   "bilevel", lambda a: f"bilevel vs {a['bilevel']['victim']} (ε={a['epsilon']:g})",
                   lambda a: "", _check_bilevel),
        AttackKind("avail_bilevel", frozenset({"rate", "trigger", "epsilon", "bilevel"}),
                   ("trigger", "rate", "epsilon", "bilevel"), "bilevel_poison", "availability",
                   lambda a: f"availability (bilevel, {a['bilevel']['objective']}) {100 * a['rate']:g}%",
                   lambda a: "", _check_bilevel),
    )
}  # fmt: skip

# The trigger's part of a poisoned set's folder name, by trigger name
TRIGGER_TAGS: dict[str, Callable[[dict], str]] = {
    "onepixel": lambda t: f"d{t['delta']:g}",
    "fourpixel": lambda t: f"d{t['delta']:g}",
    "blending": lambda t: f"d{t['delta']:g}-p{t['pattern_seed']}",
    "badnets": lambda t: (f"k{t['size']}-v{t['value']:g}-{t['style']}"
                          + ("" if t["position"] is None else f"-at{t['position'][0]}x{t['position'][1]}")),
    "blend": lambda t: f"a{t['alpha']:g}-p{t['pattern_seed']}",
    "corners": lambda t: f"k{t['size']}-n{t['count']}-v{t['value']:g}",
}  # fmt: skip


def attack_label(attack: dict) -> str:
    return ATTACKS[attack["kind"]].label(attack)


def settings(attack: dict) -> dict:
    """What the step that builds the poisons reads: the attack block without its solver's device."""
    a = dict(attack)
    if "bilevel" in a:
        a["bilevel"] = {k: v for k, v in a["bilevel"].items() if k != "device"}
    return a


def surrogate_sigma(attack: dict) -> float | None:
    """The σ of the smoothed surrogate the attack optimises its poisons against (the bilevel
    solver's), if it has one."""
    return attack.get("bilevel", {}).get("sigma")


def poisoned_tag(attack: dict, seed: int, sigma: float | None, prepared: str) -> str:
    """Short folder name of the attack's poisoned set, carrying its key settings, e.g.
    ``onepixel-d1-r0.02-t0-s0``; the bilevel attacks' carry a hash of their solver's settings
    (``sigma``: its surrogate's σ; ``prepared``: the clean data's folder)."""
    a = attack
    if a["kind"] in ("bilevel", "avail_bilevel"):
        from certsmooth.artifacts import short_hash

        b = a["bilevel"]
        drop = {"device", "sigma"} | ({"objective"} if b["objective"] == "radius" else set())
        drop |= {"keep_trigger"} if not b.get("keep_trigger") else set()
        # (defaults added later stay out of the key: the folders of poisons made before they existed)
        key = {"attack": {**a, "bilevel": {k: v for k, v in b.items() if k not in drop}}, "sigma": sigma,
               "dataset": prepared}  # fmt: skip
        kind = b["victim"] if b["objective"] == "radius" else f"{b['victim']}-{b['objective']}"
        if a["kind"] == "avail_bilevel":  # the bilevel_poison rule builds the folders named bilevel-*
            name = a["trigger"]["name"]
            return f"bilevel-avail-{kind}-{name}-r{a['rate']:g}-eps{a['epsilon']:g}-{short_hash(key)}-s{seed}"
        return f"bilevel-{kind}-eps{a['epsilon']:g}-t{a['target']}-{short_hash(key)}-s{seed}"
    if "trigger" not in a:
        return f"clean-s{seed}"
    t = a["trigger"]
    custom = "-custom" if t.get("positions") is not None else ""
    return f"{t['name']}-{TRIGGER_TAGS[t['name']](t)}{custom}-{ATTACKS[a['kind']].how(a)}-s{seed}"


def check(attack: dict, data) -> None:
    """Before any job: the keys of the kind, the trigger's geometry on the data's images, the
    poison count of the rate, and the kind's own checks; ConfigError ``attack.<key> ...``."""
    from certsmooth.attacks.triggers import make_trigger

    kind = ATTACKS[attack["kind"]]
    for key in sorted(set(attack) - {"kind"} - kind.keys):
        raise ConfigError(f"attack.{key} is not used by kind {attack['kind']!r}; remove it")
    trigger = None
    if "trigger" in attack:
        trigger = make_trigger(attack["trigger"])
        trigger.pattern(data.shape)  # checks positions / patch geometry
    kind.check(attack, data, trigger)
    if data.counts is not None and attack.get("rate") is not None:
        _check_rate(attack, data.counts[0], trigger)


def _check_rate(attack: dict, train_counts: list[int], trigger) -> None:
    """The poison count of ``rate`` on a training set of these per-label sizes is one the
    attack can build (the rule of :mod:`certsmooth.attacks.poison`, known before the data is read)."""
    from certsmooth.attacks.poison import num_poisons

    rate, n = attack["rate"], sum(train_counts)
    m = num_poisons(n, rate)
    if m < 1:
        raise ConfigError(f"attack.rate = {rate} poisons ⌊{n}·{rate}⌋ = 0 of the {n} training images; use a rate of "
                          f"at least {1 / n:.2g}")  # fmt: skip
    if attack["kind"] == "backdoor":
        free = n - train_counts[attack["target"]]
        if m > free:
            raise ConfigError(f"attack.rate = {rate} asks for {m} poisons, but only {free} of the {n} training images "
                              f"are outside the target class {attack['target']}; use a rate of at most {free / n:.3g}")
    if attack["kind"] == "avail_boundary" and m < trigger.count:
        raise ConfigError(f"attack.rate = {rate} poisons {m} of the {n} training images; avail_boundary needs at least "
                          f"one poison per corner ({trigger.count}): use a rate of at least {trigger.count / n:.2g}")
