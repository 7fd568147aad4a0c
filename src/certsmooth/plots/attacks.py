"""Attack effects: for every (attack, certifier) cell of a suite, how much the attack
lowers certified robustness, as one table, one attack × certifier matrix and grouped bars.

Rows are the suite's attacks, columns its certifiers' runs (the ensembles' two scopes are
two columns), in params.yaml order. What "with" and "without" the attack mean depends on
the attack (:mod:`certsmooth.attacks.kinds`):

* trigger attacks (backdoor, availability; ``none`` with a trigger is the trigger-only
  control; ``none`` without one, the clean baseline, compares clean with clean: 0): the
  poisoned model on the **triggered** and the **clean** copies of the same test points, with
  their true labels (backdoors: the non-target points, clean and triggered). With the suite's baseline (the same
  certifier on clean training data) and the same trigger, the baseline's effect is
  reported next to it and ``net`` = effect on the poisoned model − effect on the baseline;
* bilevel (Mehra et al.): the **target class**'s clean test points on the poisoned model vs
  on the baseline model.

Effects, each "reference − attacked": drop in certified accuracy at r = 0 (pp), rise in
the abstain rate (pp), and the relative ACR drop (%). The matrix is coloured by the
relative ACR drop and annotated with all three; an excluded pair says why.
"""

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
from certsmooth.attacks.kinds import ATTACKS, attack_label  # noqa: E402
from certsmooth.plots.curves import to_markdown  # noqa: E402
from certsmooth.summary import read_summary  # noqa: E402

NAN = float("nan")


def column_of(summary: dict, certifier: str) -> str:
    """The matrix column of a certification summary (as in :mod:`certsmooth.certifiers`)."""
    scope = summary["scope"]  # the ensembles' two scopes are two columns; every other certifier one
    return f"{certifier} ({scope})" if scope in ("train", "joint") else certifier


def row_of(name: str, attack: dict) -> str:
    """A matrix row: the attack's name, and what it is when the name does not say it."""
    label = attack_label(attack)
    if label == name or label.startswith(f"{name}:"):
        return label
    return name if label == "clean" and name == "none" else f"{name} ({label})"


def _point(s: dict, which: str) -> dict:
    """CA@0, abstain rate and ACR of the clean or triggered inputs of one summary."""
    ca = s[f"certified_accuracy_{which}"]
    return {"ca0": ca[min(ca, key=float)], "abstain": s[f"abstain_rate_{which}"], "acr": s[f"acr_{which}"]}


def _same_points(s: dict) -> dict:
    """CA@0, abstain rate and ACR of the clean copies of the triggered points the summary scored
    (the reference of an input effect: the same points; summaries without them: every clean point)."""
    c = s.get("clean_same_points")
    if c is None:
        return _point(s, "clean")
    ca = c["certified_accuracy"]
    return {"ca0": ca[min(ca, key=float)], "abstain": c["abstain_rate"], "acr": c["acr"]}


def _class_point(s: dict, label: int) -> dict:
    c = s.get("per_class_clean", {}).get(str(label))
    if c is None:
        return {"ca0": NAN, "abstain": NAN, "acr": NAN}
    ca = c["certified_accuracy"]
    return {"ca0": ca[min(ca, key=float)], "abstain": c["abstain_rate"], "acr": c["acr"]}


def _effect(ref: dict, att: dict) -> dict:
    return {
        "ca0_drop_pp": 100 * (ref["ca0"] - att["ca0"]),
        "abstain_rise_pp": 100 * (att["abstain"] - ref["abstain"]),
        "acr_drop_pct": 100 * (ref["acr"] - att["acr"]) / ref["acr"] if ref["acr"] > 0 else NAN,
    }


def effect_rows(layout: dict, summaries: dict[str, list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``layout``: the suite's rows and columns (lists of [name, settings] pairs, in
    params.yaml order), baseline and excluded pairs (the workflow's ``matrix_layout``);
    ``summaries``: cell ``<attack>/<certifier>`` → its certification summaries. Returns
    (effects: one row per (attack, column); bars: long format)."""
    rows, bars = [], []
    base = layout.get("baseline")
    attacks = dict(layout["attacks"])
    for a, attack in layout["attacks"]:
        for c, info in layout["certifiers"]:
            cell = f"{a}/{c}"
            label = row_of(a, attack)
            if cell in layout["excluded"]:
                for col in info["columns"]:
                    rows.append({"experiment": cell, "attack": label, "certifier": col, "baseline": "",
                                 "excluded": layout["excluded"][cell]})  # fmt: skip
                continue
            base_by = {column_of(s, c): s for s in summaries.get(f"{base}/{c}", [])} if base and a != base else {}
            for s in summaries.get(cell, []):
                col = column_of(s, c)
                b = base_by.get(col)
                row = {"experiment": cell, "attack": label, "certifier": col, "baseline": f"{base}/{c}" if b else "",
                       "excluded": ""}  # fmt: skip
                if ATTACKS[attack["kind"]].effect == "target_class":
                    t = int(attack["target"])
                    if b is None:
                        row["excluded"] = "no baseline model to compare the target class with"
                        rows.append(row)
                        continue
                    ref, att = _class_point(b, t), _class_point(s, t)
                    row.update(_effect(ref, att), reference="baseline model, target class", attacked="poisoned model")
                    conds = [("clean model", ref), ("poisoned model", att)]
                else:
                    ref, att = _same_points(s), _point(s, "triggered")
                    row.update(_effect(ref, att), reference="the same points, clean", attacked="triggered")
                    conds = [("poisoned model, clean input", ref), ("poisoned model, triggered input", att)]
                    same_trigger = b is not None and attacks[base].get("trigger") == attack.get("trigger")
                    if same_trigger:
                        bref, batt = _same_points(b), _point(b, "triggered")
                        be = _effect(bref, batt)
                        row.update({f"baseline_{k}": v for k, v in be.items()})
                        row.update({f"net_{k}": row[k] - be[k] for k in be})
                        conds += [("no poison, clean input", bref), ("no poison, triggered input", batt)]
                row.update({f"{k}_ref": v for k, v in ref.items()}, **{f"{k}_att": v for k, v in att.items()})
                rows.append(row)
                for cond, point in conds:
                    for metric, name in (("ca0", "certified accuracy (r = 0)"), ("abstain", "abstain rate"),
                                         ("acr", "ACR")):  # fmt: skip
                        bars.append({"attack": label, "certifier": col, "condition": cond, "metric": name,
                                     "value": point[metric]})  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(bars)


def plot_matrix(effects: pd.DataFrame, out: str | Path, title: str, dpi: int, context: str) -> None:
    sns.set_theme(context=context, style="white")
    attacks = list(dict.fromkeys(effects["attack"])) if len(effects) else ["(no attacks)"]
    certs = list(dict.fromkeys(effects["certifier"])) if len(effects) else ["(no certifiers)"]
    grid = np.full((len(attacks), len(certs)), np.nan)
    text = np.full(grid.shape, "n/a", dtype=object)
    for _, r in effects.iterrows():
        i, j = attacks.index(r["attack"]), certs.index(r["certifier"])
        if r.get("excluded"):
            text[i, j] = "excluded:\n" + "\n".join(textwrap.wrap(str(r["excluded"]), 22))
            continue
        grid[i, j] = r["acr_drop_pct"]
        acr = "no certificate" if math.isnan(r["acr_drop_pct"]) else f"ACR −{r['acr_drop_pct']:.0f}%"
        lines = [acr, f"CA₀ −{r['ca0_drop_pp']:.1f} pp", f"abstain +{r['abstain_rise_pp']:.1f} pp"]
        if not math.isnan(r.get("baseline_abstain_rise_pp", NAN)):
            lines.append(f"no poison: +{r['baseline_abstain_rise_pp']:.1f} pp")
        text[i, j] = "\n".join(lines).replace("−-", "+").replace("+-", "−")
    # at most 16 in (2,400 px at 150 dpi) wide for the demo's nine columns, text at 8 pt
    fig, ax = plt.subplots(figsize=(3.4 + 1.38 * len(certs), 1.2 + 0.9 * len(attacks)))
    lim = max(10.0, float(np.nanmax(np.abs(grid)))) if np.isfinite(grid).any() else 10.0
    sns.heatmap(grid, ax=ax, cmap="RdBu_r", vmin=-lim, vmax=lim, annot=text, fmt="", cbar_kws={"label": "ACR drop (%)"},
                xticklabels=certs, yticklabels=attacks, linewidths=1, linecolor="white",
                annot_kws={"fontsize": 8})  # fmt: skip
    ax.set_xlabel("certifier")
    ax.set_ylabel("attack")
    ax.set_title(title, fontsize=10)
    for i, j in zip(*np.nonzero(~np.isfinite(grid)), strict=True):  # excluded (or no ACR to compare)
        ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor="0.93", edgecolor="white", lw=1))
        ax.text(j + 0.5, i + 0.5, text[i, j] if text[i, j] != "n/a" else "not run", ha="center", va="center",
                fontsize=8, color="0.45")  # fmt: skip
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_bars(bars: pd.DataFrame, out: str | Path, title: str, dpi: int, context: str) -> None:
    sns.set_theme(context=context, style="whitegrid")
    if len(bars) == 0:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no attack with a certifier in this suite", ha="center", va="center")
    else:
        g = sns.catplot(data=bars, kind="bar", x="attack", y="value", hue="condition", row="metric",
                        col="certifier", sharey="row", height=2.6, aspect=1.3, margin_titles=True,
                        palette="Paired", order=list(dict.fromkeys(bars["attack"])),
                        col_order=list(dict.fromkeys(bars["certifier"])))  # fmt: skip
        sns.move_legend(g, "lower center", ncol=3, bbox_to_anchor=(0.5, 0.0), title=None, frameon=False)
        g.set_axis_labels("", "")
        g.set_titles(row_template="{row_name}", col_template="{col_name}")
        for ax in g.axes.flat:
            plt.setp(ax.get_xticklabels(), rotation=25, ha="right", fontsize=7)
        g.figure.suptitle(title, fontsize=10)
        g.figure.tight_layout(rect=(0, 0.06, 1, 1))
        fig = g.figure
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_attacks(
    suite: str, layout: dict, summary_paths: list[str], out_matrix: str, out_bars: str, out_csv: str, out_md: str,
    dpi: int, context: str,
) -> pd.DataFrame:  # fmt: skip
    summaries: dict[str, list[dict]] = {}
    for p in summary_paths:
        s = read_summary(p)
        summaries.setdefault(s["experiment"].split("/", 1)[1], []).append(s)
    effects, bars = effect_rows(layout, summaries)
    plot_matrix(effects, out_matrix, f"{suite}: effect of each attack on each certifier", dpi, context)
    plot_bars(bars, out_bars, f"{suite}: with and without the attack", dpi, context)
    with atomic_path(out_csv) as tmp:
        effects.to_csv(tmp, index=False, float_format="%.6g")
    md = f"# {suite}: attack effects\n\n" + (to_markdown(effects) if len(effects) else "(no attacks)\n")
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(md)
    return effects
