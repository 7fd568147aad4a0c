"""Attack effects: for every (attack, certifier) of a suite, how much the attack lowers
certified robustness, as one table, one attack × certifier matrix and grouped bars.

What "with" and "without" the attack mean depends on the attack:

* trigger attacks (backdoor, availability; ``none`` with a trigger is the trigger-only
  control): the poisoned model on **triggered** vs **clean** test inputs (all points with
  their true labels; backdoors: the non-target points). With a ``baseline`` experiment
  (the same certifiers without poisons), the same comparison on the baseline is reported
  next to it and ``net`` = effect on the poisoned model − effect on the baseline;
* bilevel (Mehra et al.): the **target class**'s clean test points on the poisoned model vs
  on the baseline model (needs ``baseline``).

Effects, each "reference − attacked": drop in certified accuracy at r = 0 (pp), rise in
the abstain rate (pp), and the relative ACR drop (%). The matrix is coloured by the
relative ACR drop and annotated with all three.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from certsmooth.artifacts import atomic_path, read_json  # noqa: E402
from certsmooth.plots.curves import method_label, to_markdown  # noqa: E402

NAN = float("nan")


def attack_label(attack: dict) -> str:
    kind = attack["kind"]
    if kind == "backdoor":
        return f"backdoor: {attack['trigger']['name']} {100 * attack['rate']:g}%"
    if kind in ("avail_uniform", "avail_split"):
        return f"availability ({kind.split('_')[1]}) {100 * attack['rate']:g}%"
    if kind == "bilevel":
        return f"bilevel vs {attack['bilevel']['victim']} (ε={attack['epsilon']:g})"
    return f"control: {attack['trigger']['name']} trigger only" if "trigger" in attack else "clean"


def certifier_label(s: dict) -> str:
    m = method_label(s)
    name = {"rab": "RAB", "certssb": "Cert-SSB"}.get(m, m.replace("cohen/", "Cohen/"))
    return name if s["scope"] == "cohen" else f"{name} ({s['scope']})"


def _point(s: dict, which: str) -> dict:
    """CA@0, abstain rate and ACR of the clean or triggered inputs of one summary."""
    ca = s[f"certified_accuracy_{which}"]
    return {"ca0": ca[min(ca, key=float)], "abstain": s[f"abstain_rate_{which}"], "acr": s[f"acr_{which}"]}


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


def effect_rows(experiments: dict[str, dict], summaries: dict[str, list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``experiments``: name → its params entry; ``summaries``: name → its certification
    summaries. Returns (effects: one row per (attack, certifier); bars: long format)."""
    rows, bars = [], []
    for name, cfg in experiments.items():
        attack = cfg["attack"]
        if attack["kind"] == "none" and "trigger" not in attack:
            continue  # a clean baseline is no attack
        base = cfg.get("baseline")
        base_by = {certifier_label(s): s for s in summaries.get(base, [])} if base else {}
        for s in summaries.get(name, []):
            cert = certifier_label(s)
            b = base_by.get(cert)
            row = {"experiment": name, "attack": attack_label(attack), "certifier": cert, "baseline": base or ""}
            if attack["kind"] == "bilevel":
                t = int(attack["target"])
                if b is None:
                    continue  # no clean model to compare with
                ref, att = _class_point(b, t), _class_point(s, t)
                row.update(_effect(ref, att), reference="baseline model, target class", attacked="poisoned model")
                row.update({f"{k}_ref": v for k, v in ref.items()}, **{f"{k}_att": v for k, v in att.items()})
                conds = [("clean model", ref), ("poisoned model", att)]
            else:
                ref, att = _point(s, "clean"), _point(s, "triggered")
                row.update(_effect(ref, att), reference="clean inputs", attacked="triggered inputs")
                row.update({f"{k}_ref": v for k, v in ref.items()}, **{f"{k}_att": v for k, v in att.items()})
                conds = [("poisoned model, clean input", ref), ("poisoned model, triggered input", att)]
                if b is not None:
                    bref, batt = _point(b, "clean"), _point(b, "triggered")
                    be = _effect(bref, batt)
                    row.update({f"baseline_{k}": v for k, v in be.items()})
                    row.update({f"net_{k}": row[k] - be[k] for k in be})
                    conds += [("no poison, clean input", bref), ("no poison, triggered input", batt)]
            rows.append(row)
            for cond, point in conds:
                for metric, label in (("ca0", "certified accuracy (r = 0)"), ("abstain", "abstain rate"),
                                      ("acr", "ACR")):  # fmt: skip
                    bars.append({"attack": row["attack"], "certifier": cert, "condition": cond, "metric": label,
                                 "value": point[metric]})  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(bars)


def plot_matrix(effects: pd.DataFrame, out: str | Path, title: str, dpi: int, context: str) -> None:
    sns.set_theme(context=context, style="white")
    attacks = _ordered(effects, "attack") or ["(no attacks)"]
    certs = _ordered(effects, "certifier") or ["(no certifiers)"]
    grid = np.full((len(attacks), len(certs)), np.nan)
    text = np.full(grid.shape, "n/a", dtype=object)
    for _, r in effects.iterrows():
        i, j = attacks.index(r["attack"]), certs.index(r["certifier"])
        grid[i, j] = r["acr_drop_pct"]
        lines = [f"ACR −{r['acr_drop_pct']:.0f}%", f"CA₀ −{r['ca0_drop_pp']:.1f} pp",
                 f"abstain +{r['abstain_rise_pp']:.1f} pp"]  # fmt: skip
        if not math.isnan(r.get("baseline_abstain_rise_pp", NAN)):
            lines.append(f"(no poison: +{r['baseline_abstain_rise_pp']:.1f} pp)")
        text[i, j] = "\n".join(lines).replace("−-", "+").replace("+-", "−")
    fig, ax = plt.subplots(figsize=(2.3 + 2.4 * len(certs), 1.2 + 1.05 * len(attacks)))
    lim = max(10.0, float(np.nanmax(np.abs(grid)))) if np.isfinite(grid).any() else 10.0
    sns.heatmap(grid, ax=ax, cmap="RdBu_r", vmin=-lim, vmax=lim, annot=text, fmt="", cbar_kws={"label": "ACR drop (%)"},
                xticklabels=certs, yticklabels=attacks, linewidths=1, linecolor="white",
                annot_kws={"fontsize": 7})  # fmt: skip
    ax.set_xlabel("certifier")
    ax.set_ylabel("attack")
    ax.set_title(title, fontsize=10)
    for i, j in zip(*np.nonzero(~np.isfinite(grid)), strict=True):  # not evaluated (or no ACR to compare)
        ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor="0.93", edgecolor="white", lw=1))
        ax.text(j + 0.5, i + 0.5, text[i, j] if text[i, j] != "n/a" else "not run", ha="center", va="center",
                fontsize=7, color="0.45")  # fmt: skip
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def _rank(label: str, order: tuple[str, ...]) -> int:
    return next((i for i, k in enumerate(order) if label.startswith(k)), len(order))


def _ordered(frame: pd.DataFrame, column: str) -> list[str]:
    """Attacks by family (backdoor, availability, control, bilevel), certifiers by kind
    (RAB, Cert-SSB, Cohen), each then alphabetically."""
    order = {"attack": ("backdoor", "availability", "control", "bilevel"), "certifier": ("RAB", "Cert-SSB", "Cohen")}
    if len(frame) == 0:
        return []
    return sorted(dict.fromkeys(frame[column]), key=lambda v: (_rank(v, order[column]), v))


def plot_bars(bars: pd.DataFrame, out: str | Path, title: str, dpi: int, context: str) -> None:
    sns.set_theme(context=context, style="whitegrid")
    if len(bars) == 0:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no attack with a certifier in this suite", ha="center", va="center")
    else:
        g = sns.catplot(data=bars, kind="bar", x="attack", y="value", hue="condition", row="metric",
                        col="certifier", sharey="row", height=2.6, aspect=1.3, margin_titles=True,
                        palette="Paired", order=_ordered(bars, "attack"),
                        col_order=_ordered(bars, "certifier"))  # fmt: skip
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
    suite: str, experiments: dict[str, dict], summary_paths: list[str], out_matrix: str, out_bars: str,
    out_csv: str, out_md: str, dpi: int, context: str,
) -> pd.DataFrame:  # fmt: skip
    summaries: dict[str, list[dict]] = {}
    for p in summary_paths:
        s = read_json(p)
        summaries.setdefault(s["experiment"].split("/", 1)[1], []).append(s)
    effects, bars = effect_rows(experiments, summaries)
    plot_matrix(effects, out_matrix, f"{suite}: effect of each attack on each certifier", dpi, context)
    plot_bars(bars, out_bars, f"{suite}: with and without the attack", dpi, context)
    with atomic_path(out_csv) as tmp:
        effects.to_csv(tmp, index=False, float_format="%.6g")
    md = f"# {suite}: attack effects\n\n" + (to_markdown(effects) if len(effects) else "(no attacks)\n")
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(md)
    return effects
