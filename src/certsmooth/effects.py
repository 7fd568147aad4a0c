"""What each attack does to each certifier: the metric each attack family is about, measured on
the same test points with and without the attack, with 95 % intervals.

The numbers of the attack × certifier matrix, its leaderboard and its long table
(:mod:`certsmooth.plots.attacks`) come from here, computed from the per-point results of a
matrix cell (the poisoned model) and of the same certifier on the suite's clean baseline, paired
by test-set index.

* **Backdoor** (the triggered copies of the non-target test points): the attack success rate
  (classified as the target), and the share of those points *certified against the deployed
  poisoning* (the certificate covers the poisoned training set as deployed and the trigger where
  the scope includes it). Training-time certificates only: Cohen et al.'s is a test-time
  certificate (no poisoning bound), the undefended model has none.
* **Availability** (the triggered test points): the unavailable rate (abstained, or no
  certificate at r = 0: the fallback runs) on the poisoned model, its rise over the trigger-only
  control (the baseline model on the same triggered points), net of that control.
* **Bilevel** (the target class's clean test points): the relative drop of their ACR and the
  drop of their certified accuracy (r = 0), the poisoned vs the baseline model.
* **Control** (kind ``none`` with a trigger, on the baseline model): the trigger alone, triggered
  vs clean copies.

**Robustness lost**, the one colour of the matrix: the share of the attacked points that have a
guarantee without the attack and not with it. A point's guarantee is a certified correct
prediction (a correct one for the undefended model); under a backdoor, for a certifier that bounds
training poisoning, a certificate that covers the deployed attack; under an availability attack, a
certificate at all (correct or not: what the fallback is about). Bilevel: the share of the target
class's ACR the attack removes.

**Intervals**: a share of points gets the 95 % Clopper–Pearson interval (``scipy.stats``, exact).
A paired change of a share (the same points before and after: ``(up − down) / n``) gets Newcombe's
hybrid score interval for a difference of paired proportions (Newcombe, Statistics in Medicine
1998, method 10; close to nominal coverage where an exact interval has none in closed form); an
interval that holds 0 is reported as "n.s." (no clear effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from certsmooth.metrics import acr, passes, positions

LEVEL = 0.95
Z = 1.959963984540054  # the standard normal's 97.5 % quantile
NAN = float("nan")


def interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval of a share ``k / n`` at ``level``; (nan, nan) for n = 0."""
    if not (0 <= k <= n) or k != int(k) or n != int(n):
        raise ValueError(f"interval: need integers 0 <= k <= n, got k = {k}, n = {n}")
    if n == 0:
        return NAN, NAN
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Share:
    """``k`` of ``n`` points, with its 95 % Clopper–Pearson interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else NAN

    @cached_property
    def _bounds(self) -> tuple[float, float]:
        return interval(self.k, self.n)

    @property
    def low(self) -> float:
        return self._bounds[0]

    @property
    def high(self) -> float:
        return self._bounds[1]


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson's score interval of ``k / n`` (the parts of Newcombe's paired interval)."""
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@dataclass(frozen=True)
class Change:
    """A paired change of a share on the same ``n`` points: ``up`` points became true, ``down``
    became false, ``both`` were true before and after; ``value = (up − down) / n`` with Newcombe's
    hybrid score interval for a difference of paired proportions (Newcombe 1998, method 10)."""

    up: int
    down: int
    n: int
    both: int = 0

    def __post_init__(self):
        if min(self.up, self.down, self.both) < 0 or self.up + self.down + self.both > self.n:
            raise ValueError(f"change: need counts up, down, both ≥ 0 with a sum ≤ n, got {self}")

    @property
    def value(self) -> float:
        return (self.up - self.down) / self.n if self.n else NAN

    @cached_property
    def _bounds(self) -> tuple[float, float]:
        n = self.n
        if n == 0:
            return NAN, NAN
        e, f, g = self.both, self.up, self.down
        h = n - e - f - g
        p1, p2 = (e + f) / n, (e + g) / n  # after, before
        l1, u1 = wilson(e + f, n)
        l2, u2 = wilson(e + g, n)
        den = (e + f) * (g + h) * (e + g) * (f + h)
        phi = (e * h - f * g) / math.sqrt(den) if den > 0 else 0.0
        d = p1 - p2
        lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
        hi = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
        return max(-1.0, lo), min(1.0, hi)

    @property
    def low(self) -> float:
        return self._bounds[0]

    @property
    def high(self) -> float:
        return self._bounds[1]

    @property
    def clear(self) -> bool:
        """The interval excludes 0."""
        lo, hi = self._bounds
        return self.n > 0 and (lo > 0 or hi < 0)


def share(mask) -> Share:
    m = np.asarray(mask, dtype=bool)
    return Share(int(m.sum()), int(m.size))


def change(before, after) -> Change:
    b, a = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    if b.shape != a.shape:
        raise ValueError(f"change: {b.size} points before, {a.size} after; pair the same points")
    return Change(int((~b & a).sum()), int((b & ~a).sum()), int(b.size), int((b & a).sum()))


@dataclass(frozen=True)
class Run:
    """A certification run's per-point results: ``clean`` (every clean test point) and
    ``triggered`` (the triggered non-target points), its radius comparison and its axis
    (``l2``, ``poisons`` or ``none``: no certificate)."""

    clean: pd.DataFrame
    triggered: pd.DataFrame
    cmp: str
    axis: str


def align(frame: pd.DataFrame, to: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` of the test points of ``to`` (by test-set index), in ``to``'s order;
    refuses a point ``frame`` lacks (the two were not scored on the same test set)."""
    pos = positions(frame, to)
    if pos is None:
        raise ValueError(f"per-point results without a common test-set index column (idx or index): "
                         f"{list(frame.columns)}, {list(to.columns)}")  # fmt: skip
    if (pos < 0).any():
        raise ValueError(f"{int((pos < 0).sum())} of {len(to)} test points have no result to pair with")
    return frame.iloc[pos].reset_index(drop=True)


def certified(f: pd.DataFrame, run: Run) -> np.ndarray:
    """A certified correct prediction at r = 0 (the undefended model: a correct prediction)."""
    correct = f["correct"].to_numpy(dtype=bool) & ~f["abstain"].to_numpy(dtype=bool)
    return correct if run.axis == "none" else correct & passes(f["radius"].to_numpy(), 0.0, run.cmp)


def available(f: pd.DataFrame, run: Run) -> np.ndarray:
    """Not abstained and a certificate at r = 0, for whichever label (no fallback runs)."""
    ok = ~f["abstain"].to_numpy(dtype=bool)
    return ok if run.axis == "none" else ok & passes(f["radius"].to_numpy(), 0.0, run.cmp)


def covered(f: pd.DataFrame, run: Run) -> np.ndarray | None:
    """Certified against the deployed poisoning, per point; None for a certificate that does not
    bound training poisoning (test-time smoothing) or no certificate."""
    if run.axis == "none" or "certified_vs_attack" not in f or f["certified_vs_attack"].isna().any():
        return None
    return f["certified_vs_attack"].to_numpy(dtype=bool)


@dataclass
class Cell:
    """The effect of one attack on one matrix column (``None``: not this family's metric)."""

    family: str  # backdoor | availability | bilevel | control | clean (the baseline without a trigger)
    points: int  # the attacked points
    clean_accuracy: Share
    lost: Share | None = None  # robustness lost (bilevel: see lost_acr)
    lost_acr: float | None = None  # bilevel: the share of the target class's ACR removed
    attack_success: Share | None = None
    certified_vs_attack: Share | None = None
    unavailable: Share | None = None  # on the attacked points, poisoned model
    unavailable_control: Share | None = None  # the same points without the poisons
    unavailable_rise: Change | None = None
    target_acr_drop: float | None = None  # relative, a share of the baseline's ACR
    target_certified_drop: Change | None = None  # a rise of "not certified": the drop of certified accuracy

    @property
    def colour(self) -> float:
        """The matrix's colour: robustness lost, a share in [0, 1] (nan: nothing to compare)."""
        if self.family == "bilevel":
            return NAN if self.lost_acr is None else float(min(max(self.lost_acr, 0.0), 1.0))
        return NAN if self.lost is None else self.lost.value


def _accuracy(run: Run) -> Share:
    c = run.clean
    return share((c["top"] == c["label"]).to_numpy() & ~c["abstain"].to_numpy(dtype=bool))


def backdoor(run: Run, base: Run | None, target: int) -> Cell:
    """Triggered non-target points on the poisoned model; their clean copies on the baseline model
    (or, without one, on the poisoned model) give the guarantee before the attack."""
    t = run.triggered
    ref_run = base or run
    before = certified(align(ref_run.clean, t), ref_run)
    cov = covered(t, run)
    after = cov if cov is not None else certified(t, run)
    return Cell(
        "backdoor", len(t), _accuracy(run), lost=share(before & ~after),
        attack_success=share(t["top"].to_numpy() == target),
        certified_vs_attack=None if cov is None else share(cov),
        unavailable=share(~available(t, run)),
    )  # fmt: skip


def availability(run: Run, base: Run | None) -> Cell:
    """Triggered points on the poisoned model vs the same triggered points on the baseline model
    (the trigger-only control; without it, the clean copies on the poisoned model)."""
    t = run.triggered
    if base is not None:
        ref = available(align(base.triggered, t), base)
    else:
        ref = available(align(run.clean, t), run)
    att = available(t, run)
    return Cell(
        "availability", len(t), _accuracy(run), lost=share(ref & ~att),
        unavailable=share(~att), unavailable_control=share(~ref), unavailable_rise=change(~ref, ~att),
    )  # fmt: skip


def control(run: Run) -> Cell:
    """The trigger alone on the baseline model: triggered vs clean copies of the same points."""
    t = run.triggered
    if len(t) == 0:
        return Cell("clean", 0, _accuracy(run))
    before = certified(align(run.clean, t), run)
    ref_av = available(align(run.clean, t), run)
    att_av = available(t, run)
    return Cell(
        "control", len(t), _accuracy(run), lost=share(before & ~certified(t, run)),
        unavailable=share(~att_av), unavailable_control=share(~ref_av), unavailable_rise=change(~ref_av, ~att_av),
    )  # fmt: skip


def bilevel(run: Run, base: Run, target: int) -> Cell:
    """The target class's clean points on the poisoned vs the baseline model."""
    pts = run.clean[run.clean["label"] == target].reset_index(drop=True)
    ref = align(base.clean, pts)
    ref_acr, att_acr = acr(ref), acr(pts)
    drop = (ref_acr - att_acr) / ref_acr if ref_acr > 0 else NAN
    return Cell(
        "bilevel", len(pts), _accuracy(run), lost_acr=None if math.isnan(drop) else drop, target_acr_drop=drop,
        target_certified_drop=change(~certified(ref, base), ~certified(pts, run)),
    )  # fmt: skip


def cell(family: str, run: Run, base: Run | None, target: int | None) -> Cell:
    """The effect of an attack of ``family`` (:attr:`certsmooth.attacks.kinds.AttackKind.family`)."""
    if family == "backdoor":
        return backdoor(run, base, int(target))
    if family == "availability":
        return availability(run, base)
    if family == "bilevel":
        if base is None:
            raise ValueError("a bilevel attack's effect needs the suite's clean baseline model")
        return bilevel(run, base, int(target))
    if family == "control":
        return control(run)
    if family == "clean":  # the clean baseline (kind none without a trigger): its accuracy only
        return Cell("clean", 0, _accuracy(run))
    raise ValueError(f"unknown attack family {family!r}")


# The long table: one row per (cell, metric), with its unit
METRICS = (
    ("clean_accuracy", "clean accuracy", "share of clean test points"),
    ("attack_success", "attack success", "share of triggered non-target points"),
    ("certified_vs_attack", "certified against the attack", "share of triggered non-target points"),
    ("unavailable", "unavailable", "share of attacked points"),
    ("unavailable_rise", "unavailable rise", "difference of shares (poisoned − control), same points"),
    ("target_acr_drop", "target ACR drop", "share of the baseline's target-class ACR"),
    ("target_certified_drop", "target certified-accuracy drop", "difference of shares, same points"),
    ("lost", "robustness lost", "share of attacked points"),
)


def long_rows(c: Cell) -> list[dict]:
    """The cell's metrics as rows: metric, value, low, high, unit, n (points), clear."""
    rows = []
    for name, _, unit in METRICS:
        v = getattr(c, name)
        if name == "lost" and c.family == "bilevel":
            v, unit = c.lost_acr, "share of the baseline's target-class ACR"
        if v is None:
            continue
        if isinstance(v, float):
            rows.append({"metric": name, "value": v, "low": NAN, "high": NAN, "unit": unit, "n": c.points})
            continue
        row = {"metric": name, "value": v.value, "low": v.low, "high": v.high, "unit": unit, "n": v.n}
        if isinstance(v, Change):
            row["clear"] = v.clear
        rows.append(row)
    return rows
