"""One cell of a suite (an attack × a certifier) as the workflow runs it: its settings, and
the names and folders every kind shares. What belongs to a kind (its output paths, the keys
its stages read, its checks) its record says: :mod:`certsmooth.certifiers` for the column,
:mod:`certsmooth.attacks.kinds` for the row. This module names no kind."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

from certsmooth.attacks import kinds as attack_kinds
from certsmooth.certifiers import CERTIFIERS, Certifier


@dataclass(frozen=True)
class Experiment:
    suite: str
    name: str  # <attack>/<certifier>
    cfg: dict

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"

    @property
    def attack_name(self) -> str:
        """The row: the attack's name in the suite (its poisoned set is shared by the row)."""
        return self.name.split("/")[0]

    @property
    def certifier_name(self) -> str:
        """The column group: the certifier's name in the suite."""
        return self.name.split("/")[1]

    @property
    def certifier(self) -> Certifier:
        """Its record (:mod:`certsmooth.certifiers`)."""
        return CERTIFIERS[self.cfg["certifier"]]

    @property
    def attack(self) -> attack_kinds.AttackKind:
        return attack_kinds.ATTACKS[self.cfg["attack"]["kind"]]

    @functools.cached_property
    def paths(self) -> dict:
        """The certifier's output paths of this cell, by name (its record's ``paths``)."""
        return self.certifier.paths(self)

    def runs(self) -> list[tuple[str, str]]:
        """(matrix column, certification folder) of this cell."""
        return self.certifier.runs(self)

    def settings(self, stage: str) -> dict:
        """The settings the certifier's ``stage`` reads, and nothing else (a rule passes exactly
        these to its step, and Snakemake tracks them as the job's params, so a setting reruns the
        jobs that read it and no other; ``device`` is never among them: a job resource)."""
        return self.certifier.settings(self, stage)

    def attack_settings(self) -> dict:
        return attack_kinds.settings(self.cfg["attack"])

    def device(self, block: str) -> str:
        """The ``device`` setting of a certifier block or of the attack's ``block`` (a job resource)."""
        return (self.cfg[block] if block in self.certifier.blocks else self.cfg["attack"][block])["device"]

    def device_settings(self) -> dict[str, str]:
        """Every ``device`` setting of this cell, by its dotted key in params.yaml."""
        at = f"suites.{self.suite}"
        out = {f"{at}.certifiers.{self.certifier_name}.{b}.device": self.cfg[b]["device"]
               for b in self.certifier.blocks if "device" in self.cfg[b]}  # fmt: skip
        for key, block in self.cfg["attack"].items():
            if isinstance(block, dict) and "device" in block:
                out[f"{at}.attacks.{self.attack_name}.{key}.device"] = block["device"]
        return out

    @property
    def seed(self) -> int:
        return int(self.cfg["seed"])

    @property
    def sigma(self) -> float:
        return float(self.cfg["smoothing"]["sigma"])

    @property
    def attack_sigma(self) -> float:
        """The σ of the attack's surrogate (the bilevel attacks'), else the certifier's."""
        s = attack_kinds.surrogate_sigma(self.cfg["attack"])
        return self.sigma if s is None else float(s)

    def split(self) -> str | dict:
        from certsmooth.data.sources import get_source

        ds = self.cfg["dataset"]
        if "split" in ds:
            return ds["split"]
        if get_source(ds["name"]).has_official_split:
            return "official"
        return {"test_fraction": 0.2, "seed": 0}

    def prepared_dir(self) -> str:
        """``data/prepared/<dataset>/<classes>/<split>`` for this experiment's data."""
        from certsmooth.data.prepared import classes_token, resolve_classes, split_token
        from certsmooth.data.sources import get_source

        ds = self.cfg["dataset"]
        n = len(get_source(ds["name"]).class_names)
        classes = classes_token(resolve_classes(ds["name"], ds["classes"]), n)
        return f"data/prepared/{ds['name']}/{classes}/{split_token(self.split())}"

    def poisoned_dir(self) -> str:
        """The attack's poisoned training set and triggered test set, shared by every cell of
        its row (every certifier certifies the same poisons)."""
        tag = attack_kinds.poisoned_tag(self.cfg["attack"], self.seed, self.attack_sigma, self.prepared_dir())
        return f"data/poisoned/{self.suite}/{self.attack_name}/{tag}"

    def results_dir(self) -> str:
        """``results/<suite>/<attack>/<certifier>``: this cell's models, certificates, metrics."""
        return f"results/{self.suite}/{self.name}"

    def attack_dir(self) -> str:
        """``results/<suite>/<attack>``: what belongs to the row (its sample figure)."""
        return f"results/{self.suite}/{self.attack_name}"


def experiments(config: dict, suites: list[str] | None = None) -> Iterator[Experiment]:
    for suite, exps in config["suites"].items():
        if suites is not None and suite not in suites:
            continue
        for name, cfg in exps.items():
            yield Experiment(suite, name, cfg)
