"""Certified accuracy vs radius (ℓ2 or poisons) for every matrix column of a suite with a certificate."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from certsmooth.artifacts import atomic_path  # noqa: E402
from certsmooth.certifiers import CERTIFIERS  # noqa: E402
from certsmooth.metrics import curve  # noqa: E402
from certsmooth.summary import read_summary  # noqa: E402

NAN = float("nan")


def axis_of(summary: dict) -> str:
    """'l2', 'poisons' or 'none': what the run's certificate counts (its certifier's axis)."""
    return CERTIFIERS[summary["method"]].axis


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    run_dir = Path(run_dir)
    summary = read_summary(run_dir / "summary.json")
    clean = pd.read_csv(run_dir / "clean.csv")
    trig = pd.read_csv(run_dir / "triggered.csv")
    return summary, clean, trig[trig["nontarget"]]


def ceiling(summary: dict) -> float | None:
    """The largest radius the run can certify any point (an ensemble's R_max, Cohen's n-cap, a
    unanimous vote's count), in the run's own unit; None if the summary does not say."""
    v = summary.get("max_radius")
    return None if v is None else float(v)


def at_ceiling(summary: dict, frame: pd.DataFrame) -> float:
    """The share of the certified points (correct, radius > 0 or ≥ 0) whose radius is the ceiling."""
    top = ceiling(summary)
    ok = frame["correct"].to_numpy(dtype=bool) & ~frame["abstain"].to_numpy(dtype=bool)
    if top is None or not ok.any():
        return NAN
    return float(np.mean(frame["radius"].to_numpy()[ok] >= top * (1 - 1e-6)))  # the CSVs keep 8 digits


def column_of(summary: dict, certifier: str | None = None) -> str:
    """The matrix column of a certification summary: the certifier's name (by default the one
    its experiment names), with the scope for an ensemble (its two scopes are two columns)."""
    name = certifier or summary["experiment"].split("/")[2]
    return f"{name} ({summary['scope']})" if summary["scope"] in ("train", "joint") else name


def plot_suite(suite, runs, out_png, out_curves, dpi: int = 150, context: str = "paper") -> None:
    """The suite's certified-accuracy curves (figure and DVC plot data)."""
    curves, panels = [], {}
    for run in runs:
        s, clean, trig = load_run(run)
        if axis_of(s) == "none":  # no certificate (the undefended control): in the leaderboard, not on an axis
            continue
        attack = s["experiment"].split("/")[1]
        col = column_of(s)
        per = s.get("per_poison", 1) if axis_of(s) == "poisons" else 1  # count certificates: in poisons
        top = ceiling(s)
        panels.setdefault(col, {"axis": axis_of(s), "cap": None, "at_cap": NAN, "attacks": []})
        p = panels[col]
        if top is not None:  # Cert-SSB's σ, and so its cap, differ by poisoned set: the largest
            p["cap"] = max(p["cap"] or 0, top // per if per > 1 else top)
        if attack not in p["attacks"]:
            p["attacks"].append(attack)
        if attack == "none" or math.isnan(p["at_cap"]):  # the share at the ceiling: the baseline's
            p["at_cap"] = at_ceiling(s, clean)
        dep = s["deployed_attack"]  # where the deployed poisons sit on the axis (Cohen's radius: none)
        p.setdefault("deployed", {})[attack] = (dep["num_poisons"] if axis_of(s) == "poisons" else
                                                0 if s["scope"] == "cohen" else dep["stacked_train_norm"])  # fmt: skip
        for name, frame in (("clean", clean), ("triggered", trig)):
            f = frame.assign(radius=frame["radius"] // per) if per > 1 else frame
            c = curve(f, s["radius_cmp"])
            c["attack"], c["test set"], c["column"] = attack, name, col
            curves.append(c)
    columns = ["radius", "certified_accuracy", "attack", "test set", "column"]
    data = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns)
    if curves:
        _plot_curves(suite, data, panels, out_png, dpi, context)
    else:  # only columns without a certificate
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{suite}: no certifier with a certificate (accuracies: leaderboard.md)", ha="center")
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)
    plot_data = data.rename(columns={"test set": "test_set"})
    plot_data["series"] = plot_data["attack"] + " / " + plot_data["column"] + " / " + plot_data["test_set"]
    with atomic_path(out_curves) as tmp:
        plot_data[["radius", "certified_accuracy", "series"]].to_csv(tmp, index=False, float_format="%.6g")


def _plot_curves(suite: str, data: pd.DataFrame, panels: dict, out_png, dpi: int, context: str) -> None:
    """Certified accuracy vs radius, one panel per matrix column, colour = attack, line style =
    clean or triggered test points; the ceiling dashed (named where ≥ 20 % of the certified clean
    points of the baseline sit at it), each attack's deployed poisons dotted where in range."""
    attacks = list(dict.fromkeys(data["attack"]))
    colours = dict(zip(attacks, sns.color_palette("tab10", len(attacks)), strict=True))
    cols = list(panels)
    ncol = min(4, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    with sns.plotting_context(context), sns.axes_style("whitegrid"):
        width = max(8.0, 3.9 * ncol)  # one panel: room for the title and the legend
        fig, axes = plt.subplots(nrow, ncol, figsize=(width, 2.9 * nrow + 0.9), squeeze=False)
        for ax, col in zip(axes.flat, cols, strict=False):
            p, d = panels[col], data[data["column"] == col]
            for a in p["attacks"]:
                for name, style in (("clean", "-"), ("triggered", "--")):
                    e = d[(d["attack"] == a) & (d["test set"] == name)]
                    ax.step(e["radius"], e["certified_accuracy"], where="post", color=colours[a], ls=style, lw=1.2)
            top = float(d["radius"].max()) if len(d) else 1.0
            if p["cap"] is not None:
                top = max(top, p["cap"])
                ax.axvline(p["cap"], color="0.2", ls=(0, (5, 2)), lw=1)
                share = p["at_cap"]
                binds = not math.isnan(share) and share >= 0.2
                ax.annotate(f"cap {p['cap']:.3g}" + (f"\n{share:.0%} at cap" if binds else ""), (p["cap"], 0.03),
                            xycoords="data", ha="right", va="bottom", fontsize=8, color="0.2",
                            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})  # fmt: skip
            for a, at in p.get("deployed", {}).items():
                if 0 < at <= top and a != "none":
                    ax.axvline(at, color=colours[a], ls=":", lw=1)
            ax.set_xlim(-0.02 * top, 1.04 * top)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(col, fontsize=9)
            unit = "poisoned training samples" if p["axis"] == "poisons" else "ℓ2 radius r"
            ax.set_xlabel(unit, fontsize=8)
            ax.set_ylabel("certified accuracy", fontsize=8)
            ax.tick_params(labelsize=8)
        for ax in list(axes.flat)[len(cols):]:
            ax.axis("off")
        handles = [plt.Line2D([], [], color=colours[a], label=a) for a in attacks]
        handles += [plt.Line2D([], [], color="0.3", ls=s, label=f"{n} test points") for n, s in
                    (("clean", "-"), ("triggered", "--"))]  # fmt: skip
        fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=8)
        note = ("dashed black: the ceiling (ensemble R_max, Cohen's n-cap, a unanimous vote); dotted: the deployed "
                "poisons (ℓ2: their stacked norm √Σ‖δᵢ‖²; counts: the number of poisons)")  # fmt: skip
        title = f"{suite}: certified accuracy (triggered: non-target points, true labels)"
        fig.suptitle(title + "\n" + "\n".join(textwrap.wrap(note, int(15 * width))), fontsize=9)
        fig.tight_layout(rect=(0, 0.07 + 0.03 * math.ceil(len(handles) / 4) / 2, 1, 1))
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)

