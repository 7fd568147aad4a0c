"""Lanes and jobs of an ensemble: which models train together in one wide network (a lane of
``lane_width`` consecutive models; for the count certifiers' subset trainer,
:func:`step_lanes`, models of as many steps per epoch) and which lanes one training job
trains. Fixed by (M, lane_width, jobs) and, for :func:`step_lanes`, the subset
sizes alone, so every model is the same whatever the number of jobs. Pure Python: the workflow's parse uses it."""

from __future__ import annotations

import numpy as np

from certsmooth.errors import ConfigError


def lanes(num_models: int, lane_width: int) -> list[list[int]]:
    """Model ids grouped in lanes of ``lane_width`` (the last may be shorter)."""
    return [list(range(s, min(s + lane_width, num_models))) for s in range(0, num_models, lane_width)]


def job_lanes(num_models: int, lane_width: int, jobs: int,
              all_lanes: list[list[int]] | None = None) -> list[list[list[int]]]:  # fmt: skip
    """Split the lanes (default :func:`lanes`; or ``all_lanes``, e.g. :func:`step_lanes`) into
    ``jobs`` contiguous, nearly equal runs."""
    all_lanes = lanes(num_models, lane_width) if all_lanes is None else all_lanes
    if not 1 <= jobs <= len(all_lanes):
        raise ConfigError(
            f"jobs = {jobs}: must be between 1 and the number of lanes "
            f"⌈models / lane_width⌉ = {len(all_lanes)}"
        )
    bounds = np.linspace(0, len(all_lanes), jobs + 1).round().astype(int)
    return [all_lanes[bounds[p] : bounds[p + 1]] for p in range(jobs)]


def step_lanes(sizes, batch_size: int, lane_width: int) -> list[list[int]]:
    """Lanes of the count certifiers' subset trainer: model ids ordered by their steps per
    epoch ⌈size / batch⌉ (then id) and cut into lanes of ``lane_width``. A lane runs as many
    steps as its longest subset needs, so one long subset among short ones makes every model
    of its lane compute a step of padding (the demo's FA subsets of 13-35 rows at batch 32:
    two steps per epoch in every lane of consecutive ids, one in most of these). Fixed by
    every model's subset size, so a model's lane does not depend on the number of jobs."""
    steps = [-(-int(n) // batch_size) for n in sizes]
    order = sorted(range(len(steps)), key=lambda m: (steps[m], m))
    return [order[s : s + lane_width] for s in range(0, len(order), lane_width)]
