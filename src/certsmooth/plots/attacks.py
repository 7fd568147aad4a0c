"""A suite's attack × certifier matrix, its leaderboard, its long table and its effect figure.

Rows are the suite's attacks, columns its certifiers' runs (the ensembles' two scopes are two
columns), in params.yaml order. Every number comes from :mod:`certsmooth.effects`: the metric
each attack family is about (backdoor: attack success and the share certified against the
deployed poisoning; availability: the rise of the unavailable rate over the trigger-only
control; bilevel: the target class's ACR and certified-accuracy drop), on the same test points
with and without the attack, with 95 % intervals. The matrix has one colour
quantity, *robustness lost*; an excluded pair says why.

Outputs: ``attack_matrix.png`` and ``matrix.csv`` (the same as a table), ``attack_effects.png``
(the effects with their intervals, one panel per metric), ``leaderboard.{csv,md}`` (one row per
attack × column, ≤ 10 columns, "—" where a metric does not apply), ``cells.csv`` (long format:
one row per cell and metric, with its unit; also each run's certification metrics) and the DVC
metrics, one small JSON per cell.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from certsmooth import effects as fx  # noqa: E402
from certsmooth.artifacts import atomic_path, write_json  # noqa: E402
from certsmooth.attacks.kinds import ATTACKS, attack_label  # noqa: E402
from certsmooth.plots import curves  # noqa: E402
from certsmooth.plots.curves import at_ceiling, column_of  # noqa: E402

NAN = float("nan")
CAP_BINDS = 0.2  # a ceiling binds where this share of the certified points sits at it
DASH = "—"
COLOUR = ("robustness lost: share of the attacked points with a guarantee without the attack "
          "and none with it (bilevel: share of the target class's ACR)")  # fmt: skip
# the leaderboard's columns after attack and certifier: (Cell attribute, header)
BOARD = (
    ("clean_accuracy", "clean accuracy (%)"),
    ("attack_success", "attack success (%)"),
    ("certified_vs_attack", "certified vs attack (%)"),
    ("unavailable_rise", "unavailable rise (pp)"),
    ("target_acr_drop", "target ACR drop (%)"),
    ("lost", "robustness lost (%)"),
    ("points", "attacked points"),
)


def row_of(name: str, attack: dict) -> str:
    """A matrix row: the attack's name, and what it is when the name does not say it."""
    label = attack_label(attack)
    if label == name or label.startswith(f"{name}:"):
        return label
    return name if label == "clean" and name == "none" else f"{name} ({label})"


def load_run(run_dir: str | Path) -> tuple[dict, fx.Run]:
    """A certification folder's summary and per-point results (the triggered non-target points)."""
    s, clean, trig = curves.load_run(run_dir)
    return s, fx.Run(clean, trig.reset_index(drop=True), s["radius_cmp"], curves.axis_of(s))


def cell_rows(layout: dict, runs: dict[str, list[tuple[dict, fx.Run]]]) -> list[dict]:
    """``layout``: the suite's rows and columns (lists of [name, settings] pairs, in params.yaml
    order), baseline and excluded pairs (the workflow's ``matrix_layout``); ``runs``: cell
    ``<attack>/<certifier>`` → its runs (summary, per-point results). One dict per (attack,
    column): names, and the :class:`certsmooth.effects.Cell` or why there is none."""
    out = []
    base = layout.get("baseline")
    attacks = dict(layout["attacks"])
    for a, attack in layout["attacks"]:
        family = ATTACKS[attack["kind"]].family
        if family == "control" and "trigger" not in attack:
            family = "clean"  # the clean baseline: nothing to compare
        for c, info in layout["certifiers"]:
            name = f"{a}/{c}"
            head = {"attack": row_of(a, attack), "attack_name": a, "certifier_name": c, "family": family}
            if name in layout["excluded"]:
                out += [{**head, "certifier": col, "excluded": layout["excluded"][name], "cell": None}
                        for col in info["columns"]]  # fmt: skip
                continue
            base_by = {column_of(s, c): r for s, r in runs.get(f"{base}/{c}", [])} if base and a != base else {}
            for s, run in runs.get(name, []):
                col = column_of(s, c)
                b = base_by.get(col)
                if family == "availability" and b is not None and attacks[base].get("trigger") != attack.get("trigger"):
                    b = None  # the control is the same trigger without the poisons
                row = {**head, "certifier": col, "summary": s, "excluded": "", "cell": None,
                       "at_cap": at_ceiling(s, run.clean)}  # fmt: skip
                if family == "bilevel" and b is None:
                    row["excluded"] = "no baseline model to compare the target class with"
                else:
                    row["cell"] = fx.cell(family, run, b, attack.get("target"))
                out.append(row)
    return out


def _pct(v, signed: bool = False) -> str:
    r = round(100 * v) + 0  # + 0: no "−0"
    return (f"{r:+d}" if signed else f"{r:d}").replace("-", "−")


def fmt(v, signed: bool = False, short: bool = False) -> str:
    """A value in %, with its interval: ``90 [86, 93]`` (``short``: ``90 [86,93]``); "—" for none."""
    if v is None:
        return DASH
    if isinstance(v, float):
        return DASH if math.isnan(v) else _pct(v, signed)
    if v.n == 0:
        return DASH
    sep = "," if short else ", "
    text = f"{_pct(v.value, signed)} [{_pct(v.low, signed)}{sep}{_pct(v.high, signed)}]"
    return text + (" n.s." if isinstance(v, fx.Change) and not v.clear else "")


def leaderboard(rows: list[dict]) -> pd.DataFrame:
    """One row per (attack, column) with a result: the family's numbers with their intervals."""
    table = []
    for r in rows:
        c = r["cell"]
        entry = {"attack": r["attack"], "certifier": r["certifier"]}
        for key, head in BOARD:
            if c is None:
                entry[head] = f"excluded: {r['excluded']}" if key == "lost" and r["excluded"] else DASH
            elif key == "points":
                entry[head] = str(c.points)
            elif key == "lost" and c.family == "bilevel":
                entry[head] = fmt(c.lost_acr)
            else:
                entry[head] = fmt(getattr(c, key), signed=key == "unavailable_rise")
        table.append(entry)
    return pd.DataFrame(table, columns=["attack", "certifier"] + [h for _, h in BOARD])


def long_table(rows: list[dict]) -> pd.DataFrame:
    """One row per (cell, metric): the effects and each run's certification metrics, with units."""
    out = []
    for r in rows:
        head = {"attack": r["attack_name"], "certifier": r["certifier"], "family": r["family"]}
        if r["cell"] is not None:
            out += [{**head, **m} for m in fx.long_rows(r["cell"])]
        s = r.get("summary")
        if s is None:
            continue
        axis = curves.axis_of(s)
        unit = {"l2": "ℓ2 radius", "poisons": "poisoned samples"}.get(axis)
        if unit:
            for which in ("clean", "triggered"):
                out.append({**head, "metric": f"acr_{which}", "value": s[f"acr_{which}"], "unit": f"mean {unit}",
                            "n": s[f"num_{which}"]})  # fmt: skip
                for radius, v in s[f"certified_accuracy_{which}"].items():
                    out.append({**head, "metric": f"certified_accuracy_{which}", "radius": float(radius), "value": v,
                                "unit": f"share of points, certified at {unit} r", "n": s[f"num_{which}"]})  # fmt: skip
    cols = ["attack", "certifier", "family", "metric", "radius", "value", "low", "high", "unit", "n", "clear"]
    return pd.DataFrame(out, columns=cols)


def matrix_table(rows: list[dict]) -> pd.DataFrame:
    """The matrix as a table (the report's landing page): one row per attack, one column per
    certifier column, each cell the family's numbers and robustness lost, in %, with intervals."""
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    certs = list(dict.fromkeys(r["certifier"] for r in rows))
    table = pd.DataFrame("not run", index=pd.Index(attacks, name="attack"), columns=certs)
    for r in rows:
        c = r["cell"]
        if c is None:
            text = f"excluded: {r['excluded']}"
        else:
            lost = fmt(c.lost_acr) if c.family == "bilevel" else fmt(c.lost, short=True)
            text = cell_text(c).replace("\n", "; ").replace("; [", " [") + f"; lost {lost}"
        table.loc[r["attack"], r["certifier"]] = text
    return table.reset_index()


def metrics_files(rows: list[dict], out_dir: str | Path) -> None:
    """DVC metrics: one small JSON per cell, ``<out_dir>/<attack>/<column>.json`` (``dvc metrics
    show`` prints one row per cell)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for r in rows:
        c = r["cell"]
        if c is None:
            continue
        values = {"lost": c.lost_acr if c.family == "bilevel" else c.lost}
        values |= {k: getattr(c, k) for k in ("clean_accuracy", "attack_success", "certified_vs_attack",
                                              "unavailable_rise", "target_acr_drop")}  # fmt: skip
        flat = {k: round(v if isinstance(v, float) else v.value, 4) for k, v in values.items() if v is not None}
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", r["certifier"]).strip("-")
        write_json(out_dir / r["attack_name"] / f"{name}.json", {k: v for k, v in flat.items() if not math.isnan(v)})


def cell_text(c: fx.Cell) -> str:
    """The matrix cell's text: the family's own numbers in %, with their intervals."""
    if c.family == "backdoor":
        return f"ASR {fmt(c.attack_success, short=True)}\ncert. {fmt(c.certified_vs_attack, short=True)}"
    if c.family in ("availability", "control"):
        return f"unav. {fmt(c.unavailable, short=True)}\nΔ {fmt(c.unavailable_rise, signed=True, short=True)}"
    if c.family == "bilevel":
        drop = fmt(c.target_certified_drop, signed=True, short=True).split(" ", 1)
        return f"ACR drop {fmt(c.target_acr_drop)}\nCA₀ drop {drop[0]}\n{drop[1] if len(drop) > 1 else ''}".strip()
    return "clean baseline"


def column_label(column: str, rows: list[dict]) -> str:
    """A matrix column's name, and where its ceiling binds (≥ 20 % of the certified clean points
    of the baseline, or of any row, at the largest certifiable radius) the share at it."""
    shares = [r.get("at_cap", NAN) for r in rows if r["certifier"] == column]
    shares = [v for v in shares if not math.isnan(v)]
    top = max(shares, default=NAN)
    return column if math.isnan(top) or top < CAP_BINDS else f"{column}\n{top:.0%} at its cap"


def plot_matrix(rows: list[dict], out: str | Path, title: str, dpi: int, context: str) -> None:
    sns.set_theme(context=context, style="white")
    attacks = list(dict.fromkeys(r["attack"] for r in rows)) or ["(no attacks)"]
    certs = list(dict.fromkeys(r["certifier"] for r in rows)) or ["(no certifiers)"]
    grid = np.full((len(attacks), len(certs)), np.nan)
    text = np.full(grid.shape, "not run", dtype=object)
    for r in rows:
        i, j = attacks.index(r["attack"]), certs.index(r["certifier"])
        if r["cell"] is None:
            text[i, j] = "excluded:\n" + "\n".join(textwrap.wrap(str(r["excluded"]), 20))
            continue
        grid[i, j] = r["cell"].colour
        text[i, j] = cell_text(r["cell"])
    # at most 16 in (2,400 px at 150 dpi) wide for the demo's nine columns, text at 8 pt; a small
    # matrix keeps room for its title and colour bar
    width, height = max(9.0, 3.4 + 1.38 * len(certs)), max(4.5, 1.4 + 0.9 * len(attacks))
    fig, ax = plt.subplots(figsize=(width, height))
    sns.heatmap(grid, ax=ax, cmap="Reds", vmin=0, vmax=1, annot=np.where(np.isfinite(grid), text, ""), fmt="",
                cbar_kws={"label": "\n".join(textwrap.wrap(COLOUR, int(9 * height))), "format": "{x:.0%}"},
                xticklabels=[column_label(c, rows) for c in certs], yticklabels=attacks, linewidths=1,
                linecolor="white", annot_kws={"fontsize": 8})  # fmt: skip
    ax.figure.axes[-1].yaxis.label.set_size(8)
    ax.set_xlabel("certifier")
    ax.set_ylabel("attack")
    legend = ("text in %, [95 % interval]: backdoors: attack success (ASR), certified against the deployed poisoning "
              "(cert.; — : no poisoning bound); availability: unavailable (unav.) and its rise over the trigger-only "
              "control (Δ, pp); bilevel: the target class's ACR and CA₀ drop; n.s.: the interval holds 0")  # fmt: skip
    fig.suptitle(title + "\n" + "\n".join(textwrap.wrap(legend, int(15 * width))), fontsize=8)
    for i, j in zip(*np.nonzero(~np.isfinite(grid)), strict=True):  # excluded, not run, nothing to compare
        ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor="0.93", edgecolor="white", lw=1))
        ax.text(j + 0.5, i + 0.5, text[i, j], ha="center", va="center", fontsize=8, color="0.35")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


# the effect figure's panels: (Cell attribute, title, families)
PANELS = (
    ("lost", "robustness lost (share of attacked points)", None),
    ("attack_success", "backdoors: attack success", ("backdoor",)),
    ("certified_vs_attack", "backdoors: certified vs the deployed poisoning", ("backdoor",)),
    ("unavailable_rise", "availability: unavailable rise over the control", ("availability", "control")),
    ("target_certified_drop", "bilevel: target class's CA₀ drop", ("bilevel",)),
)


def effect_points(rows: list[dict]) -> pd.DataFrame:
    """The effect figure's data: one row per (panel, attack, column) with value and interval."""
    out = []
    for r in rows:
        c = r["cell"]
        if c is None:
            continue
        for key, title, families in PANELS:
            if families is not None and c.family not in families:
                continue
            v = getattr(c, key)
            if key == "lost" and c.family == "bilevel":
                v = c.lost_acr
            if v is None or (isinstance(v, float) and math.isnan(v)) or (not isinstance(v, float) and v.n == 0):
                continue
            value, low, high = (v, v, v) if isinstance(v, float) else (v.value, v.low, v.high)
            out.append({"panel": title, "attack": r["attack"], "certifier": r["certifier"], "value": value,
                        "low": low, "high": high})  # fmt: skip
    return pd.DataFrame(out, columns=["panel", "attack", "certifier", "value", "low", "high"])


def plot_effects(rows: list[dict], out: str | Path, title: str, dpi: int, context: str) -> None:
    """One panel per metric: each attack's value per column with its 95 % interval."""
    sns.set_theme(context=context, style="whitegrid")
    data = effect_points(rows)
    panels = [t for _, t, _ in PANELS if t in set(data["panel"])]
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no attack with a certifier in this suite", ha="center", va="center")
    else:
        certs = list(dict.fromkeys(r["certifier"] for r in rows))
        attacks = list(dict.fromkeys(data["attack"]))
        colours = dict(zip(attacks, sns.color_palette("tab10", len(attacks)), strict=True))
        ncol = min(3, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.0 * ncol, 3.2 * nrow + 0.8), squeeze=False)
        width = 0.8 / max(1, len(attacks))
        for ax, panel in zip(axes.flat, panels, strict=False):
            d = data[data["panel"] == panel]
            for k, a in enumerate(attacks):
                e = d[d["attack"] == a]
                if len(e) == 0:
                    continue
                x = np.array([certs.index(c) for c in e["certifier"]]) - 0.4 + width * (k + 0.5)
                ax.errorbar(x, e["value"], yerr=[e["value"] - e["low"], e["high"] - e["value"]], fmt="o", ms=3.5,
                            color=colours[a], capsize=2, lw=1)  # fmt: skip
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_title(panel, fontsize=9)
            ax.set_xticks(range(len(certs)), certs, rotation=30, ha="right", fontsize=8)
            ax.set_xlim(-0.6, len(certs) - 0.4)
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.tick_params(axis="y", labelsize=8)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        handles = [plt.Line2D([], [], marker="o", ls="", color=colours[a], label=a) for a in attacks]
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(attacks)), frameon=False, fontsize=8,
                   title="attack (bars: 95 % interval)", title_fontsize=8)  # fmt: skip
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0.05 + 0.025 * math.ceil(len(attacks) / 4), 1, 1))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def to_markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row[c]) for c in cols) + " |" for _, row in table.iterrows()]
    return "\n".join(lines) + "\n"


BOARD_NOTE = """
Values in %, [95 % interval: Clopper–Pearson for a share, Newcombe's for a paired change];
"n.s.": the interval of a change holds 0. Backdoors: attack success and the share certified
against the deployed poisoning on the triggered non-target points. Availability: the rise of the
unavailable rate (abstained or no certificate) over the trigger-only control on the same points.
Bilevel: the target class's ACR drop, poisoned vs baseline model. Robustness lost: the share of
the attacked points with a guarantee without the attack and none with it (bilevel: the share of
the target class's ACR). "—": not this attack family's metric, or no certificate. Every number
with its unit and point count: `cells.csv`.
"""


def plot_attacks(
    suite: str, layout: dict, run_dirs: list[str], out_matrix: str, out_effects: str, out_board_csv: str,
    out_board_md: str, out_cells: str, out_matrix_csv: str, out_metrics: str, dpi: int, context: str,
) -> list[dict]:  # fmt: skip
    runs: dict[str, list] = {}
    for d in run_dirs:
        s, run = load_run(d)
        runs.setdefault(s["experiment"].split("/", 1)[1], []).append((s, run))
    rows = cell_rows(layout, runs)
    plot_matrix(rows, out_matrix, f"{suite}: what each attack does to each certifier", dpi, context)
    plot_effects(rows, out_effects, f"{suite}: attack effects, the same points with and without the attack", dpi,
                 context)  # fmt: skip
    board = leaderboard(rows)
    with atomic_path(out_board_csv) as tmp:
        board.to_csv(tmp, index=False)
    with atomic_path(out_board_md) as tmp:
        body = to_markdown(board) if len(board) else "(no attacks)\n"
        Path(tmp).write_text(f"# {suite}: leaderboard\n\n{body}{BOARD_NOTE}")
    with atomic_path(out_cells) as tmp:
        long_table(rows).to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out_matrix_csv) as tmp:
        matrix_table(rows).to_csv(tmp, index=False)
    metrics_files(rows, out_metrics)
    return rows
