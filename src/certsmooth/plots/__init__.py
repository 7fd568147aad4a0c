"""Figures (matplotlib + seaborn, PNG)."""

from certsmooth.plots.samples import plot_trigger_samples

__all__ = ["plot_trigger_samples"]
