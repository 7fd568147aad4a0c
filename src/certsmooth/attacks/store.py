"""Files of a poisoned experiment (``data/poisoned/<suite>/<experiment>/<tag>/``).

* ``train.npz``: the poisoned training set: ``x`` float32 N×C×H×W ([0, 1] scale; the
  triggers are not on the uint8 grid, so the exact values the models see are stored),
  ``y`` (labels after poisoning), ``clean_y``, ``poison_index``, ``perturbation_norm``
  (ℓ2 of x' − x per poison, after clipping), ``source_index``, ``class_names``,
  ``provenance`` (JSON).
* ``test.npz``: every test point with the trigger: ``x``, ``y`` (true labels),
  ``nontarget`` (bool), ``target`` (the backdoor label), ``perturbation_norm``,
  ``source_index``, ``class_names``, ``provenance``.
* ``trigger.npz``: the arrays that define the trigger on this image shape.
* ``poisons.csv``: one row per poison: row, source_index, clean_label, label, l2_norm.
* ``record.json``: the summary (attack, counts, norms, stacked norm, checksums).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certsmooth import __version__
from certsmooth.artifacts import atomic_path, load_npz, save_npz, sha256_array, write_json
from certsmooth.attacks.poison import PoisonedTrain, TriggeredTest
from certsmooth.attacks.triggers import Trigger
from certsmooth.data.prepared import PreparedSplit
from certsmooth.errors import CorruptFileError

FILES = ("train.npz", "test.npz", "trigger.npz", "poisons.csv", "record.json")


def _stats(v: np.ndarray) -> dict:
    if v.size == 0:
        return {"min": None, "max": None, "mean": None}
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean())}


def build_record(
    experiment: str,
    attack: dict,
    seed: int,
    trigger: Trigger,
    train: PreparedSplit,
    test: PreparedSplit,
    poisoned: PoisonedTrain,
    triggered: TriggeredTest,
) -> dict:
    nominal = trigger.nominal_norm
    norms = poisoned.perturbation_norm
    m = int(norms.size)
    clipped = None if nominal is None else int(np.sum(norms < nominal * (1 - 1e-6)))
    return {
        "experiment": experiment,
        "attack": attack,
        "seed": seed,
        "trigger": trigger.spec(),
        "train": {
            "num_examples": int(train.y.size),
            "num_poisons": m,
            "poison_index": poisoned.poison_index.tolist(),
            "nominal_norm": nominal,
            "num_clipped": clipped,
            "perturbation_norm": _stats(norms),
            "stacked_norm": poisoned.stacked_norm,
            "sqrt_m_times_nominal": None if nominal is None else float(np.sqrt(m) * nominal),
        },
        "test": {
            "num_examples": int(triggered.y.size),
            "num_nontarget": int(triggered.nontarget.sum()),
            "perturbation_norm_nontarget": _stats(triggered.perturbation_norm[triggered.nontarget]),
        },
        "inputs": {
            "train_content_sha256": train.provenance["content_sha256"],
            "test_content_sha256": test.provenance["content_sha256"],
            "raw_sha256": train.provenance["raw_sha256"],
        },
        "outputs": {
            "train_sha256": sha256_array(poisoned.x, poisoned.y),
            "test_sha256": sha256_array(triggered.x, triggered.y),
        },
        "certsmooth_version": __version__,
    }


def write_poisoned(
    out_dir: str | Path,
    record: dict,
    trigger: Trigger,
    train: PreparedSplit,
    test: PreparedSplit,
    poisoned: PoisonedTrain,
    triggered: TriggeredTest,
) -> None:
    """Write the five files; on any failure remove those already written."""
    out = Path(out_dir)
    written: list[Path] = []
    provenance = json.dumps({"record": "record.json", **{k: record[k] for k in ("experiment", "attack", "seed")}})
    try:
        names = np.array(train.class_names, dtype=str)
        save_npz(
            out / "train.npz",
            x=poisoned.x,
            y=poisoned.y,
            clean_y=poisoned.clean_y,
            poison_index=poisoned.poison_index,
            perturbation_norm=poisoned.perturbation_norm,
            source_index=train.source_index,
            class_names=names,
            provenance=np.array(provenance),
        )
        written.append(out / "train.npz")
        save_npz(
            out / "test.npz",
            x=triggered.x,
            y=triggered.y,
            nontarget=triggered.nontarget,
            target=np.int64(triggered.target),
            perturbation_norm=triggered.perturbation_norm,
            source_index=test.source_index,
            class_names=names,
            provenance=np.array(provenance),
        )
        written.append(out / "test.npz")
        save_npz(out / "trigger.npz", **trigger.pattern(train.x.shape[1:]))
        written.append(out / "trigger.npz")
        import pandas as pd  # here, not at the top: the training steps read this module, not pandas (~0.3 s)

        table = pd.DataFrame(
            {
                "row": poisoned.poison_index,
                "source_index": train.source_index[poisoned.poison_index],
                "clean_label": poisoned.clean_y[poisoned.poison_index],
                "label": poisoned.y[poisoned.poison_index],
                "l2_norm": poisoned.perturbation_norm,
            }
        )
        with atomic_path(out / "poisons.csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.9g")
        written.append(out / "poisons.csv")
        write_json(out / "record.json", record)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise


@dataclass
class PoisonedData:
    """The poisoned training set as stored (see module docstring)."""

    x: np.ndarray
    y: np.ndarray
    clean_y: np.ndarray
    poison_index: np.ndarray
    perturbation_norm: np.ndarray
    class_names: list[str]


def load_poisoned_train(path: str | Path) -> PoisonedData:
    a = load_npz(path, required=("x", "y", "clean_y", "poison_index", "perturbation_norm", "class_names"))
    x, y = a["x"], a["y"]
    if x.dtype != np.float32 or x.ndim != 4 or y.shape != (x.shape[0],):
        raise CorruptFileError(
            f"{path}: expected float32 images N×C×H×W with N labels, found {x.dtype} {x.shape} / {y.shape}; "
            f"delete {path} and rerun the workflow"
        )
    if a["poison_index"].shape != a["perturbation_norm"].shape:
        raise CorruptFileError(f"{path}: poison_index and perturbation_norm differ in length; delete it and rerun")
    return PoisonedData(
        x, y, a["clean_y"], a["poison_index"], a["perturbation_norm"], [str(n) for n in a["class_names"]]
    )


@dataclass
class TriggeredData:
    x: np.ndarray
    y: np.ndarray
    nontarget: np.ndarray
    target: int
    perturbation_norm: np.ndarray
    class_names: list[str]


def load_triggered_test(path: str | Path) -> TriggeredData:
    a = load_npz(path, required=("x", "y", "nontarget", "target", "perturbation_norm", "class_names"))
    if a["x"].dtype != np.float32 or a["x"].ndim != 4 or a["y"].shape != (a["x"].shape[0],):
        raise CorruptFileError(f"{path}: malformed triggered test set; delete it and rerun the workflow")
    return TriggeredData(
        a["x"], a["y"], a["nontarget"].astype(bool), int(a["target"]), a["perturbation_norm"],
        [str(n) for n in a["class_names"]],
    )  # fmt: skip
