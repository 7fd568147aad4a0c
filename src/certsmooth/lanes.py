"""Lanes and partitions of an ensemble: which models train together in one wide network
(a lane of ``lane_width`` consecutive models) and which lanes one job trains (a
partition). Fixed by (M, lane_width, partitions) alone, so every model is the same
whatever the number of jobs. Pure Python: the workflow's parse uses it."""

from __future__ import annotations

import numpy as np

from certsmooth.errors import ConfigError


def lanes(num_models: int, lane_width: int) -> list[list[int]]:
    """Model ids grouped in lanes of ``lane_width`` (the last may be shorter)."""
    return [list(range(s, min(s + lane_width, num_models))) for s in range(0, num_models, lane_width)]


def partition_lanes(num_models: int, lane_width: int, partitions: int) -> list[list[list[int]]]:
    """Split the lanes into ``partitions`` contiguous, nearly equal runs."""
    all_lanes = lanes(num_models, lane_width)
    if not 1 <= partitions <= len(all_lanes):
        raise ConfigError(
            f"partitions = {partitions}: must be between 1 and the number of lanes "
            f"⌈models / lane_width⌉ = {len(all_lanes)}"
        )
    bounds = np.linspace(0, len(all_lanes), partitions + 1).round().astype(int)
    return [all_lanes[bounds[p] : bounds[p + 1]] for p in range(partitions)]
