"""What a certifier kind is: one record (torch-free: the workflow's parse reads it).

A record owns everything of its kind that the rest of the house asks about: the params.yaml
blocks it reads (each a ``$defs`` entry of the schema; the expansion refuses the others), the
keys each of its workflow stages reads (so a setting reruns exactly the jobs that read it),
the checks of its settings before any job runs, its output paths (by name, for its rule
file and its steps), its certification runs and the matrix columns they fill, the artifacts
a suite target requests, how tables name it and what its radius counts on a figure's axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class Cell(Protocol):
    """What a record reads of one (attack, certifier) cell (:class:`certsmooth.experiment.Experiment`;
    a protocol, so that this package imports nothing of the cells)."""

    suite: str
    name: str
    cfg: dict
    certifier_name: str

    @property
    def seed(self) -> int: ...
    @property
    def sigma(self) -> float: ...
    @property
    def paths(self) -> dict[str, Any]: ...
    def results_dir(self) -> str: ...
    def poisoned_dir(self) -> str: ...
    def prepared_dir(self) -> str: ...


@dataclass(frozen=True)
class Data:
    """What the checks may know of a cell's data before any is read."""

    name: str
    classes: list  # the task's classes (labels 0..len-1)
    shape: tuple[int, int, int]  # C, H, W
    split: Any
    counts: tuple[list[int], list[int] | None] | None  # images per label (train, test), where known now

    @property
    def n_train(self) -> int | None:
        return None if self.counts is None else sum(self.counts[0])


def _no_check(cell: Cell, data: Data) -> None:
    return None


def _nothing(cell: Cell, stage: str) -> dict:
    return {}


@dataclass(frozen=True)
class Certifier:
    kind: str  # the `kind` of a certifier entry in params.yaml
    label: str  # how tables and figures name it
    rank: int  # its place in the registry: tables and columns follow it
    blocks: tuple[str, ...]  # its params.yaml blocks besides `sigma` (each a schema $def)
    axis: str  # what its radius counts: "l2" (a norm of the perturbation), "poisons" (samples), "none" (no certificate)
    stages: dict[str, tuple[str, tuple[str, ...]]]  # stage -> (block, the keys the stage's step reads)
    paths: Callable[[Cell], dict[str, Any]]  # its output paths by name (rules and steps use the names)
    runs: Callable[[Cell], list[tuple[str, str]]]  # (column, certification folder) of one cell
    targets: Callable[[Cell], list[str]]  # the cell's artifacts besides its runs' files
    check: Callable[[Cell, Data], None] = _no_check  # ConfigError "<block>.<key> ..." before any job
    extra: Callable[[Cell, str], dict] = _nothing  # settings beyond the keys
    inputs: Callable[[Cell, str], dict] = _nothing  # a stage's input files by name

    def settings(self, cell: Cell, stage: str) -> dict:
        """The settings ``stage`` reads and nothing else; ``method`` is the certifier's kind."""
        block, keys = self.stages[stage]
        cfg = {**cell.cfg[block], "method": self.kind}
        return {**{k: cfg[k] for k in keys}, **self.extra(cell, stage)}


def one_run(cell: Cell) -> list[tuple[str, str]]:
    """A certifier certified once per cell: its column is the certifier's name, its folder ``paths["run"]``."""
    return [(cell.certifier_name, cell.paths["run"])]


def prefixed(block: str, check: Callable[[], None]) -> None:
    """Run ``check``; a ConfigError it raises names the block (``<block>.<key> ...``)."""
    from certsmooth.errors import ConfigError

    try:
        check()
    except ConfigError as exc:
        raise ConfigError(f"{block}.{exc}") from None


def fits(block: str, arch: str, data: Data, models: int | None = None, lane_width: int = 1, jobs: int = 1) -> None:
    """``arch`` takes the data's images, and ``models`` split into ``jobs`` jobs of lanes of ``lane_width``."""
    from certsmooth.lanes import job_lanes
    from certsmooth.models.inputs import check_fits

    def both():
        check_fits(arch, data.shape)
        if models is not None:
            job_lanes(models, lane_width, jobs)

    prefixed(block, both)
