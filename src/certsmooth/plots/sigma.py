"""Histograms of Cert-SSB's optimised noise scales: training examples (poisons marked)
and test points (clean vs triggered), against the base σ."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from certsmooth.artifacts import atomic_path  # noqa: E402


def plot_sigma_histograms(
    out_png: str | Path,
    train_sigma: np.ndarray,
    poison_index: np.ndarray,
    test_sigma: dict[str, np.ndarray],
    base_sigma: float,
    title: str,
    dpi: int = 150,
    context: str = "paper",
) -> None:
    is_poison = np.zeros(train_sigma.size, dtype=bool)
    is_poison[poison_index] = True
    train = pd.DataFrame({"σ": train_sigma, "examples": np.where(is_poison, "poisoned", "clean")})
    test = pd.concat([pd.DataFrame({"σ": v, "test set": k}) for k, v in test_sigma.items()], ignore_index=True)
    values = np.concatenate([train_sigma, *test_sigma.values(), [base_sigma]])
    lo, hi = float(values.min()), float(values.max())
    bins = np.linspace(lo - 1e-6, hi + 1e-6, 31) if hi > lo else 10
    with sns.plotting_context(context), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True)
        sns.histplot(train, x="σ", hue="examples", hue_order=["clean", "poisoned"], bins=bins, stat="density",
                     common_norm=False, element="step", ax=axes[0])  # fmt: skip
        axes[0].set_title(f"training examples (n = {train_sigma.size}, {int(is_poison.sum())} poisoned)")
        sns.histplot(test, x="σ", hue="test set", bins=bins, stat="density", common_norm=False, element="step",
                     ax=axes[1])  # fmt: skip
        axes[1].set_title("test points (σ_x)")
        for ax in axes:
            ax.axvline(base_sigma, color="black", linestyle=":", linewidth=1)
            ax.set_xlabel("optimised noise scale σ")
        fig.text(0.01, -0.12, f"dotted: base σ = {base_sigma:g} (the ascent's start and RAB's σ)", fontsize="small")
        fig.suptitle(title, y=1.03)
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        plt.close(fig)
