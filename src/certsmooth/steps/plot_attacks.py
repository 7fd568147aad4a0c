"""Step ``plot-attacks``: a suite's attack × certifier matrix, effect bars and table."""

from __future__ import annotations

from certsmooth.logs import LOG
from certsmooth.plots.attacks import plot_attacks


def run(*, suite: str, layout: dict, out_matrix: str, out_bars: str, out_csv: str, out_md: str,
        summaries: list[str] = (), dpi: int = 150, context: str = "paper") -> None:  # fmt: skip
    """``layout``: the suite's attacks, columns, baseline and exclusions; ``summaries``: the
    certification summaries."""
    effects = plot_attacks(suite, layout, list(summaries), out_matrix, out_bars, out_csv, out_md, dpi, context)
    LOG.info("%d (attack, certifier) pairs: %s", len(effects), out_matrix)
