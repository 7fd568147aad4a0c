"""Step ``plot-attacks``: a suite's attack × certifier matrix, effect figure, leaderboard, long
table and DVC metrics."""

from __future__ import annotations

from certsmooth.logs import LOG
from certsmooth.plots.attacks import plot_attacks


def run(*, suite: str, layout: dict, out_matrix: str, out_effects: str, out_leaderboard_csv: str,
        out_leaderboard_md: str, out_cells: str, out_matrix_csv: str, out_metrics: str, runs: list[str] = (),
        dpi: int = 150, context: str = "paper") -> None:  # fmt: skip
    """``layout``: the suite's attacks, columns, baseline and exclusions; ``runs``: the
    certification folders (clean.csv, triggered.csv, summary.json); ``out_metrics``: a folder,
    one JSON per cell."""
    rows = plot_attacks(suite, layout, list(runs), out_matrix, out_effects, out_leaderboard_csv, out_leaderboard_md,
                        out_cells, out_matrix_csv, out_metrics, dpi, context)  # fmt: skip
    LOG.info("%d (attack, certifier) pairs: %s", len(rows), out_matrix)
