"""Certified-accuracy metrics (the conventions of RAB's ``eval.py`` and Cohen et al.'s)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def passes(radius: np.ndarray, r: float, cmp: str) -> np.ndarray:
    return radius > r if cmp == "gt" else radius >= r


def certified_accuracy(frame: pd.DataFrame, r: float, cmp: str, column: str = "radius") -> float:
    """Fraction of points that are correct, not abstained, and have R > r (``gt``, RAB,
    Cert-SSB) or R ≥ r (``ge``, Cohen); R from ``column``."""
    if len(frame) == 0:
        return float("nan")
    ok = frame["correct"].to_numpy() & passes(frame[column].to_numpy(), r, cmp)
    return float(ok.mean())


def unavailable(frame: pd.DataFrame, r: float, cmp: str) -> float:
    """Fraction of points with no certificate of radius r for any label: the certifier
    abstains, or its radius fails r (availability attacks aim at this; a wrong label with a
    large radius counts as available)."""
    if len(frame) == 0:
        return float("nan")
    available = ~frame["abstain"].to_numpy(dtype=bool) & passes(frame["radius"].to_numpy(), r, cmp)
    return float(1.0 - available.mean())


def acr(frame: pd.DataFrame, column: str = "radius") -> float:
    """Average certified radius: (1/N)·Σ R over correct points (abstained/wrong count 0)."""
    if len(frame) == 0:
        return float("nan")
    return float(np.where(frame["correct"], frame[column], 0.0).mean())


def curve(frame: pd.DataFrame, cmp: str, num: int = 200) -> pd.DataFrame:
    """Certified accuracy on a fine radius grid (for plotting), in one sorted pass."""
    radii = frame["radius"].to_numpy()
    top = float(radii.max()) if len(frame) else 0.0
    grid = np.unique(np.concatenate([np.linspace(0, max(top * 1.05, 1e-6), num), radii]))
    if len(frame) == 0:
        return pd.DataFrame({"radius": grid, "certified_accuracy": np.nan})
    ok = np.sort(radii[frame["correct"].to_numpy()])
    # number of correct points with R > r (gt) or R >= r (ge)
    passing = len(ok) - np.searchsorted(ok, grid, side="right" if cmp == "gt" else "left")
    return pd.DataFrame({"radius": grid, "certified_accuracy": passing / len(frame)})


def summarize(clean: pd.DataFrame, triggered: pd.DataFrame, radii: list[float], cmp: str, target: int) -> dict:
    """Metrics of one (experiment, scope). ``triggered`` holds the non-target triggered
    points with their true labels (RAB protocol). With a ``radius_test_input`` column
    (scope ``joint``) the same metrics are also given for that radius."""
    out = _summary(clean, triggered, radii, cmp, target)
    same = same_points(clean, triggered)
    if same is not None:  # the clean copies of exactly the triggered points scored: an effect compares these
        out["clean_same_points"] = points(same, radii, cmp)
    if "radius_test_input" in clean and clean["radius_test_input"].notna().all():
        col = "radius_test_input"
        out["test_input"] = {
            "radius": "σ_x · R̃: perturbations of the test input alone, training set as deployed",
            "acr_clean": acr(clean, col),
            "acr_triggered": acr(triggered, col),
            "certified_accuracy_clean": {f"{r:g}": certified_accuracy(clean, r, cmp, col) for r in radii},
            "certified_accuracy_triggered": {f"{r:g}": certified_accuracy(triggered, r, cmp, col) for r in radii},
        }
    return out


def positions(frame: pd.DataFrame, of: pd.DataFrame) -> np.ndarray | None:
    """The row of ``frame`` of each test point ``of`` holds, by test-set index (``idx`` or
    ``index``; −1: no row); None where the two lack a common index column."""
    key = next((k for k in ("idx", "index") if k in frame and k in of), None)
    return None if key is None else pd.Index(frame[key]).get_indexer(of[key])


def same_points(clean: pd.DataFrame, triggered: pd.DataFrame) -> pd.DataFrame | None:
    """The rows of ``clean`` of the test points ``triggered`` holds, in ``triggered``'s order;
    None without an index column or where a triggered point has no clean copy."""
    pos = positions(clean, triggered)
    return None if pos is None or (pos < 0).any() else clean.iloc[pos].reset_index(drop=True)


def points(frame: pd.DataFrame, radii: list[float], cmp: str) -> dict:
    """Accuracy, abstain rate, ACR, certified accuracy and unavailable rate of a set of points."""
    nan = float("nan")
    return {
        "num": int(len(frame)),
        "accuracy": float((frame["top"] == frame["label"]).mean()) if len(frame) else nan,
        "abstain_rate": float(frame["abstain"].mean()) if len(frame) else nan,
        "acr": acr(frame),
        "certified_accuracy": {f"{r:g}": certified_accuracy(frame, r, cmp) for r in radii},
        "unavailable": {f"{r:g}": unavailable(frame, r, cmp) for r in radii},
    }


def _summary(clean, triggered, radii, cmp, target) -> dict:
    return {
        "clean_accuracy": float((clean["top"] == clean["label"]).mean()),
        # no target (availability attacks, control): no attack success rate
        "attack_success_rate": float((triggered["top"] == target).mean())
        if len(triggered) and target >= 0
        else float("nan"),
        "abstain_rate_clean": float(clean["abstain"].mean()),
        "abstain_rate_triggered": float(triggered["abstain"].mean()) if len(triggered) else float("nan"),
        "acr_clean": acr(clean),
        "acr_triggered": acr(triggered),
        "certified_accuracy_clean": {f"{r:g}": certified_accuracy(clean, r, cmp) for r in radii},
        "certified_accuracy_triggered": {f"{r:g}": certified_accuracy(triggered, r, cmp) for r in radii},
        "unavailable_clean": {f"{r:g}": unavailable(clean, r, cmp) for r in radii},
        "unavailable_triggered": {f"{r:g}": unavailable(triggered, r, cmp) for r in radii},
        "certified_vs_deployed_attack": float(triggered["certified_vs_attack"].mean())
        if len(triggered)
        else float("nan"),
        "num_clean": int(len(clean)),
        "num_triggered": int(len(triggered)),
    }


def per_class(frame: pd.DataFrame, radii: list[float], cmp: str) -> dict:
    """ACR, certified accuracy and abstain rate of the points of each true label (the
    bilevel attack's target-class metrics)."""
    out = {}
    for label, f in frame.groupby("label", sort=True):
        out[str(int(label))] = {
            "num": int(len(f)),
            "acr": acr(f),
            "abstain_rate": float(f["abstain"].mean()),
            "certified_accuracy": {f"{r:g}": certified_accuracy(f, r, cmp) for r in radii},
        }
    return out
