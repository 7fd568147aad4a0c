"""Certified accuracy vs radius for the certified experiments of a suite, and a table."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from certsmooth.artifacts import atomic_path, write_json  # noqa: E402
from certsmooth.certifiers import CERTIFIERS  # noqa: E402
from certsmooth.metrics import curve  # noqa: E402
from certsmooth.summary import read_summary  # noqa: E402

TEST_INPUT = "joint, test input only"
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


def summary_row(s: dict) -> dict:
    row = {
        "experiment": s["experiment"],
        "method": method_label(s),
        "scope": s["scope"],
        "aggregation": s["aggregation"],
        "sigma": NAN if s["sigma"] is None else s["sigma"],
        "M": s["num_models"],
        "clean_acc": s["clean_accuracy"],
        "attack_success": s["attack_success_rate"],
        "abstain_clean": s["abstain_rate_clean"],
        "abstain_trig": s["abstain_rate_triggered"],
        "ACR_clean": s["acr_clean"],
        "ACR_trig": s["acr_triggered"],
        "cert_vs_attack": s["certified_vs_deployed_attack"],
        "stacked_norm": s["deployed_attack"]["stacked_train_norm"],
        "abstain_predict_clean": s.get("predict", {}).get("abstain_rate_clean", float("nan")),
        "abstain_predict_trig": s.get("predict", {}).get("abstain_rate_triggered", float("nan")),
        "whitened_norm": s["deployed_attack"].get("whitened_train_norm", float("nan")),
        "sigma_train_mean": s.get("noise_scales", {}).get("train", {}).get("mean", s["sigma"]),
        "sigma_test_mean": s.get("noise_scales", {}).get("test_clean", {}).get("mean", s["sigma"]),
        "median_cert_clean": s.get("median_certificate_clean", NAN),
        "needed_vs_attack": s["deployed_attack"].get("needed", NAN),
    }
    row = {k: (NAN if v is None else v) for k, v in row.items()}
    ti = s.get("test_input") or {}
    row["ACR_input_clean"] = ti.get("acr_clean", float("nan"))
    row["ACR_input_trig"] = ti.get("acr_triggered", float("nan"))
    for r, v in s["certified_accuracy_clean"].items():
        row[f"CA_clean@{r}"] = v
    for r, v in s["certified_accuracy_triggered"].items():
        row[f"CA_trig@{r}"] = v
    return row


def to_markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    fmt = [lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)] * len(cols)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(f(row[c]) for f, c in zip(fmt, cols, strict=True)) + " |")
    return "\n".join(lines) + "\n"


def family_tables(table: pd.DataFrame) -> str:
    """One Markdown table per certifier family (RAB, Cert-SSB, Cohen/<training>), each with
    only the columns that have a value for it (the CSV keeps every column)."""
    family = table["method"].str.split("/").str[0]
    out = []
    for kind in [k for k in CERTIFIERS if k in set(family)]:  # registry order
        rows = table[family == kind].dropna(axis=1, how="all")
        out.append(f"## {CERTIFIERS[kind].label}\n\n" + to_markdown(rows))
    return "\n".join(out)


def plot_suite(
    suite, runs, out_png, out_csv, out_md, out_metrics, out_curves, dpi: int = 150, context: str = "paper"
) -> None:
    """Figure, summary table (CSV, Markdown), and the DVC metrics/plots files of a suite."""
    curves, rows, attacks = [], [], []
    for run in runs:
        s, clean, trig = load_run(run)
        rows.append(summary_row(s))
        if axis_of(s) == "none":  # no certificate (the undefended control): in the tables, not on a radius axis
            continue
        sigma = "" if s["sigma"] is None else f", σ={s['sigma']:g}"
        label = f"{s['experiment'].partition('/')[2]} ({method_label(s)}{sigma}, {s['aggregation']})"
        poisons = axis_of(s) == "poisons"  # the deployed attack on this axis: samples, not a norm
        at = s["deployed_attack"]["needed"] if poisons else s["deployed_attack"]["stacked_train_norm"]
        attacks.append((s["scope"], label, at))
        for name, frame in (("clean", clean), ("triggered", trig)):
            c = curve(frame, s["radius_cmp"])
            c["model"] = label
            c["test set"] = name
            c["scope"] = s["scope"]
            curves.append(c)
            if s["scope"] == "joint" and "radius_test_input" in frame:
                # the same certificates, as a radius for the test input alone (σ_x·R̃)
                c = curve(frame.assign(radius=frame["radius_test_input"]), s["radius_cmp"])
                c["model"] = label
                c["test set"] = name
                c["scope"] = TEST_INPUT
                curves.append(c)
    columns = ["radius", "certified_accuracy", "model", "test set", "scope"]
    data = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns)
    if curves:
        _plot_curves(suite, data, attacks, out_png, dpi, context)
    else:  # only columns without a certificate
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{suite}: no certifier with a certificate (accuracies: summary.md)", ha="center")
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)
    table = pd.DataFrame(rows).sort_values(["experiment", "scope"]).reset_index(drop=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out_md) as tmp:
        tmp.write_text(f"# {suite}: certification summary\n\n" + family_tables(table))
    # DVC: metrics (nested: attack/certifier cell -> scope -> value) and plot data, outside results/
    metrics: dict = {}
    for row in rows:
        keep = {k: v for k, v in row.items() if k not in ("experiment", "method", "scope", "aggregation")}
        metrics.setdefault(row["experiment"].partition("/")[2], {})[row["scope"]] = keep
    write_json(out_metrics, metrics)
    plot_data = data.rename(columns={"test set": "test_set"})
    plot_data["series"] = plot_data["model"] + " / " + plot_data["scope"] + " / " + plot_data["test_set"]
    with atomic_path(out_curves) as tmp:
        plot_data[["radius", "certified_accuracy", "series"]].to_csv(tmp, index=False, float_format="%.6g")


def _plot_curves(suite: str, data: pd.DataFrame, attacks: list, out_png, dpi: int, context: str) -> None:
    """Certified accuracy vs radius, one panel per scope, the deployed attack dotted."""
    with sns.plotting_context(context), sns.axes_style("whitegrid"):
        g = sns.relplot(
            data=data, x="radius", y="certified_accuracy", hue="model", style="test set", col="scope",
            kind="line", drawstyle="steps-post", height=3.2, aspect=1.25, facet_kws={"sharex": False},
        )  # fmt: skip
        g.set_axis_labels("ℓ2 radius r", "certified accuracy")
        g.set(ylim=(-0.02, 1.02))
        count_scopes = {s for s in data["scope"].unique() if s in CERTIFIERS and CERTIFIERS[s].axis == "poisons"}
        for scope in count_scopes:
            g.axes_dict[scope].set_xlabel("poisoned training samples r")
        colors = dict(zip(data["model"].unique(), sns.color_palette(n_colors=data["model"].nunique()), strict=True))
        g.set_titles("scope: {col_name}")
        if TEST_INPUT in g.axes_dict:
            g.axes_dict[TEST_INPUT].set_title(f"scope: {TEST_INPUT} (radius σ_x·R̃)")
        for scope, ax in g.axes_dict.items():  # the curves set the x-range, not the dotted lines
            top = float(data.loc[data["scope"] == scope, "radius"].max())
            ax.set_xlim(-0.02 * top, 1.02 * top)
        for scope, label, norm in attacks:
            if scope == "cohen":  # test-input radii: the poisons' norm is not on this axis
                continue
            # train scope: the deployed poisons' stacked norm; joint adds each point's trigger norm
            if norm <= g.axes_dict[scope].get_xlim()[1]:
                g.axes_dict[scope].axvline(norm, color=colors[label], linestyle=":", linewidth=1)
        note = "dotted: stacked ℓ2 norm of the deployed poisons, √Σ‖δᵢ‖² (if in range)"
        if count_scopes:
            note += "; count certificates: the samples the deployed poisons count (2m for DPA/FA, m for bagging)"
        g.figure.text(0.01, -0.04, note, fontsize="small")
        g.figure.suptitle(f"{suite}: certified accuracy vs radius (triggered = non-target points, true labels)", y=1.04)
        with atomic_path(out_png) as tmp:
            g.figure.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        plt.close(g.figure)


def method_label(summary: dict) -> str:
    """rab | certssb | cohen/<training method of the base classifier>."""
    m = summary.get("method", "rab")
    return f"{m}/{summary['train_method']}" if "train_method" in summary else m
