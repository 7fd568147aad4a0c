"""Step ``plot-samples``: clean vs poisoned (or triggered) training samples of an attack,
titled with what the attack does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from certsmooth.artifacts import read_json
from certsmooth.attacks.boundary import corner_labels
from certsmooth.attacks.kinds import ATTACKS
from certsmooth.attacks.store import load_poisoned_train
from certsmooth.data.prepared import load_prepared
from certsmooth.errors import CertsmoothError
from certsmooth.logs import LOG
from certsmooth.plots.samples import plot_trigger_samples


def describe(record: dict, class_names: list[str]) -> tuple[str, str, str]:
    """(kind, title, how the poisons are relabelled) of a poisoned set's record; kind is
    the attack's, or ``clean`` for no poisons and no trigger."""
    attack = record["attack"]
    kind = attack.get("kind", "backdoor")
    if kind == "none" and "trigger" not in attack:
        kind = "clean"
    names = class_names
    relabel = {
        "backdoor": lambda: f"→ label {names[attack.get('target', 0)]}",
        "avail_uniform": lambda: "→ uniformly random labels",
        "avail_split": lambda: (
            "→ labels split between "
            + " and ".join(names[int(c)] for c in ATTACKS["avail_split"].setting(attack, "split_classes"))
        ),
        "avail_boundary": lambda: (
            f"→ label by the brightened corner (±{attack['offset']:g}): "
            + ", ".join(
                names[c] for c in corner_labels(record["trigger"]["count"], attack.get("boundary_classes"), len(names))
            )
            + ("; one source image per corner group" if attack.get("shared_sources") else "")
        ),
        "none": lambda: "(control: no poisons; the trigger is applied at test time only)",
        "clean": lambda: "(no poisons, no trigger: the clean baseline)",
        "bilevel": lambda: (
            f"(clean-label: labels kept; ℓ∞ ≤ {attack['epsilon']:g}, optimised against {attack['bilevel']['victim']})"
        ),
        "avail_bilevel": lambda: (
            f"→ uniformly random labels; ℓ∞ ≤ {attack['epsilon']:g} around the triggered image, optimised "
            f"({attack['bilevel']['objective']}) against {attack['bilevel']['victim']}"
        ),
    }[kind]()
    trig = ", ".join(f"{k}={v}" for k, v in record["trigger"].items() if k != "name" and v is not None)
    title = {
        "bilevel": f"{record['experiment']}: bilevel poisons of class {names[attack.get('target', 0)]}",
        "clean": f"{record['experiment']}: clean data",
    }.get(kind, f"{record['experiment']}: {record['trigger']['name']} ({trig})")
    return kind, title, relabel


def run(*, poisoned_dir: str, prepared_train: str, out: str, sigma: float, seed: int, n_examples: int = 6,
        dpi: int = 150, context: str = "paper") -> None:  # fmt: skip
    poisoned = load_poisoned_train(Path(poisoned_dir) / "train.npz")
    record = read_json(Path(poisoned_dir) / "record.json")
    clean = load_prepared(prepared_train)
    if clean.y.size != poisoned.y.size:
        raise CertsmoothError(
            f"{prepared_train} has {clean.y.size} images but {poisoned_dir} has {poisoned.y.size}: "
            "they come from different runs; rerun the workflow"
        )
    kind, title, relabel = describe(record, poisoned.class_names)
    if kind in ("none", "clean"):  # the control: show the test-time trigger on clean training images
        from certsmooth.attacks.poison import perturbation_norms
        from certsmooth.attacks.triggers import make_trigger

        rows = np.arange(min(n_examples, poisoned.y.size))
        shown = make_trigger(record["attack"].get("trigger")).apply(clean.floats()[rows])
        norms = perturbation_norms(clean.floats()[rows], shown)
    else:
        rows = poisoned.poison_index[:n_examples]
        shown, norms = poisoned.x[rows], poisoned.perturbation_norm[:n_examples]
    tr = record["train"]
    plot_trigger_samples(
        out,
        clean=clean.floats()[rows],
        triggered=shown,
        clean_labels=poisoned.clean_y[rows],
        new_labels=poisoned.y[rows],
        norms=norms,
        class_names=poisoned.class_names,
        sigma=sigma,
        seed=seed,
        title=title,
        subtitle=(
            f"{tr['num_poisons']} of {tr['num_examples']} training points poisoned {relabel}; "
            f"stacked ‖δ‖₂ = {tr['stacked_norm']:.3f}"
        ),
        dpi=dpi,
        context=context,
    )
    LOG.info("wrote %s", out)
