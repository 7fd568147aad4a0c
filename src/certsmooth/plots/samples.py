"""Grid of clean vs triggered samples for one poisoning experiment."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from certsmooth.artifacts import atomic_path  # noqa: E402
from certsmooth.seeding import numpy_rng  # noqa: E402


def _show(ax, img: np.ndarray, **kw) -> None:
    """Show a C×H×W image in [0, 1] (values outside are clipped for display only)."""
    if img.shape[0] == 1:
        ax.imshow(np.clip(img[0], 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest", **kw)
    else:
        ax.imshow(np.clip(np.transpose(img, (1, 2, 0)), 0, 1), interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_trigger_samples(
    out_png: str | Path,
    clean: np.ndarray,
    triggered: np.ndarray,
    clean_labels: np.ndarray,
    new_labels: np.ndarray,
    norms: np.ndarray,
    class_names: list[str],
    sigma: float,
    seed: int,
    title: str,
    subtitle: str,
    dpi: int = 150,
    context: str = "paper",
) -> None:
    """Rows: clean image, poisoned image, per-pixel |δ| (ℓ2 over channels),
    poisoned image + one N(0, σ²) draw (what a smoothed model trains on)."""
    n = len(clean)
    noise = numpy_rng(seed, "figure-noise").standard_normal(triggered.shape).astype(np.float32)
    noisy = triggered + np.float32(sigma) * noise
    delta = np.sqrt(((triggered.astype(np.float64) - clean) ** 2).sum(axis=1))
    vmax = max(float(delta.max()), 1e-12)
    rows = ["clean", "poisoned", "|δ| per pixel", f"poisoned + N(0, {sigma:g}²)"]
    with sns.plotting_context(context), sns.axes_style("white"):
        fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n + 0.8, 1.75 * len(rows) + 0.9), squeeze=False)
        for j in range(n):
            _show(axes[0, j], clean[j])
            axes[0, j].set_title(f"label {class_names[clean_labels[j]]}", fontsize="small")
            _show(axes[1, j], triggered[j])
            axes[1, j].set_title(f"→ {class_names[new_labels[j]]}, ‖δ‖₂={norms[j]:.3g}", fontsize="small")
            im = axes[2, j].imshow(delta[j], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            axes[2, j].set_xticks([])
            axes[2, j].set_yticks([])
            _show(axes[3, j], noisy[j])
        for i, r in enumerate(rows):
            axes[i, 0].set_ylabel(r, fontsize="small")
        fig.colorbar(im, ax=axes[2, :].tolist(), fraction=0.02, pad=0.01, label="|δ|")
        fig.suptitle(f"{title}\n{subtitle}", fontsize="medium")
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        plt.close(fig)
