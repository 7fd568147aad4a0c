"""Step ``plot-sigma``: Cert-SSB's optimised noise scales, as histograms."""

from __future__ import annotations

from certsmooth.artifacts import load_npz, load_sigma
from certsmooth.attacks.store import load_poisoned_train
from certsmooth.logs import LOG
from certsmooth.plots.sigma import plot_sigma_histograms


def run(*, train_sigma: str, test_sigma: str, train: str, sigma: float, variant: str, experiment: str, out: str,
        dpi: int = 150, context: str = "paper") -> None:  # fmt: skip
    """``train``: the poisoned training set (marks the poisons); ``sigma``: the base σ."""
    data = load_poisoned_train(train)
    per_sample = load_sigma(train_sigma, "train", data.y.size)
    test = load_npz(test_sigma, required=["clean", "triggered"])
    plot_sigma_histograms(
        out, per_sample, data.poison_index, {k: test[k] for k in ("clean", "triggered")}, sigma,
        f"{experiment}: Cert-SSB noise scales ({variant} ascent)", dpi, context,
    )  # fmt: skip
    LOG.info("wrote %s", out)
