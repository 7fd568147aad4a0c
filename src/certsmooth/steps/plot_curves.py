"""Step ``plot-curves``: a suite's certified-accuracy curves and their DVC plot data."""

from __future__ import annotations

from certsmooth.plots.curves import plot_suite


def run(*, suite: str, runs: list[str], out_png: str, out_curves: str, dpi: int = 150, context: str = "paper") -> None:
    """``runs``: certification folders (clean.csv, triggered.csv, summary.json); ``out_curves``:
    the suite's DVC plot data."""
    plot_suite(suite, runs, out_png, out_curves, dpi, context)
