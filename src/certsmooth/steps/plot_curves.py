"""Step ``plot-curves``: a suite's certified-accuracy curves, summary tables and DVC metrics."""

from __future__ import annotations

from certsmooth.plots.curves import plot_suite


def run(*, suite: str, runs: list[str], out_png: str, out_csv: str, out_md: str, out_metrics: str, out_curves: str,
        dpi: int = 150, context: str = "paper") -> None:  # fmt: skip
    """``runs``: certification folders (clean.csv, triggered.csv, summary.json);
    ``out_metrics`` / ``out_curves``: the suite's DVC metrics and plot data."""
    plot_suite(suite, runs, out_png, out_csv, out_md, out_metrics, out_curves, dpi, context)
